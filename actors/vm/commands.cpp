// See commands.hpp. Pure functions on values.
#include "actors/vm/commands.hpp"

#include <fmt/core.h>

#include "common/fields_json.hpp"
#include "common/text.hpp"

namespace banger::actors {

std::string_view name_of(const vm_command& c) {
  return std::visit([](const auto& v) { return std::decay_t<decltype(v)>::name; }, c);
}

journal::vm_command record_of(const vm_command& c, std::string refused) {
  auto args = std::visit([](const auto& v) { return fields_json::to_json(v).dump(); }, c);
  return {std::string(name_of(c)), std::move(args), std::move(refused)};
}

expected<vm_command> command_named(std::string_view name) {
  expected<vm_command> out = make_error(errc::bad_request, fmt::format("unknown VM command {}", quoted(name)));
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    ((std::variant_alternative_t<I, vm_command>::name == name ? (out = vm_command(std::in_place_index<I>), 0) : 0),
     ...);
  }
  (std::make_index_sequence<std::variant_size_v<vm_command>>{});
  return out;
}

expected<vm_command> command_of(const journal::vm_command& r) {
  auto args = nlohmann::json::parse(r.args.empty() ? std::string("{}") : r.args, nullptr, false);
  if (args.is_discarded() || !args.is_object())
    return make_error(errc::bad_request, fmt::format("command {}: its arguments are not a JSON object", r.command));
  auto c = command_named(r.command);
  if (!c)
    return c;
  std::visit([&](auto& v) { fields_json::from_json(args, v); }, *c);
  return c;
}

} // namespace banger::actors
