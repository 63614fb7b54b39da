// See leases.hpp.
#include "actors/netpriv/leases.hpp"

#include <arpa/inet.h>
#include <fmt/core.h>

namespace banger::actors {

std::optional<std::uint32_t> parse_ipv4(const std::string& s) {
  // inet_pton accepts only the strict dotted quad (no octal, no short forms).
  in_addr a{};
  if (::inet_pton(AF_INET, s.c_str(), &a) != 1)
    return std::nullopt;
  return ntohl(a.s_addr);
}

std::string format_ipv4(std::uint32_t v) {
  return fmt::format("{}.{}.{}.{}", v >> 24, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff);
}

expected<subnet> subnet::parse(const std::string& cidr) {
  auto bad = [&](std::string_view why) {
    return make_error(errc::bad_request,
                      fmt::format("invalid subnet '{}': {}; use a network like 172.30.0.0/24", cidr, why));
  };
  auto slash = cidr.find('/');
  if (slash == std::string::npos)
    return bad("no /prefix");
  auto addr = parse_ipv4(cidr.substr(0, slash));
  if (!addr)
    return bad("not an IPv4 address");
  unsigned prefix = 0;
  auto p = cidr.substr(slash + 1);
  if (p.empty() || p.size() > 2 || p.find_first_not_of("0123456789") != std::string::npos)
    return bad("bad prefix");
  prefix = static_cast<unsigned>(std::stoul(p));
  if (prefix < 16 || prefix > 30)
    return bad("the prefix must be 16 to 30");
  subnet n{*addr, prefix};
  if ((*addr & (0xffffffffu >> prefix)) != 0)
    return bad(
      fmt::format("host bits are set (the network is {}/{})", format_ipv4(*addr & ~(0xffffffffu >> prefix)), prefix));
  return n;
}

std::string subnet::gateway_cidr() const { return fmt::format("{}/{}", format_ipv4(gateway()), prefix); }
std::string subnet::netmask() const { return format_ipv4(~(0xffffffffu >> prefix)); }

std::optional<std::string> lease_state::lease_of(const std::string& vm) const {
  for (const auto& [ip, owner] : by_ip)
    if (owner == vm)
      return format_ipv4(ip);
  return std::nullopt;
}

lease_state apply(lease_state s, const journal::stored_event& e) {
  s.stream_version = e.version;
  if (const auto* a = std::get_if<journal::resource_acquired>(&e.body); a && a->resource == lease_kind) {
    if (auto ip = parse_ipv4(a->id))
      s.by_ip[*ip] = a->detail;
  } else if (const auto* r = std::get_if<journal::resource_released>(&e.body); r && r->resource == lease_kind) {
    if (auto ip = parse_ipv4(r->id))
      s.by_ip.erase(*ip);
  }
  return s;
}

expected<std::string> pick_address(const lease_state& s, const subnet& net, const std::string& vm) {
  if (auto have = s.lease_of(vm))
    return *have;
  for (std::uint32_t ip = net.gateway() + 1; ip < net.broadcast(); ++ip)
    if (!s.by_ip.count(ip))
      return format_ipv4(ip);
  return make_error(errc::unavailable,
                    fmt::format("no free address left in {}/{} ({} leases); delete VMs you no longer need or "
                                "configure a larger subnet",
                                format_ipv4(net.network), net.prefix, s.by_ip.size()));
}

} // namespace banger::actors
