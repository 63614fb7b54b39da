// Registry actor; see registry.hpp. State lives in the actor; no locks.
#include "actors/registry.hpp"

#include <caf/all.hpp>

#include "actors/failure.hpp"
#include "actors/messages.hpp"

namespace banger::actors {

namespace {

struct registry_state {
  registry_config cfg;
  std::map<std::string, std::map<std::string, caf::actor>> entities; // kind -> name -> actor
  static inline const char* name = "registry";
};

caf::behavior registry(caf::stateful_actor<registry_state>* self, registry_config cfg) {
  install_exception_handler(self, {"the registry", {}, {}});
  self->state.cfg = std::move(cfg);
  for (const auto& [kind, _] : self->state.cfg.kinds)
    self->state.entities[kind];
  // Entities live as long as the registry: when it is told to exit, so are they.
  self->set_exit_handler([self](const caf::exit_msg& msg) {
    for (auto& [kind, by_name] : self->state.entities)
      for (auto& [name, a] : by_name)
        caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    self->quit(msg.reason);
  });
  self->set_down_handler([self](const caf::down_msg& dm) {
    for (auto& [kind, by_name] : self->state.entities)
      for (auto it = by_name.begin(); it != by_name.end(); ++it)
        if (it->second.address() == dm.source) {
          by_name.erase(it);
          return;
        }
  });
  return {
    [self](spawn_atom, const std::string& kind, const std::string& name) -> caf::result<caf::actor> {
      auto f = self->state.cfg.kinds.find(kind);
      if (f == self->state.cfg.kinds.end())
        return caf::make_error(caf::sec::invalid_argument, "unknown entity kind " + kind);
      auto& slot = self->state.entities[kind][name];
      if (!slot) {
        slot = f->second(self->system(), name);
        self->monitor(slot);
      }
      return slot;
    },
    [self](find_atom, const std::string& kind, const std::string& name) -> caf::result<caf::actor> {
      auto k = self->state.entities.find(kind);
      if (k != self->state.entities.end()) {
        auto e = k->second.find(name);
        if (e != k->second.end())
          return e->second;
      }
      return caf::make_error(caf::sec::runtime_error, kind + " " + name);
    },
    [self](count_atom) {
      entity_counts out;
      for (const auto& [kind, by_name] : self->state.entities)
        out[kind] = static_cast<std::uint32_t>(by_name.size());
      return out;
    },
  };
}

} // namespace

caf::actor spawn_registry(caf::actor_system& sys, registry_config cfg) { return sys.spawn(registry, std::move(cfg)); }

} // namespace banger::actors
