#include "common/op_id.hpp"

#include <fmt/core.h>

namespace banger {

std::string op_id_source::next() { return fmt::format("op-{:06x}", static_cast<unsigned>(rng_() & 0xffffff)); }

bool is_op_id(std::string_view s) {
  if (s.size() != 9 || s.substr(0, 3) != "op-")
    return false;
  for (char c : s.substr(3))
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return false;
  return true;
}

} // namespace banger
