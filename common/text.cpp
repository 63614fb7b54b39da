// See text.hpp.
#include "common/text.hpp"

#include <iterator>

#include <fmt/format.h>

namespace banger {

std::string quoted_fn::operator()(std::string_view s, std::size_t max) const {
  static constexpr char hex[] = "0123456789abcdef";
  std::string_view shown = s.substr(0, max);
  std::string out;
  out.reserve(shown.size() + 5);
  out += '"';
  for (char ch : shown) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c >= 0x20 && c < 0x7f) {
      out += ch;
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 0xf];
    }
  }
  if (s.size() > shown.size())
    out += "...";
  out += '"';
  return out;
}

std::string human_bytes(std::uint64_t bytes) {
  if (bytes < 1024)
    return fmt::format("{} B", bytes);
  const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes) / 1024.0;
  std::size_t u = 0;
  while (v >= 1024.0 && u + 1 < std::size(units)) {
    v /= 1024.0;
    ++u;
  }
  return fmt::format("{:.1f} {}", v, units[u]);
}

} // namespace banger
