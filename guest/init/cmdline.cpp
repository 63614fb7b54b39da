#include "guest/init/cmdline.hpp"

#include <arpa/inet.h>
#include <vector>

namespace banger::guest {

std::map<std::string, std::string> parse_cmdline(std::string_view text) {
  std::map<std::string, std::string> out;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\n' || text[i] == '\t'))
      ++i;
    std::size_t j = i;
    while (j < text.size() && text[j] != ' ' && text[j] != '\n' && text[j] != '\t')
      ++j;
    if (j > i) {
      std::string_view word = text.substr(i, j - i);
      auto eq = word.find('=');
      if (eq == std::string_view::npos)
        out[std::string(word)] = "";
      else
        out[std::string(word.substr(0, eq))] = std::string(word.substr(eq + 1));
    }
    i = j;
  }
  return out;
}

namespace {
bool is_ipv4(const std::string& s) {
  in_addr a{};
  return ::inet_pton(AF_INET, s.c_str(), &a) == 1;
}
} // namespace

std::optional<ip_config> parse_ip(std::string_view value) {
  std::vector<std::string> f;
  std::size_t start = 0;
  for (;;) {
    auto colon = value.find(':', start);
    f.emplace_back(value.substr(start, colon == std::string_view::npos ? std::string_view::npos : colon - start));
    if (colon == std::string_view::npos)
      break;
    start = colon + 1;
  }
  if (f.empty() || !is_ipv4(f[0]))
    return std::nullopt;
  ip_config c;
  c.address = f[0];
  c.gateway = f.size() > 2 ? f[2] : "";
  c.netmask = f.size() > 3 && !f[3].empty() ? f[3] : "255.255.255.0";
  c.hostname = f.size() > 4 ? f[4] : "";
  c.device = f.size() > 5 && !f[5].empty() ? f[5] : "eth0";
  if ((!c.gateway.empty() && !is_ipv4(c.gateway)) || !is_ipv4(c.netmask))
    return std::nullopt;
  return c;
}

} // namespace banger::guest
