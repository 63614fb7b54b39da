// IP leases in the bridge subnet: the pure part of the netpriv actor. The subnet's first host
// address is the gateway (the bridge's own address); VMs get the next free ones. Leases are
// folded from the journal stream "net/<bridge>": resource_acquired{kind "lease", id IP, detail VM}
// and resource_released{kind "lease", id IP}. No I/O; any thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "common/error.hpp"
#include "journal/events.hpp"

namespace banger::actors {

struct subnet {
  std::uint32_t network = 0; ///< host byte order
  unsigned prefix = 24;

  /// "172.30.0.0/24" (host bits must be zero); prefix 16..30.
  static expected<subnet> parse(const std::string& cidr);
  std::uint32_t gateway() const { return network + 1; }
  std::uint32_t broadcast() const { return network | (prefix == 32 ? 0u : (0xffffffffu >> prefix)); }
  std::string gateway_cidr() const; ///< "172.30.0.1/24": the bridge's address
  std::string netmask() const;      ///< "255.255.255.0"
};

std::string format_ipv4(std::uint32_t host_order);
std::optional<std::uint32_t> parse_ipv4(const std::string& s);

struct lease_state {
  std::uint64_t stream_version = 0;
  std::map<std::uint32_t, std::string> by_ip; ///< leased address -> VM name

  std::optional<std::string> lease_of(const std::string& vm) const;
};

inline constexpr std::string_view lease_kind = "lease";

lease_state apply(lease_state s, const journal::stored_event& e);

/// The VM's existing lease, or the lowest free address after the gateway; unavailable when the
/// subnet is full.
expected<std::string> pick_address(const lease_state& s, const subnet& net, const std::string& vm);

} // namespace banger::actors
