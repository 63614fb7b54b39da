// Names and numbers of error codes, derived from the one table in error.hpp.
#include "common/error.hpp"

namespace banger {

namespace {

struct entry {
  errc code;
  std::string_view name;
};

constexpr entry table[] = {
#define BANGER_ERRC_ENTRY(name, number) {errc::name, #name},
  BANGER_ERRC_TABLE(BANGER_ERRC_ENTRY)
#undef BANGER_ERRC_ENTRY
};

} // namespace

std::string_view to_string(errc code) {
  for (const auto& e : table)
    if (e.code == code)
      return e.name;
  return "internal";
}

errc errc_from_string(std::string_view name) {
  for (const auto& e : table)
    if (e.name == name)
      return e.code;
  return errc::internal;
}

errc errc_from_number(std::uint64_t n) {
  for (const auto& e : table)
    if (static_cast<std::uint64_t>(e.code) == n)
      return e.code;
  return errc::internal;
}

} // namespace banger
