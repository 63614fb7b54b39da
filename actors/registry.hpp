// The registry actor: spawns and finds entity actors by (kind, name) — later one per VM, image
// and kernel — so that every command for one entity goes to one mailbox (per-name
// serialisation). Runs as an event-based actor; factories must not block.
//
// Messages:
//   (spawn_atom, kind, name) -> caf::actor   find or spawn; error for an unknown kind
//   (find_atom, kind, name)  -> caf::actor   error (not found) when absent
//   (count_atom)             -> entity_counts
// An entity that exits is forgotten (the registry monitors each one).
#pragma once

#include <functional>
#include <map>
#include <string>

#include <caf/fwd.hpp>

namespace banger::actors {

using entity_factory = std::function<caf::actor(caf::actor_system& sys, const std::string& name)>;

struct registry_config {
  std::map<std::string, entity_factory> kinds; ///< kind name -> how to spawn one
};

caf::actor spawn_registry(caf::actor_system& sys, registry_config cfg);

} // namespace banger::actors
