// The vm actor: one per VM name (spawned through the registry), so commands for one VM queue in
// its mailbox while different VMs proceed in parallel. It folds the VM's stream at spawn,
// appends every transition before applying it, and runs start/stop/delete (pipeline.hpp) in a
// detached worker that records each step through this actor. One command runs at a time;
// others wait their turn (state queries are answered at once).
//
// Messages:
//   (vm_request)               -> expected<vm_state>   when the command is done (or refused)
//   (caf::get_atom)            -> vm_state
//
// Liveness: every 2 s a running (or paused) VM's VMM is checked (pid, start time, command line); when it
// has gone (the guest powered itself off, QEMU crashed or was killed), the actor runs a stop
// on its own: the per-run resources are released and the VM is recorded as stopped with the
// reason.
//
// Commands are journaled (vm_command, with the events their decision produced; refusals alone,
// for VMs that exist) in the order this actor takes them from its mailbox, so a recording of
// racing commands can be re-decided by banger-replay.
//
// Failures: a worker whose work throws (a bug) fails its command with internal and the actor
// reconciles the VM at once (the work may have stopped mid-start, mid-stop or mid-delete); an
// exception in the actor itself answers the command it handled and every queued one with
// internal and ends the actor (failure.hpp): the registry spawns a new one from the journal.
//
// Reconciliation: the daemon sends `reconcile` to every VM the journal shows running or mid-
// start/stop/delete before it serves any RPC (pipeline.hpp run_reconcile): a live VMM with the
// journaled identity on the same boot is adopted; everything else is settled and released.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/fwd.hpp>

#include "actors/messages.hpp"
#include "actors/vm/pipeline.hpp"

namespace banger::actors {

/// A command for one VM (commands.hpp) with what its request carries.
struct vm_request {
  vm_command command;
  std::string op_id;
  progress_sink progress; ///< may be null; gets (stage, elapsed ms) per finished stage
  vm_attachments with;    ///< what the command's work needs besides its fields (a workspace stream)
};

struct vm_deps {
  caf::actor* writer = nullptr;        ///< the journal writer; outlives the actor
  journal::journal* journal = nullptr; ///< read at spawn only
  std::shared_ptr<vm_host> host;       ///< thread-safe: workers of different VMs share it
};

caf::actor spawn_vm_actor(caf::actor_system& sys, const std::string& name, const vm_deps& deps);

} // namespace banger::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(banger::actors::vm_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(banger::actors::vm_state)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(banger::expected<banger::actors::vm_state>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<banger::journal::payload>)
