// The helper's privileged operations: bridges through `ip`, taps in-process (tun ioctls and
// rtnetlink, link.hpp: no process on a VM's start path), NAT through `nft`, ip_forward through
// `sysctl`, signals through a pidfd. Each takes arguments the dispatcher (service.cpp) has
// validated, validates them again (defense in depth: these functions build the command lines
// and requests) and runs the tool with run_process, found with find_program, or makes the
// calls. A failing tool's message names the command and its stderr, a failing call the call,
// the interface and errno (errc::operation_failed). Blocking; the helper runs them one at a
// time on its only thread.
#pragma once

#include <string>

#include "common/error.hpp"
#include "helper/startup.hpp"

namespace banger::helper {

/// Bridge `name` exists, holds address `cidr`, and is up. Idempotent; conflict when `name`
/// exists and is not a bridge.
expected<void> ensure_bridge(const std::string& name, const std::string& cidr);

/// Tap `name` exists, owned by `owner_uid`, attached to `bridge` (which must exist), and is up.
/// Idempotent; conflict when `name` exists as something else, with another owner, or attached
/// to another bridge.
expected<void> create_tap(const std::string& name, const std::string& bridge, unsigned owner_uid);

/// Tap `name` is gone. Absent is success; conflict when `name` is not a tap.
expected<void> delete_tap(const std::string& name);

/// Table `ip banger` holds the masquerade and forward rules for (bridge, cidr) exactly once,
/// and net.ipv4.ip_forward is 1.
expected<void> ensure_nat(const std::string& bridge, const std::string& cidr);

/// The rules for (bridge, cidr) are gone, and the table when it holds no rule. Absent is success.
expected<void> clear_nat(const std::string& bridge, const std::string& cidr);

/// The comment that tags the rules of (bridge, cidr): "banger BRIDGE NETWORK/N ROLE".
std::string nat_rule_tag(const std::string& bridge, const std::string& cidr, const std::string& role);

/// Opens a pidfd on `pid`, proves through /proc that it is banger's VMM (validate_vmm_identity
/// against cfg's roots and owner), then sends `signo` through the pidfd, so a pid recycled
/// between the proof and the signal is never hit. not_found when the process is gone.
expected<void> signal_vmm(int pid, int signo, const helper_config& cfg);

} // namespace banger::helper
