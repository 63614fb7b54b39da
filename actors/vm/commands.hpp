// A VM's commands as typed values: one plain struct per command, each with its recorded name and
// its fields (inspect(), common/fields.hpp). The RPC adapter builds one (generically, from the
// capnp union of the same names: schema/banger.capnp VmCommand), the vm actor dispatches on it,
// decide() takes it, the journal records it (record_of: a vm_command event whose `command` is
// the name and whose `args` are the fields as a JSON object, the format journals have always
// had), and banger-replay's rerun reads it back (command_of) and re-decides it. Pure; any thread.
//
// Adding a command: a struct here and an alternative of vm_command; its decision in vm.cpp; what
// runs once it is on record in pipeline.cpp (work_one); a member of schema/banger.capnp's
// VmCommand union (Void when it has no fields) and the CLI's subcommand. See docs/contributing.md.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "common/error.hpp"
#include "common/fields.hpp"
#include "journal/events.hpp"

namespace banger::actors {

namespace vm_cmd {

/// Creates the VM (named by its stream); with `start`, starts it too. Fields left 0 or empty are
/// refused by decide (the daemon fills in its defaults and the artifacts' current versions).
struct create {
  static constexpr std::string_view name = "create";
  std::string id, image, image_version, kernel, kernel_version;
  std::uint32_t vcpus = 0, memory_mib = 0, disk_mib = 0;
  bool start = false;
  template <class F>
  friend void inspect(F& f, create& x) {
    f(field("id", x.id), field("image", x.image), field("image_version", x.image_version), field("kernel", x.kernel),
      field("kernel_version", x.kernel_version), field("vcpus", x.vcpus), field("memory_mib", x.memory_mib),
      field("disk_mib", x.disk_mib), field("start", x.start));
  }
};

/// A stopped VM's vCPUs and memory (0: unchanged).
struct configure {
  static constexpr std::string_view name = "configure";
  std::uint32_t vcpus = 0, memory_mib = 0;
  template <class F>
  friend void inspect(F& f, configure& x) {
    f(field("vcpus", x.vcpus), field("memory_mib", x.memory_mib));
  }
};

#define BANGER_PLAIN_VM_COMMAND(type, recorded)                                                                        \
  struct type {                                                                                                        \
    static constexpr std::string_view name = recorded;                                                                 \
    template <class F>                                                                                                 \
    friend void inspect(F& f, type&) {                                                                                 \
      f();                                                                                                             \
    }                                                                                                                  \
  }

BANGER_PLAIN_VM_COMMAND(start, "start");
/// Clean shutdown (agent, then ACPI, then QMP quit, then SIGKILL).
BANGER_PLAIN_VM_COMMAND(stop, "stop");
/// SIGKILL straight away.
BANGER_PLAIN_VM_COMMAND(kill, "kill");
/// Deletes a stopped VM.
BANGER_PLAIN_VM_COMMAND(remove, "delete");
/// Deletes a VM, stopping it first (with SIGKILL) when it runs or is paused.
BANGER_PLAIN_VM_COMMAND(remove_force, "delete_force");
/// Freezes a running VM's vCPUs (its memory, devices and resources stay).
BANGER_PLAIN_VM_COMMAND(pause, "pause");
/// Lets a paused VM run again.
BANGER_PLAIN_VM_COMMAND(resume, "resume");
/// Internal: the VM's VMM went away under it (the actor's liveness check).
BANGER_PLAIN_VM_COMMAND(reap, "reap");
/// Internal: the daemon started and settles the VM with the host (DESIGN §4).
BANGER_PLAIN_VM_COMMAND(reconcile, "reconcile");

#undef BANGER_PLAIN_VM_COMMAND

/// Lands a workspace (docs/workspaces.md) in a stopped VM's work disk. The stream itself is not
/// part of the command: it comes with the request (vm_attachments), from the CLI.
struct prepare_workspace {
  static constexpr std::string_view name = "prepare_workspace";
  std::string host_path, guest_path, head, branch;
  bool include_untracked = false; ///< what was shipped: also untracked files (for the drift check)
  template <class F>
  friend void inspect(F& f, prepare_workspace& x) {
    f(field("host_path", x.host_path), field("guest_path", x.guest_path), field("head", x.head),
      field("branch", x.branch), field("include_untracked", x.include_untracked));
  }
};

} // namespace vm_cmd

using vm_command = std::variant<vm_cmd::create, vm_cmd::configure, vm_cmd::start, vm_cmd::stop, vm_cmd::kill,
                                vm_cmd::remove, vm_cmd::remove_force, vm_cmd::pause, vm_cmd::resume, vm_cmd::reap,
                                vm_cmd::reconcile, vm_cmd::prepare_workspace>;

/// The recorded name ("create", "delete_force", ...).
std::string_view name_of(const vm_command& c);

/// The command as the journal records it (refused: empty when accepted).
journal::vm_command record_of(const vm_command& c, std::string refused = {});

/// The command a record holds. bad_request for an unknown name or arguments that are not a JSON
/// object (with the messages decide() gave such records before commands were typed, so old
/// recordings re-decide the same); fields the arguments lack or give with another type keep
/// their defaults (common/fields_json.hpp).
expected<vm_command> command_of(const journal::vm_command& r);

/// The command named `name` with default fields; bad_request for an unknown name.
expected<vm_command> command_named(std::string_view name);

} // namespace banger::actors
