// Journal event values: the C++ side of schema/events.capnp. Plain copyable values; the
// codec (codec.hpp) is the only code that maps them to and from their on-disk encoding.
// Adding an event kind: add a struct here (with kind and fields()), a member to the payload
// variant, a union member in schema/events.capnp, and its cases in codec.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace banger::journal {

/// One field of a payload, for generic rendering (render.cpp): each payload struct lists its
/// fields, in schema order, through fields(), and names its kind (snake_case, past tense).
using field_value = std::variant<std::string, std::int64_t, std::uint64_t>;
struct field {
  std::string_view name;
  field_value value;
};

struct daemon_started {
  static constexpr std::string_view kind = "daemon_started";
  std::string version;
  std::int64_t pid = 0;
  std::string boot_id;
  std::vector<field> fields() const { return {{"version", version}, {"pid", pid}, {"boot_id", boot_id}}; }
};

struct daemon_stopped {
  static constexpr std::string_view kind = "daemon_stopped";
  std::string reason;
  std::vector<field> fields() const { return {{"reason", reason}}; }
};

/// A free-form annotation (tools and tests mark points in a journal with it).
struct note {
  static constexpr std::string_view kind = "note";
  std::string text;
  std::vector<field> fields() const { return {{"text", text}}; }
};

/// Kernels and images (streams "kernel/<name>", "image/<name>"): a build, import or pull.
struct artifact_started {
  static constexpr std::string_view kind = "artifact_started";
  std::string source;
  std::vector<field> fields() const { return {{"source", source}}; }
};

struct artifact_stage {
  static constexpr std::string_view kind = "artifact_stage";
  std::string stage;
  std::vector<field> fields() const { return {{"stage", stage}}; }
};

struct artifact_ready {
  static constexpr std::string_view kind = "artifact_ready";
  std::string version_id;
  std::string manifest_sha256;
  std::uint64_t bytes = 0;
  std::string summary;
  std::vector<field> fields() const {
    return {{"version_id", version_id}, {"manifest_sha256", manifest_sha256}, {"bytes", bytes}, {"summary", summary}};
  }
};

struct artifact_failed {
  static constexpr std::string_view kind = "artifact_failed";
  std::string stage;
  std::string reason;
  std::vector<field> fields() const { return {{"stage", stage}, {"reason", reason}}; }
};

struct artifact_removed {
  static constexpr std::string_view kind = "artifact_removed";
  std::string version_id;
  std::vector<field> fields() const { return {{"version_id", version_id}}; }
};

/// VMs (stream "vm/<name>"); see schema/events.capnp for the grammar of a VM's stream.
struct vm_created {
  static constexpr std::string_view kind = "vm_created";
  std::string id;
  std::string image, image_version, kernel, kernel_version;
  std::uint64_t vcpus = 0, memory_mib = 0, disk_mib = 0;
  std::vector<field> fields() const {
    return {{"id", id},
            {"image", image},
            {"image_version", image_version},
            {"kernel", kernel},
            {"kernel_version", kernel_version},
            {"vcpus", vcpus},
            {"memory_mib", memory_mib},
            {"disk_mib", disk_mib}};
  }
};

struct vm_configured {
  static constexpr std::string_view kind = "vm_configured";
  std::uint64_t vcpus = 0, memory_mib = 0;
  std::vector<field> fields() const { return {{"vcpus", vcpus}, {"memory_mib", memory_mib}}; }
};

struct vm_starting {
  static constexpr std::string_view kind = "vm_starting";
  std::string kernel_version;
  std::vector<field> fields() const { return {{"kernel_version", kernel_version}}; }
};

struct resource_intended {
  static constexpr std::string_view kind = "resource_intended";
  std::string resource, id; ///< resource kind ("tap", ...) and its id
  std::vector<field> fields() const { return {{"kind", resource}, {"id", id}}; }
};

struct resource_acquired {
  static constexpr std::string_view kind = "resource_acquired";
  std::string resource, id, detail;
  std::vector<field> fields() const { return {{"kind", resource}, {"id", id}, {"detail", detail}}; }
};

struct resource_released {
  static constexpr std::string_view kind = "resource_released";
  std::string resource, id;
  std::vector<field> fields() const { return {{"kind", resource}, {"id", id}}; }
};

struct vm_running {
  static constexpr std::string_view kind = "vm_running";
  std::uint64_t boot_ms = 0;
  std::vector<field> fields() const { return {{"boot_ms", boot_ms}}; }
};

struct vm_start_failed {
  static constexpr std::string_view kind = "vm_start_failed";
  std::string stage, reason;
  std::vector<field> fields() const { return {{"stage", stage}, {"reason", reason}}; }
};

struct vm_stopping {
  static constexpr std::string_view kind = "vm_stopping";
  std::string how;
  std::vector<field> fields() const { return {{"how", how}}; }
};

struct vm_stopped {
  static constexpr std::string_view kind = "vm_stopped";
  std::string reason;
  std::vector<field> fields() const { return {{"reason", reason}}; }
};

struct vm_deleted {
  static constexpr std::string_view kind = "vm_deleted";
  std::vector<field> fields() const { return {}; }
};

/// A command the VM's actor took, recorded before (with) the events its decision produced.
struct vm_command {
  static constexpr std::string_view kind = "vm_command";
  std::string command, args, refused;
  std::vector<field> fields() const { return {{"command", command}, {"args", args}, {"refused", refused}}; }
};

struct vm_adopted {
  static constexpr std::string_view kind = "vm_adopted";
  std::int64_t pid = 0;
  std::string boot_id;
  std::vector<field> fields() const { return {{"pid", pid}, {"boot_id", boot_id}}; }
};

struct vm_deleting {
  static constexpr std::string_view kind = "vm_deleting";
  std::vector<field> fields() const { return {}; }
};

/// A payload kind this build does not know, written by a newer banger. Readers skip it;
/// `discriminant` is the capnp union tag, kept for diagnostics.
struct unknown_event {
  static constexpr std::string_view kind = "unknown";
  std::uint16_t discriminant = 0;
  std::vector<field> fields() const { return {{"discriminant", std::uint64_t{discriminant}}}; }
};

using payload = std::variant<unknown_event, daemon_started, daemon_stopped, note, artifact_started, artifact_stage,
                             artifact_ready, artifact_failed, artifact_removed, vm_created, vm_configured, vm_starting,
                             resource_intended, resource_acquired, resource_released, vm_running, vm_start_failed,
                             vm_stopping, vm_stopped, vm_deleted, vm_command, vm_adopted, vm_deleting>;

/// snake_case kind name: "daemon_started", ..., "unknown".
std::string_view kind_of(const payload& p);

/// What an appender supplies; the journal adds stream, version, time and sequence.
struct event {
  std::string op_id;
  payload body;
};

/// An event as stored: `seq` is global (1-based, gapless), `version` is its 1-based position
/// in `stream`.
struct stored_event {
  std::uint64_t seq = 0;
  std::string stream;
  std::uint64_t version = 0;
  std::int64_t wall_time_ns = 0;
  std::string op_id;
  payload body;
};

} // namespace banger::journal
