// Identifying a process across daemon restarts: its start time (/proc/PID/stat field 22, clock
// ticks after boot, fixed for the life of the pid) and a sha256 of its /proc/PID/cmdline. A
// reused pid has a different start time; a pid reused within the same tick by a different
// program has a different cmdline. Blocking /proc reads; any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace banger::vmm {

/// The parsed parts of /proc/PID/stat that identity checks need.
struct proc_stat {
  char state = '?';             ///< 'R', 'S', 'Z', ...
  std::uint64_t start_time = 0; ///< field 22
};

/// Parses one /proc/PID/stat line (pure). comm may contain spaces and ')': fields are counted
/// after the last ')'. nullopt when malformed.
std::optional<proc_stat> parse_proc_stat(std::string_view stat);

/// /proc/PID/stat parsed; nullopt when the pid does not exist (or /proc is unreadable).
std::optional<proc_stat> read_proc_stat(int pid);

/// sha256_hex of /proc/PID/cmdline's bytes; nullopt when unreadable. A zombie's cmdline is
/// empty, so it never matches a live VMM's hash.
std::optional<std::string> cmdline_sha256(int pid);

} // namespace banger::vmm
