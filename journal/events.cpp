// Kind names of journal payloads. Pure functions on values; any thread.
#include "journal/events.hpp"

#include <type_traits>

namespace banger::journal {

std::string_view kind_of(const payload& p) {
  return std::visit([](const auto& v) { return std::decay_t<decltype(v)>::kind; }, p);
}

} // namespace banger::journal
