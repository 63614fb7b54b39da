// The catalog actor: what spans entities. It keeps a projection of every VM's and every kernel's
// and image's state, folded once at spawn (from snapshots) and then kept current from the
// journal: before it answers, it applies the events committed since it last looked, so an answer
// is never older than the last commit before the request (a `vm list` after `vm create` shows
// the VM). Reads (`vm list`, `vm show`, what exec and ssh check) are answered from it, not by
// folding streams on the RPC thread, and the rules that span entities are decided here, one at
// a time:
//   - a VM is created from the current versions of its image and kernel, and while the create
//     is in flight those artifacts count as used;
//   - an image or kernel is removed only when no VM uses it and no create for it is in flight,
//     and while its removal runs, creates from it are refused.
// So `image rm` racing `vm create` never ends with a VM whose image is gone.
//
// Detached (its own thread): catching up reads the journal. Creates and removals are forwarded
// to the entity's actor (through the registry) and answered when it answers, without blocking
// the catalog meanwhile.
//
// Messages:
//   (list_atom)                                   -> std::vector<vm_state>   every VM that exists
//   (caf::get_atom, name)                         -> expected<vm_state>      not_found when none
//   (vm_create_order)                             -> expected<vm_state>      the VM actor's answer
//   (caf::delete_atom, artifact_kind, name, op)   -> artifact_reply          the artifact actor's
#pragma once

#include <string>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/fwd.hpp>

#include "actors/image/artifact.hpp"
#include "actors/messages.hpp"
#include "actors/vm/vm.hpp"

namespace banger::journal {
class journal;
}

namespace banger::actors {

using list_atom = caf::atom_constant<caf::atom("list")>;

/// `vm create`: the VM's name and its create command with the image and kernel named (their
/// versions are filled in by the catalog), as the RPC edge validated them.
struct vm_create_order {
  std::string name;
  vm_cmd::create create;
  std::string op_id;
  progress_sink progress;
};

struct catalog_deps {
  journal::journal* journal = nullptr; ///< outlives the actor
  caf::actor* registry = nullptr;      ///< spawns the VM, kernel and image actors; outlives the actor
};

caf::actor spawn_catalog(caf::actor_system& sys, const catalog_deps& deps);

/// The current version of `k` `name` in `s`, or the error that says how to get one (pure).
expected<std::string> current_version_of(const artifact_state& s, artifact_kind k, const std::string& name);

} // namespace banger::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(banger::actors::vm_create_order)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<banger::actors::vm_state>)
