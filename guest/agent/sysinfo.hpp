// Reading the guest's state from /proc and statfs: listening ports and resource stats. The
// parsers are pure functions over file text so they are tested on the host with fixed input.
// No dependencies beyond libc and the standard library (this code is linked statically).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace banger::guest {

struct listening_port {
  std::string protocol; ///< "tcp", "tcp6", "udp" or "udp6"
  std::string address;  ///< "0.0.0.0", "127.0.0.1", "::", ...
  std::uint16_t port = 0;
  std::uint64_t inode = 0;
  std::string process; ///< "pid/comm", filled by list_listening_ports
};

/// Parses /proc/net/{tcp,tcp6,udp,udp6} text (`protocol` names which): TCP sockets in state
/// LISTEN (0A), UDP sockets bound and not connected (state 07, no remote port).
std::vector<listening_port> parse_proc_net(std::string_view text, std::string_view protocol);

/// Listening TCP and bound UDP ports of the whole system, with the owning process where
/// /proc/*/fd shows it.
std::vector<listening_port> list_listening_ports();

struct system_stats {
  std::uint64_t uptime_ms = 0;
  std::uint32_t cpu_count = 0;
  std::uint64_t cpu_busy_ms = 0;
  std::uint64_t cpu_idle_ms = 0;
  float load1 = 0;
  std::uint64_t mem_total = 0;
  std::uint64_t mem_available = 0;
  std::uint64_t root_total = 0, root_free = 0;
  std::uint64_t work_total = 0, work_free = 0;
};

/// Fields of /proc/meminfo in bytes ("MemTotal" -> ...).
std::map<std::string, std::uint64_t> parse_meminfo(std::string_view text);

/// Busy and idle milliseconds from the aggregate "cpu" line of /proc/stat, and the CPU count
/// (the "cpuN" lines). `ticks_per_s` is sysconf(_SC_CLK_TCK).
struct cpu_times {
  std::uint64_t busy_ms = 0, idle_ms = 0;
  std::uint32_t count = 0;
};
cpu_times parse_proc_stat(std::string_view text, long ticks_per_s);

/// Everything, read now. Missing sources leave their fields 0.
system_stats read_system_stats();

/// Milliseconds since boot (CLOCK_BOOTTIME, the clock /proc/uptime shows): what ping answers,
/// without read_system_stats' parsing, which costs a first ping ~20 ms under TCG.
std::uint64_t uptime_ms();

/// Whole small file (e.g. under /proc); nothing when it cannot be read.
std::optional<std::string> slurp(const std::string& path);

} // namespace banger::guest
