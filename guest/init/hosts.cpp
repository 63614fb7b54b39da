// See hosts.hpp.
#include "guest/init/hosts.hpp"

namespace banger::guest {

std::string hosts_with_name(std::string_view hosts, std::string_view name) {
  if (name.empty())
    return std::string(hosts);
  std::string out = hosts.empty() ? "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" : "";
  bool placed = false;
  std::string mine = "127.0.1.1\t" + std::string(name) + "\n";
  while (!hosts.empty()) {
    auto end = hosts.find('\n');
    auto line = hosts.substr(0, end);
    hosts = end == std::string_view::npos ? std::string_view() : hosts.substr(end + 1);
    auto first = line.find_first_not_of(" \t");
    auto word = first == std::string_view::npos ? std::string_view() : line.substr(first);
    if (word.starts_with("127.0.1.1") && (word.size() == 9 || word[9] == ' ' || word[9] == '\t')) {
      if (!placed)
        out += mine;
      placed = true;
      continue;
    }
    out.append(line);
    out.push_back('\n');
  }
  if (!placed)
    out += mine;
  return out;
}

} // namespace banger::guest
