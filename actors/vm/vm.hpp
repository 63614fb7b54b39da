// A VM's pure core: its state folded from the journal stream "vm/<name>" with apply(), and
// decide_*() saying what a command would append or why it is refused. No I/O; any thread.
// banger-replay links the same functions to audit and re-run a recorded journal.
//
// Phases and the events that move between them (schema/events.capnp draws the grammar):
//
//   absent --vm_created--> stopped --vm_starting--> starting --vm_running--> running
//                             ^                        |                        |
//                             |<----vm_start_failed----+                   vm_stopping
//                             |<----------------------vm_stopped------- stopping <-+
//   stopped --vm_deleting--> deleting --vm_deleted--> deleted
//   running --vm_paused--> paused --vm_resumed--> running;  paused --vm_stopping--> stopping
//   (journals from before vm_deleting existed go stopped --vm_deleted--> deleted)
//
// Commands (commands.hpp) are recorded too (vm_command, appended with the events their decision
// produced, or alone when refused): decide(state, command) is the one entry point the actor and
// banger-replay's rerun share, so a recording can be re-decided and compared.
//
// Resources (resources.hpp) are journaled as intent (resource_intended), then fact
// (resource_acquired), then release (resource_released). Per-VM resources (overlay, work_disk,
// ip) live from the first start to delete; per-run ones (tap, nat, vmm, sockets) from a start to
// the next stop. An event naming a kind this build does not know changes nothing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "actors/vm/commands.hpp"
#include "actors/vm/resources.hpp"
#include "common/error.hpp"
#include "journal/events.hpp"

namespace banger::actors {

/// A VM's phase. The values are stored in snapshots (vm_snapshot.cpp): new phases go at the end.
enum class vm_phase { absent, stopped, starting, running, stopping, deleting, deleted, paused };
std::string_view to_string(vm_phase p);
/// Whether a VM in phase `p` has a VMM that should be up: running or paused (what the liveness
/// check watches, what a restarted daemon adopts).
bool vmm_expected(vm_phase p);
/// Whether a daemon that starts must reconcile a VM in phase `p` with the host: a VMM is expected,
/// or the journal stops mid-start, mid-stop or mid-delete.
bool needs_reconcile(vm_phase p);

/// "vm/<name>".
std::string vm_stream(std::string_view name);

/// A DNS label: 1-63 of a-z, 0-9 and '-', not starting or ending with '-'.
expected<void> validate_vm_name(std::string_view name);

/// Limits of a VM's shape, checked by the daemon's RPC edge and again by decide().
struct vm_limits {
  static constexpr std::uint32_t max_vcpus = 64;
  static constexpr std::uint32_t min_memory_mib = 64, max_memory_mib = 256 * 1024;
  static constexpr std::uint32_t min_disk_mib = 64, max_disk_mib = 1024 * 1024;
};
expected<void> validate_vm_shape(std::uint32_t vcpus, std::uint32_t memory_mib, std::uint32_t disk_mib);

struct vm_resource {
  resource_kind kind = resource_kind::overlay;
  std::string id, detail;
  bool acquired = false; ///< false: intended, may or may not exist on the host
};

/// A "vmm" resource's detail: "<start time> <cmdline sha256> <boot id>" (the boot id is absent in
/// records from before boot ids were kept). One format, written and read here.
struct vmm_detail {
  std::uint64_t start_time = 0;
  std::string cmdline_sha256, boot_id;
};
std::string format_vmm_detail(const vmm_detail& d);
vmm_detail parse_vmm_detail(std::string_view detail);

/// The boot id a "vmm" resource was recorded with; "" when none was.
std::string recorded_boot_id(const vm_resource& vmm);

/// The workspace the journal says a VM holds (workspace_prepared).
struct vm_workspace {
  std::string host_path, guest_path, head, branch, digest;
  std::uint64_t files = 0, bytes = 0;
  std::int64_t prepared_ns = 0;
  bool include_untracked = false;
  bool empty() const { return guest_path.empty(); }
};

struct vm_state {
  std::uint64_t stream_version = 0;
  vm_phase phase = vm_phase::absent;
  std::string name, id, image, image_version, kernel, kernel_version;
  std::uint32_t vcpus = 0, memory_mib = 0, disk_mib = 0;
  std::int64_t created_ns = 0, since_ns = 0;
  std::string last_error; ///< why the last start failed or the VM stopped unexpectedly
  std::uint64_t boot_ms = 0;
  std::vector<vm_resource> resources; ///< held (intended or acquired), in acquisition order
  vm_workspace workspace;
  /// The guest path of a workspace_preparing on record without its outcome ("" when none): a
  /// daemon died while it wrote the workspace, which a restart checks and tidies there
  /// (pipeline.hpp run_reconcile).
  std::string workspace_pending_path;
  bool workspace_pending() const { return !workspace_pending_path.empty(); }
  /// That pending workspace is written into the work disk by the host while the running guest
  /// has let go of it (workspace_disk_released): a restart repairs the disk, then has the guest
  /// mount it again.
  bool workspace_disk_released = false;

  const vm_resource* find(resource_kind kind) const;
  std::string ip() const; ///< the leased address, empty when none
};

vm_state apply(vm_state s, const journal::stored_event& e);

/// needs_reconcile(s.phase), or a workspace preparation on record without its outcome.
bool needs_reconcile(const vm_state& s);

/// Snapshots (vm_snapshot.cpp; found by journal::fold_stream through argument-dependent lookup,
/// so they are declared here, where every fold of a vm_state sees them): every field of `s`,
/// resources included; and the state `bytes` encode when they are in this build's format,
/// intact, cover exactly `version` and name the same VM as `seed` (or the seed has no name yet),
/// else nullopt (the caller folds the whole stream).
std::string snapshot_encode(const vm_state& s);
std::optional<vm_state> snapshot_decode(const vm_state& seed, std::uint64_t version, std::string_view bytes);

using decision = expected<std::vector<journal::payload>>;

/// already_exists unless the VM is absent or deleted (a deleted name may be reused).
decision decide_create(const vm_state& s, const vm_cmd::create& r);
/// Stopped VMs only (conflict otherwise); bad_request for a shape outside vm_limits.
decision decide_configure(const vm_state& s, std::uint32_t vcpus, std::uint32_t memory_mib);
/// Stopped VMs only: conflict while starting/stopping, already_exists when running.
decision decide_start(const vm_state& s, const std::string& kernel_version);
/// Running or paused VMs: not_running when stopped (or deleting), conflict while starting or
/// stopping.
decision decide_stop(const vm_state& s, std::string_view how);
/// Running VMs only: yields nothing (the worker records vm_paused once the VMM has paused);
/// conflict when paused already or mid-start/stop, not_running when stopped.
decision decide_pause(const vm_state& s);
/// Paused VMs only: yields nothing (the worker records vm_resumed once the VMM runs again).
decision decide_resume(const vm_state& s);
/// Stopped VMs (conflict when running unless the caller stops it first); not_found when absent.
/// Yields vm_deleting (nothing when already deleting: a delete that failed is tried again); the
/// delete's worker records vm_deleted once everything is released.
decision decide_delete(const vm_state& s);

/// Stopped VMs only (conflict when running, paused or mid-transition; not_found when absent);
/// bad_request for a guest path outside /root or a HEAD or branch that is not one. Yields
/// workspace_preparing; the worker records the outcome.
decision decide_prepare_workspace(const vm_state& s, const vm_cmd::prepare_workspace& c);

/// What command `c` decides on `s` (whose name is the stream's): the events to append right after
/// its record, or why it is refused. create: vm_created (+ vm_starting when c.start);
/// delete_force on a running VM: vm_stopping{delete} (the worker records vm_deleting after the
/// stop); reap: vm_stopping{vmm exited}; reconcile decides nothing (its events are effects: what
/// the host was found in).
decision decide(const vm_state& s, const vm_command& c);
/// The same for a recorded command (command_of, then decide): how banger-replay re-decides.
decision decide(const vm_state& s, const journal::vm_command& recorded);

/// For what needs the guest (exec, ssh, files): nothing when `s` runs; else why not and how to get
/// it running (not_found, not_running: start it, conflict: paused, resume it).
expected<void> require_running(const vm_state& s);

/// A VM stream's grammar (docs/vms.md): why `e` may not follow a stream whose events so far fold
/// into `s` ("" when it may). `commands_recorded`: whether the current life has vm_command records
/// (journals from before they existed delete from stopped). banger-replay's verify and rerun check
/// every event with it.
///
///   phase            events that may follow
///   absent, deleted  vm_command{create} (accepted), vm_created: a (new) life begins
///   stopped          vm_command, vm_configured, vm_starting, vm_deleting
///   starting         vm_command, resource_intended, resource_acquired, resource_released,
///                    vm_running, vm_start_failed
///   running          vm_command, vm_stopping, vm_adopted, vm_paused
///   paused           vm_command, vm_stopping, vm_adopted, vm_resumed
///   stopping         vm_command, resource_released, vm_stopped
///   deleting         vm_command, resource_released, vm_deleted
/// plus the invariants: a resource is acquired only after its intent, released only while held,
/// and nothing is held at vm_deleted.
std::string vm_grammar_violation(const vm_state& s, const journal::stored_event& e, bool commands_recorded);

/// How vm_command.refused records an error: "<errc>: <message>".
std::string refusal_text(const error& e);

} // namespace banger::actors
