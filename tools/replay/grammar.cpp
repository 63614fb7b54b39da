// See grammar.hpp. Pure.
#include "tools/replay/grammar.hpp"

#include <algorithm>

#include <fmt/core.h>

#include "common/text.hpp"

namespace banger::replay {

namespace {

using actors::vm_phase;

template <class... Ts>
struct overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
overloaded(Ts...) -> overloaded<Ts...>;

std::string held_list(const actors::vm_state& s) {
  std::string out;
  for (const auto& r : s.resources)
    out += fmt::format("{}{} {} ({})", out.empty() ? "" : ", ", actors::to_string(r.kind), r.id.empty() ? "-" : r.id,
                       r.acquired ? "acquired" : "intended");
  return out;
}

} // namespace

std::string vm_grammar_violation(const actors::vm_state& s, const journal::stored_event& e, bool commands_recorded) {
  using namespace journal;
  const vm_phase p = s.phase;
  const bool gone = p == vm_phase::absent || p == vm_phase::deleted;
  auto in = [&](std::initializer_list<vm_phase> ok) { return std::find(ok.begin(), ok.end(), p) != ok.end(); };
  auto illegal = [&]() {
    return fmt::format("{} is not legal while the VM is {}", kind_of(e.body), actors::to_string(p));
  };
  return std::visit(
    overloaded{
      [&](const vm_command& c) -> std::string {
        if (!gone)
          return {};
        if (c.command != actors::vm_cmd::create::name)
          return fmt::format("vm_command {} while the VM is {}: only a create begins a life", quoted(c.command),
                             actors::to_string(p));
        if (!c.refused.empty())
          return fmt::format("a refused create is recorded while the VM is {}: refusals are recorded only for a "
                             "VM that exists",
                             actors::to_string(p));
        return {};
      },
      [&](const vm_created&) -> std::string { return gone ? "" : illegal(); },
      [&](const vm_configured&) -> std::string { return in({vm_phase::stopped}) ? "" : illegal(); },
      [&](const vm_starting&) -> std::string { return in({vm_phase::stopped}) ? "" : illegal(); },
      [&](const resource_intended&) -> std::string { return in({vm_phase::starting}) ? "" : illegal(); },
      [&](const resource_acquired& r) -> std::string {
        if (!in({vm_phase::starting}))
          return illegal();
        bool intended = std::any_of(s.resources.begin(), s.resources.end(), [&](const actors::vm_resource& h) {
          return actors::to_string(h.kind) == r.resource && !h.acquired && (h.id == r.id || h.id.empty());
        });
        if (!intended)
          return fmt::format("resource {} {} is acquired without an intent on record", r.resource, quoted(r.id));
        return {};
      },
      [&](const resource_released& r) -> std::string {
        bool legacy_delete = !commands_recorded && p == vm_phase::stopped;
        if (!in({vm_phase::starting, vm_phase::stopping, vm_phase::deleting}) && !legacy_delete)
          return illegal();
        if (!std::any_of(s.resources.begin(), s.resources.end(), [&](const actors::vm_resource& h) {
              return actors::to_string(h.kind) == r.resource && h.id == r.id;
            }))
          return fmt::format("resource {} {} is released but not held", r.resource, quoted(r.id));
        return {};
      },
      [&](const vm_running&) -> std::string { return in({vm_phase::starting}) ? "" : illegal(); },
      [&](const vm_start_failed&) -> std::string { return in({vm_phase::starting}) ? "" : illegal(); },
      [&](const vm_stopping&) -> std::string { return in({vm_phase::running}) ? "" : illegal(); },
      [&](const vm_stopped&) -> std::string { return in({vm_phase::stopping}) ? "" : illegal(); },
      [&](const vm_adopted&) -> std::string { return in({vm_phase::running}) ? "" : illegal(); },
      [&](const vm_deleting&) -> std::string { return in({vm_phase::stopped}) ? "" : illegal(); },
      [&](const vm_deleted&) -> std::string {
        if (!in({vm_phase::deleting}) && !(!commands_recorded && p == vm_phase::stopped))
          return illegal();
        if (!s.resources.empty())
          return fmt::format("vm_deleted while resources are still held: {}", held_list(s));
        return {};
      },
      [&](const unknown_event&) -> std::string { return {}; }, // a newer banger's kind: not ours to judge
      [&](const auto&) -> std::string { return fmt::format("{} does not belong in a VM's stream", kind_of(e.body)); },
    },
    e.body);
}

} // namespace banger::replay
