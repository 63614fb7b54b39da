// A VM's start, stop and delete as ordered steps over a vm_host (the effects), recording every
// transition through a `recorder` before going on. Runs on the VM's worker thread (blocking).
// The sequencing lives here, apart from the effects, so unit tests drive it with a fake host
// that fails at any step and check what was undone and journaled.
//
// Start: the resource table's concurrent group ({overlay, work_disk, ip, tap, sockets}: they
// depend only on the VM) at once, then its sequential kinds (nat -> vmm), then agent ->
// post_start (resources.hpp). Each resource is recorded as intended, made, recorded as
// acquired (the concurrent group's intents in one append before any is made, its facts in one
// append after). When a step fails, every resource this attempt touched is released (each
// release recorded) in dependency order — process, network, disks, files; within a class the
// reverse of acquisition — then vm_start_failed. Per-VM resources (overlay, work_disk, ip) made
// by an earlier start are kept. vm_host::acquire must therefore be safe to call concurrently
// for different kinds.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "actors/vm/vm.hpp"
#include "workspace/stream.hpp"

namespace banger::actors {

struct step_result {
  std::string id, detail;
};

/// Where a workspace stream comes from (docs/workspaces.md): the daemon's RPC side is fed by the
/// CLI; the VM's worker pulls every record into a receiver until the stream's finish (the
/// receiver's result) or its end (an error; pump has called to.abort()). Work that fails before
/// it pumps need not drain it: the feed ends, with the command's error, when the command does.
class workspace_feed {
public:
  virtual ~workspace_feed() = default;
  virtual expected<workspace::landed> pump(workspace::receiver& to) = 0;
};

/// What a request brings besides its command (never journaled).
struct vm_attachments {
  std::shared_ptr<workspace_feed> workspace; ///< prepare_workspace's stream
};

/// The host side of a VM's life. Blocking; called from one worker thread at a time per VM.
class vm_host {
public:
  virtual ~vm_host() = default;
  /// Whether a start acquires `kind` at all (e.g. nat only when NAT is enabled).
  virtual bool wants(const vm_state& s, resource_kind kind) = 0;
  /// The id the resource will have when it is known before making it; "" otherwise (ip, vmm).
  virtual std::string planned_id(const vm_state& s, resource_kind kind) = 0;
  virtual expected<step_result> acquire(const vm_state& s, resource_kind kind, const std::string& op) = 0;
  /// Releases one resource. Idempotent: a resource that is already gone is success.
  virtual expected<void> release(const vm_state& s, const vm_resource& r, const std::string& op) = 0;
  /// Waits until the guest agent answers (after the VMM is up).
  virtual expected<void> wait_agent(const vm_state& s, const std::string& op) = 0;
  /// After the agent answers: host-side bookkeeping (the VM's ssh host key into known_hosts).
  virtual expected<void> post_start(const vm_state& s, const std::string& op) = 0;
  /// Freezes the guest (the VMM's vCPUs stop; memory, devices and resources stay); idempotent.
  virtual expected<void> pause(const vm_state& s, const std::string& op) = 0;
  /// Lets a paused guest run again; idempotent.
  virtual expected<void> resume(const vm_state& s, const std::string& op) = 0;
  /// Whether the VMM holds the guest paused (asks the VMM; not the journal).
  virtual expected<bool> is_paused(const vm_state& s) = 0;
  /// Brings the VMM down (a paused guest is resumed first, so that it can power off cleanly): agent sync+poweroff, QMP
  /// powerdown, quit, then SIGKILL after timeouts; straight to SIGKILL with `kill`. Returns how it ended ("powered
  /// off", "killed", ...).
  virtual std::string shutdown(const vm_state& s, bool kill, const std::string& op) = 0;
  /// Whether the VMM the journal names still runs (true when none is recorded). Reads /proc
  /// only: cheap and never blocks on a device.
  virtual bool vmm_alive(const vm_state& s) = 0;
  /// Why a VM the journal shows running cannot be adopted by a (re)started daemon: "" when its
  /// VMM runs with the journaled identity on the boot it was started in; else the reason.
  virtual std::string adoption_refused(const vm_state& s) = 0;
  /// After delete: removes what is left of the VM's directories (console log, empty dirs).
  virtual void remove_dirs(const vm_state& s) = 0;
  /// Lands the workspace `feed` brings at `guest_path`: in the work disk (held) of a stopped VM
  /// or of a running one whose guest let go of it (s.workspace_disk_released), else through the
  /// running VM's agent.
  virtual expected<workspace::landed> land_workspace(const vm_state& s, const std::string& guest_path,
                                                     workspace_feed& feed, const std::string& op) = 0;
  /// Has the running guest let go of its work disk (unmount /root) so that the host can write
  /// it; fails (the guest keeps it) when anything in the guest uses /root.
  virtual expected<void> release_work_disk(const vm_state& s, const std::string& op) = 0;
  /// Has the running guest mount its work disk again (nothing to do when it is mounted).
  virtual expected<void> attach_work_disk(const vm_state& s, const std::string& op) = 0;
  /// Checks and repairs the work disk after a landing that was cut short (e2fsck), then removes
  /// what the landing at s.workspace_pending_path left; nothing to do when the VM has none.
  virtual expected<void> repair_work_disk(const vm_state& s, const std::string& op) = 0;
};

/// Appends `events` to the VM's stream and applies them; the new state, or why the journal
/// refused (then nothing was applied).
using recorder = std::function<expected<vm_state>(std::vector<journal::payload> events)>;
/// A finished stage and how long it took, for the CLI's progress.
using stage_report = std::function<void(const std::string& stage, std::chrono::milliseconds took)>;

/// Runs a start whose vm_starting is recorded (s.phase == starting). Ends with vm_running, or
/// with everything this attempt made released and vm_start_failed (then the error says which
/// stage failed and why).
expected<vm_state> run_start(vm_state s, vm_host& host, const recorder& record, const stage_report& report,
                             const std::string& op);

/// Runs a stop whose vm_stopping is recorded: shutdown, per-run resources released in dependency order,
/// vm_stopped (with `reason`, or how the shutdown went when empty). A resource that cannot be
/// released stays recorded as held and is named in the error (the VM is still recorded as stopped).
expected<vm_state> run_stop(vm_state s, vm_host& host, bool kill, const recorder& record, const stage_report& report,
                            const std::string& op, const std::string& reason = {});

/// Settles a VM the journal shows mid-start or mid-stop (the daemon died there): the VMM, if the
/// journaled one still runs, is killed; every per-run resource and every resource only intended
/// is released; the VM is recorded as stopped (vm_start_failed or vm_stopped, reason
/// "interrupted"). Per-VM resources a start completed (disks, lease) are kept. Resources that
/// cannot be released stay on record and are named in the error.
expected<vm_state> run_recover(vm_state s, vm_host& host, const recorder& record, const stage_report& report,
                               const std::string& op);

/// Lands a workspace in a VM whose workspace_preparing is recorded: makes its work disk first
/// when it never started (a per-VM resource, recorded as a start records it), then the stream,
/// then workspace_prepared, or workspace_prepare_failed with the reason (the previous workspace
/// stays: the landing swaps only a whole tree in). Into a running VM, the guest is first asked
/// to let go of the disk (workspace_disk_released), so that the host writes it as it writes a
/// stopped VM's, and to mount it again after; when the guest cannot (/root is in use), the
/// stream goes through the agent.
expected<vm_state> run_prepare_workspace(vm_state s, vm_host& host, const recorder& record, const stage_report& report,
                                         const std::string& op, const vm_cmd::prepare_workspace& c,
                                         workspace_feed* feed);

/// Reconciles a VM with the host when a daemon starts (DESIGN §4): mid-start or mid-stop ->
/// run_recover; mid-delete -> the delete is finished; running or paused -> adopted (vm_adopted)
/// when host.adoption_refused() has no objection and the VMM is in the journaled run state or
/// could be set to it (a daemon that died between the VMM's pause or resume and its record left
/// them apart: the journal wins), else stopped (vm_stopping{reconcile}, its per-run
/// resources released in dependency order, vm_stopped with the reason). A workspace preparation
/// without its outcome: the work disk is repaired and workspace_prepare_failed recorded. Other
/// phases: nothing.
expected<vm_state> run_reconcile(vm_state s, vm_host& host, const recorder& record, const stage_report& report,
                                 const std::string& op);

/// Deletes a VM whose vm_deleting is recorded: every resource still held is released in dependency order,
/// then vm_deleted and the VM's directories go. A resource that cannot be released fails the
/// delete (nothing is forgotten that may still exist; the VM stays `deleting`, and a new delete
/// or the next daemon start tries again).
expected<vm_state> run_delete(vm_state s, vm_host& host, const recorder& record, const stage_report& report,
                              const std::string& op);

/// What a command runs on the VM's worker once its decision is on record (`decided`: the state
/// after it). Empty when the decision is all there is to it (create without start, configure).
using vm_work =
  std::function<expected<vm_state>(vm_state s, vm_host& host, const recorder& record, const stage_report& report)>;
vm_work work_of(const vm_command& c, const vm_state& decided, const std::string& op, const vm_attachments& with = {});

} // namespace banger::actors
