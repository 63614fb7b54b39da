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

/// A payload kind this build does not know, written by a newer banger. Readers skip it;
/// `discriminant` is the capnp union tag, kept for diagnostics.
struct unknown_event {
  static constexpr std::string_view kind = "unknown";
  std::uint16_t discriminant = 0;
  std::vector<field> fields() const { return {{"discriminant", std::uint64_t{discriminant}}}; }
};

using payload = std::variant<unknown_event, daemon_started, daemon_stopped, note, artifact_started, artifact_stage,
                             artifact_ready, artifact_failed, artifact_removed>;

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
