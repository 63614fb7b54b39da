// Names of error codes, as shown to users and in --json output.
#include "common/error.hpp"

#include <array>

namespace banger {

namespace {
constexpr std::array<std::string_view, 10> names = {
  "none",         "not_found",   "already_exists", "bad_request",      "not_running",
  "unauthorized", "unavailable", "conflict",       "operation_failed", "internal",
};
} // namespace

std::string_view to_string(errc code) {
  auto i = static_cast<std::size_t>(code);
  return i < names.size() ? names[i] : std::string_view{"internal"};
}

errc errc_from_string(std::string_view name) {
  for (std::size_t i = 0; i < names.size(); ++i)
    if (names[i] == name)
      return static_cast<errc>(i);
  return errc::internal;
}

} // namespace banger
