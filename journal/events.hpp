// Journal event values: the C++ side of schema/events.capnp. Plain copyable values; each lists
// its fields through inspect() (common/fields.hpp), in schema order, with its capnp field names in
// snake_case, and names its kind (snake_case, past tense; the capnp union member is its
// camelCase). Everything else is generic over that: the codec (codec.cpp, the only code that
// maps them to and from their on-disk encoding), rendering, replay's comparisons.
// Adding an event kind: a struct here and a member of the payload variant, a union member and
// struct in schema/events.capnp (same names), and its meaning where its stream is folded.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/fields.hpp"

namespace banger::journal {

/// One field of a payload as a plain value, for generic rendering and comparison: strings as
/// they are, signed integers as int64, unsigned ones (and bools) as uint64.
using field_value = std::variant<std::string, std::int64_t, std::uint64_t>;
struct named_value {
  std::string_view name;
  field_value value;
};

struct daemon_started {
  static constexpr std::string_view kind = "daemon_started";
  std::string version;
  std::int64_t pid = 0;
  std::string boot_id;
  template <class F>
  friend void inspect(F& f, daemon_started& x) {
    f(field("version", x.version), field("pid", x.pid), field("boot_id", x.boot_id));
  }
};

struct daemon_stopped {
  static constexpr std::string_view kind = "daemon_stopped";
  std::string reason;
  template <class F>
  friend void inspect(F& f, daemon_stopped& x) {
    f(field("reason", x.reason));
  }
};

/// A free-form annotation (tools and tests mark points in a journal with it).
struct note {
  static constexpr std::string_view kind = "note";
  std::string text;
  template <class F>
  friend void inspect(F& f, note& x) {
    f(field("text", x.text));
  }
};

/// Kernels and images (streams "kernel/<name>", "image/<name>"): a build, import or pull.
struct artifact_started {
  static constexpr std::string_view kind = "artifact_started";
  std::string source;
  template <class F>
  friend void inspect(F& f, artifact_started& x) {
    f(field("source", x.source));
  }
};

struct artifact_stage {
  static constexpr std::string_view kind = "artifact_stage";
  std::string stage;
  template <class F>
  friend void inspect(F& f, artifact_stage& x) {
    f(field("stage", x.stage));
  }
};

struct artifact_ready {
  static constexpr std::string_view kind = "artifact_ready";
  std::string version_id;
  std::string manifest_sha256;
  std::uint64_t bytes = 0;
  std::string summary;
  template <class F>
  friend void inspect(F& f, artifact_ready& x) {
    f(field("version_id", x.version_id), field("manifest_sha256", x.manifest_sha256), field("bytes", x.bytes),
      field("summary", x.summary));
  }
};

struct artifact_failed {
  static constexpr std::string_view kind = "artifact_failed";
  std::string stage;
  std::string reason;
  template <class F>
  friend void inspect(F& f, artifact_failed& x) {
    f(field("stage", x.stage), field("reason", x.reason));
  }
};

struct artifact_removed {
  static constexpr std::string_view kind = "artifact_removed";
  std::string version_id;
  template <class F>
  friend void inspect(F& f, artifact_removed& x) {
    f(field("version_id", x.version_id));
  }
};

/// VMs (stream "vm/<name>"); see schema/events.capnp for the grammar of a VM's stream.
struct vm_created {
  static constexpr std::string_view kind = "vm_created";
  std::string id;
  std::string image, image_version, kernel, kernel_version;
  std::uint64_t vcpus = 0, memory_mib = 0, disk_mib = 0;
  template <class F>
  friend void inspect(F& f, vm_created& x) {
    f(field("id", x.id), field("image", x.image), field("image_version", x.image_version), field("kernel", x.kernel),
      field("kernel_version", x.kernel_version), field("vcpus", x.vcpus), field("memory_mib", x.memory_mib),
      field("disk_mib", x.disk_mib));
  }
};

struct vm_configured {
  static constexpr std::string_view kind = "vm_configured";
  std::uint64_t vcpus = 0, memory_mib = 0;
  template <class F>
  friend void inspect(F& f, vm_configured& x) {
    f(field("vcpus", x.vcpus), field("memory_mib", x.memory_mib));
  }
};

struct vm_starting {
  static constexpr std::string_view kind = "vm_starting";
  std::string kernel_version;
  template <class F>
  friend void inspect(F& f, vm_starting& x) {
    f(field("kernel_version", x.kernel_version));
  }
};

struct resource_intended {
  static constexpr std::string_view kind = "resource_intended";
  std::string resource, id; ///< resource kind ("tap", ...) and its id
  template <class F>
  friend void inspect(F& f, resource_intended& x) {
    f(field("kind", x.resource), field("id", x.id));
  }
};

struct resource_acquired {
  static constexpr std::string_view kind = "resource_acquired";
  std::string resource, id, detail;
  template <class F>
  friend void inspect(F& f, resource_acquired& x) {
    f(field("kind", x.resource), field("id", x.id), field("detail", x.detail));
  }
};

struct resource_released {
  static constexpr std::string_view kind = "resource_released";
  std::string resource, id;
  template <class F>
  friend void inspect(F& f, resource_released& x) {
    f(field("kind", x.resource), field("id", x.id));
  }
};

struct vm_running {
  static constexpr std::string_view kind = "vm_running";
  std::uint64_t boot_ms = 0;
  template <class F>
  friend void inspect(F& f, vm_running& x) {
    f(field("boot_ms", x.boot_ms));
  }
};

struct vm_start_failed {
  static constexpr std::string_view kind = "vm_start_failed";
  std::string stage, reason;
  template <class F>
  friend void inspect(F& f, vm_start_failed& x) {
    f(field("stage", x.stage), field("reason", x.reason));
  }
};

struct vm_stopping {
  static constexpr std::string_view kind = "vm_stopping";
  std::string how;
  template <class F>
  friend void inspect(F& f, vm_stopping& x) {
    f(field("how", x.how));
  }
};

struct vm_stopped {
  static constexpr std::string_view kind = "vm_stopped";
  std::string reason;
  template <class F>
  friend void inspect(F& f, vm_stopped& x) {
    f(field("reason", x.reason));
  }
};

struct vm_deleted {
  static constexpr std::string_view kind = "vm_deleted";
  template <class F>
  friend void inspect(F& f, vm_deleted&) {
    f();
  }
};

/// A command the VM's actor took, recorded before (with) the events its decision produced.
struct vm_command {
  static constexpr std::string_view kind = "vm_command";
  std::string command, args, refused;
  template <class F>
  friend void inspect(F& f, vm_command& x) {
    f(field("command", x.command), field("args", x.args), field("refused", x.refused));
  }
};

struct vm_adopted {
  static constexpr std::string_view kind = "vm_adopted";
  std::int64_t pid = 0;
  std::string boot_id;
  template <class F>
  friend void inspect(F& f, vm_adopted& x) {
    f(field("pid", x.pid), field("boot_id", x.boot_id));
  }
};

struct vm_deleting {
  static constexpr std::string_view kind = "vm_deleting";
  template <class F>
  friend void inspect(F& f, vm_deleting&) {
    f();
  }
};

/// A running VM's vCPUs were frozen (QMP stop): its VMM, memory and resources stay.
struct vm_paused {
  static constexpr std::string_view kind = "vm_paused";
  template <class F>
  friend void inspect(F& f, vm_paused&) {
    f();
  }
};

/// A paused VM runs again (QMP cont).
struct vm_resumed {
  static constexpr std::string_view kind = "vm_resumed";
  template <class F>
  friend void inspect(F& f, vm_resumed&) {
    f();
  }
};

/// A payload kind this build does not know, written by a newer banger. Readers skip it;
/// `discriminant` is the capnp union tag, kept for diagnostics.
struct unknown_event {
  static constexpr std::string_view kind = "unknown";
  std::uint16_t discriminant = 0;
  template <class F>
  friend void inspect(F& f, unknown_event& x) {
    f(field("discriminant", x.discriminant));
  }
};

/// A workspace is being written into the VM (its work disk, the VM stopped): until
/// workspace_prepared or workspace_prepare_failed follows, the work disk may hold a partial
/// write that is checked before the VM starts.
struct workspace_preparing {
  static constexpr std::string_view kind = "workspace_preparing";
  std::string host_path, guest_path;
  template <class F>
  friend void inspect(F& f, workspace_preparing& x) {
    f(field("host_path", x.host_path), field("guest_path", x.guest_path));
  }
};

/// A workspace landed whole at `guest_path`: the checkout it came from, its HEAD and branch,
/// the digest of what was shipped (workspace/stream.hpp), files and bytes.
struct workspace_prepared {
  static constexpr std::string_view kind = "workspace_prepared";
  std::string host_path, guest_path, head, branch, digest;
  std::uint64_t files = 0, bytes = 0;
  bool include_untracked = false;
  template <class F>
  friend void inspect(F& f, workspace_prepared& x) {
    f(field("host_path", x.host_path), field("guest_path", x.guest_path), field("head", x.head),
      field("branch", x.branch), field("digest", x.digest), field("files", x.files), field("bytes", x.bytes),
      field("include_untracked", x.include_untracked));
  }
};

/// A workspace did not land; the previous one (or none) stays.
struct workspace_prepare_failed {
  static constexpr std::string_view kind = "workspace_prepare_failed";
  std::string reason;
  template <class F>
  friend void inspect(F& f, workspace_prepare_failed& x) {
    f(field("reason", x.reason));
  }
};

/// The running guest let go of its work disk, which the host now writes in-process (while the
/// workspace_preparing before it has no outcome); the guest mounts it again afterwards.
struct workspace_disk_released {
  static constexpr std::string_view kind = "workspace_disk_released";
  template <class F>
  friend void inspect(F&, workspace_disk_released&) {}
};

using payload =
  std::variant<unknown_event, daemon_started, daemon_stopped, note, artifact_started, artifact_stage, artifact_ready,
               artifact_failed, artifact_removed, vm_created, vm_configured, vm_starting, resource_intended,
               resource_acquired, resource_released, vm_running, vm_start_failed, vm_stopping, vm_stopped, vm_deleted,
               vm_command, vm_adopted, vm_deleting, vm_paused, vm_resumed, workspace_preparing, workspace_prepared,
               workspace_prepare_failed, workspace_disk_released>;

/// snake_case kind name: "daemon_started", ..., "unknown".
std::string_view kind_of(const payload& p);
/// The payload's fields, in schema order.
std::vector<named_value> fields_of(const payload& p);

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
