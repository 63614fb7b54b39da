// banger-init's network and identity, from the kernel command line (or, after a restore from a
// boot snapshot, the host's settings): the hostname, eth0's MAC, and lo and the device of
// banger.ip= (else ip=) brought up with plain ioctls: address, netmask, a default route. Runs in
// PID 1.
#pragma once

#include <map>
#include <string>

namespace banger::guest::init {

/// lo, and the device of banger.ip= (else ip=) with its address, netmask and default route.
void network(const std::map<std::string, std::string>& args);

/// Before a boot snapshot: lo and eth0 up, with no address. eth0's first up fills its receive
/// ring (tens of ms under TCG), work every VM restored from the snapshot is then spared. IPv6 is
/// off on eth0 until the VM's own MAC is set, so no link-local address of the template's leaks
/// into every restored VM.
void link_up_without_identity();

/// After a restore: eth0 takes the VM's own MAC (banger.mac=), then IPv6 comes back on it.
void set_mac(const std::map<std::string, std::string>& args);

/// sethostname from banger.hostname=, else the hostname field of banger.ip= (else ip=), and the
/// name on /etc/hosts' 127.0.1.1 line (hosts.hpp).
void hostname(const std::map<std::string, std::string>& args);

} // namespace banger::guest::init
