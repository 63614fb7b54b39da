// The helper's validators: one pure function per kind of argument the daemon may send, each
// returning errc::bad_request with a message naming the argument and the rule it broke. The
// helper calls them at the time of use, inside each operation (docs/SECURITY.md says what each
// one prevents). The path and VMM checks read the file system and /proc; everything else is pure.
// Thread-safe (no state).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace banger::helper {

using roots = std::vector<std::filesystem::path>;

/// "br-fc", or "br-fc-" followed by 1..9 of [a-z0-9] (at most 15 bytes, IFNAMSIZ-1).
expected<void> validate_bridge_name(std::string_view name);

/// "bgt" followed by 1..12 of [a-z0-9]: banger's tap prefix, never eth0, lo or a bridge.
expected<void> validate_tap_name(std::string_view name);

/// A strict IPv4 dotted quad: four decimal parts 0..255, no leading zeros, no sign or space.
expected<void> validate_ipv4(std::string_view addr);

/// "a.b.c.d/N": a strict dotted quad and a decimal prefix 8..32 (no leading zeros).
expected<void> validate_cidr(std::string_view cidr);

/// The network of a valid cidr: "172.30.0.1/24" -> "172.30.0.0/24". Asserts validity.
std::string cidr_network(std::string_view cidr);

/// A decimal uid ("1000"); refuses signs, spaces, overflow and 4294967295 ((uid_t)-1, "nobody
/// owns this tap").
expected<unsigned> parse_uid(std::string_view text);
/// The numeric form of the same rule.
expected<void> validate_uid(unsigned uid);

/// Only TERM, KILL, INT, HUP and QUIT: never STOP (a frozen VMM holds its tap and disk), never 0
/// (a probe for arbitrary pids), nothing else.
expected<void> validate_signal(int signo);

/// Lexical part of validate_path_under: absolute, normalised (no "." or ".." component, no "//",
/// no trailing "/") and equal to or below one of `allowed` (themselves normalised).
expected<void> validate_path_lexically_under(const std::filesystem::path& path, const roots& allowed);

/// validate_path_lexically_under, then an lstat walk from "/" to the path itself refusing any
/// component that is a symlink (the final one included), missing (not_found) or, before the
/// last, not a directory. The result holds until someone with write access to a component's
/// parent changes it: the roots' owner is the daemon's user, whom the helper does not trust.
expected<void> validate_path_under(const std::filesystem::path& path, const roots& allowed);

/// What /proc says about a process, for validate_vmm_identity.
struct process_identity {
  int pid = 0;
  std::string exe;               ///< readlink /proc/PID/exe ("/usr/bin/qemu-system-x86_64")
  std::vector<std::string> args; ///< /proc/PID/cmdline split at NULs
  unsigned uid = 0;              ///< owner of /proc/PID (the process's effective uid)
};

/// Reads /proc/PID (`proc` injectable for tests). not_found when the process is gone.
expected<process_identity> read_process_identity(int pid, const std::filesystem::path& proc = "/proc");

/// Pure proof that a process is one of banger's VMMs: pid > 1; exe's file name is exactly
/// qemu-system-x86_64 or firecracker; some argument names a path lexically under one of
/// `allowed` (a whole argument, or what follows "unix:" or "path=" up to the next ','); and it
/// runs as `owner_uid` or root. Refusals are errc::unauthorized.
expected<void> validate_vmm_identity(const process_identity& p, const roots& allowed, unsigned owner_uid);

/// pid > 1 (never init, never a process group or "every process" through 0 or a negative).
expected<void> validate_pid(int pid);

} // namespace banger::helper
