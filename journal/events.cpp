// Kind names and fields of journal payloads. Pure functions on values; any thread.
#include "journal/events.hpp"

#include <type_traits>

namespace banger::journal {

std::string_view kind_of(const payload& p) {
  return std::visit([](const auto& v) { return std::decay_t<decltype(v)>::kind; }, p);
}

std::vector<named_value> fields_of(const payload& p) {
  std::vector<named_value> out;
  std::visit(
    [&](const auto& v) {
      for_each_field(v, [&](std::string_view name, const auto& x) {
        using t = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<t, std::string>)
          out.push_back({name, x});
        else if constexpr (std::is_signed_v<t>)
          out.push_back({name, static_cast<std::int64_t>(x)});
        else
          out.push_back({name, static_cast<std::uint64_t>(x)});
      });
    },
    p);
  return out;
}

} // namespace banger::journal
