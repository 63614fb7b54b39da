// Kind names of journal payloads. Pure functions on values; any thread.
#include "journal/events.hpp"

#include <type_traits>

namespace banger::journal {

std::string_view kind_of(const payload& p) {
  return std::visit(
    [](const auto& v) -> std::string_view {
      using t = std::decay_t<decltype(v)>;
      if constexpr (std::is_same_v<t, daemon_started>)
        return "daemon_started";
      else if constexpr (std::is_same_v<t, daemon_stopped>)
        return "daemon_stopped";
      else if constexpr (std::is_same_v<t, note>)
        return "note";
      else
        return "unknown";
    },
    p);
}

} // namespace banger::journal
