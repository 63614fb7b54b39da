// See text.hpp.
#include "common/text.hpp"

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

} // namespace banger
