// Parsing the kernel command line for banger-init: key=value words, and the kernel's `ip=`
// syntax (client:server:gateway:netmask:hostname:device:autoconf). Pure; tested on the host.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace banger::guest {

/// Words of /proc/cmdline; "flag" alone maps to "". Later words win. Quotes are not special.
std::map<std::string, std::string> parse_cmdline(std::string_view text);

struct ip_config {
  std::string address; ///< dotted IPv4
  std::string gateway; ///< may be empty
  std::string netmask; ///< dotted; "255.255.255.0" when unset
  std::string hostname;
  std::string device; ///< "eth0" when unset
};

/// Parses a static `ip=` value; nothing for "dhcp", "off", "none" or a malformed value.
std::optional<ip_config> parse_ip(std::string_view value);

} // namespace banger::guest
