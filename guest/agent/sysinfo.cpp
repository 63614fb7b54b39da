// See sysinfo.hpp.
#include "guest/agent/sysinfo.hpp"

#include <arpa/inet.h>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <sstream>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

namespace banger::guest {

std::optional<std::string> slurp(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return std::nullopt;
  std::string out;
  char buf[8192];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0)
    out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

namespace {

std::optional<std::uint32_t> hex32(std::string_view s) {
  if (s.size() != 8)
    return std::nullopt;
  std::uint32_t v = 0;
  for (char c : s) {
    v <<= 4;
    if (c >= '0' && c <= '9')
      v |= static_cast<std::uint32_t>(c - '0');
    else if (c >= 'A' && c <= 'F')
      v |= static_cast<std::uint32_t>(c - 'A' + 10);
    else if (c >= 'a' && c <= 'f')
      v |= static_cast<std::uint32_t>(c - 'a' + 10);
    else
      return std::nullopt;
  }
  return v;
}

/// /proc/net/tcp prints each 32-bit word of the address in host byte order, as hex.
std::optional<std::string> decode_address(std::string_view hex, bool v6) {
  unsigned char bytes[16];
  std::size_t words = v6 ? 4 : 1;
  if (hex.size() != words * 8)
    return std::nullopt;
  for (std::size_t w = 0; w < words; ++w) {
    auto v = hex32(hex.substr(w * 8, 8));
    if (!v)
      return std::nullopt;
    std::uint32_t host = *v;
    std::memcpy(bytes + w * 4, &host, 4); // the kernel wrote the word's memory bytes; restore them
  }
  char out[INET6_ADDRSTRLEN];
  if (::inet_ntop(v6 ? AF_INET6 : AF_INET, bytes, out, sizeof out) == nullptr)
    return std::nullopt;
  return std::string(out);
}

} // namespace

std::vector<listening_port> parse_proc_net(std::string_view text, std::string_view protocol) {
  const bool v6 = protocol.ends_with('6'), udp = protocol.starts_with("udp");
  std::vector<listening_port> out;
  std::istringstream in{std::string(text)};
  std::string line;
  std::getline(in, line); // header
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string sl, local, remote, state, queues, timer, retr, uid, timeout, inode;
    if (!(f >> sl >> local >> remote >> state >> queues >> timer >> retr >> uid >> timeout >> inode))
      continue;
    if (udp ? state != "07" || !remote.ends_with(":0000") : state != "0A")
      continue;
    auto colon = local.find(':');
    if (colon == std::string::npos)
      continue;
    auto addr = decode_address(std::string_view(local).substr(0, colon), v6);
    auto port_hex = local.substr(colon + 1);
    if (!addr || port_hex.size() != 4)
      continue;
    listening_port p;
    p.protocol = std::string(protocol);
    p.address = *addr;
    p.port = static_cast<std::uint16_t>(std::stoul(port_hex, nullptr, 16));
    p.inode = std::stoull(inode);
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<listening_port> list_listening_ports() {
  std::vector<listening_port> ports;
  for (const char* protocol : {"tcp", "tcp6", "udp", "udp6"})
    if (auto t = slurp(std::string("/proc/net/") + protocol)) {
      auto more = parse_proc_net(*t, protocol);
      ports.insert(ports.end(), more.begin(), more.end());
    }
  std::map<std::uint64_t, listening_port*> by_inode;
  for (auto& p : ports)
    if (p.inode != 0)
      by_inode[p.inode] = &p;
  if (by_inode.empty())
    return ports;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr)
    return ports;
  while (dirent* d = ::readdir(proc)) {
    if (d->d_name[0] < '0' || d->d_name[0] > '9')
      continue;
    std::string fd_dir = std::string("/proc/") + d->d_name + "/fd";
    DIR* fds = ::opendir(fd_dir.c_str());
    if (fds == nullptr)
      continue;
    while (dirent* f = ::readdir(fds)) {
      char target[64];
      std::string link = fd_dir + "/" + f->d_name;
      ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
      if (n <= 0)
        continue;
      target[n] = '\0';
      unsigned long long inode = 0;
      if (std::sscanf(target, "socket:[%llu]", &inode) != 1)
        continue;
      auto it = by_inode.find(inode);
      if (it == by_inode.end() || !it->second->process.empty())
        continue;
      auto comm = slurp(std::string("/proc/") + d->d_name + "/comm").value_or("?");
      while (!comm.empty() && comm.back() == '\n')
        comm.pop_back();
      it->second->process = std::string(d->d_name) + "/" + comm;
    }
    ::closedir(fds);
  }
  ::closedir(proc);
  return ports;
}

std::map<std::string, std::uint64_t> parse_meminfo(std::string_view text) {
  std::map<std::string, std::uint64_t> out;
  std::istringstream in{std::string(text)};
  std::string key, unit;
  std::uint64_t value = 0;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    if (!(f >> key >> value))
      continue;
    if (!key.empty() && key.back() == ':')
      key.pop_back();
    unit.clear();
    f >> unit;
    out[key] = unit == "kB" ? value * 1024 : value;
  }
  return out;
}

cpu_times parse_proc_stat(std::string_view text, long ticks_per_s) {
  cpu_times t;
  if (ticks_per_s <= 0)
    ticks_per_s = 100;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("cpu", 0) != 0)
      continue;
    if (line.size() > 3 && line[3] != ' ') {
      ++t.count;
      continue;
    }
    std::istringstream f(line.substr(3));
    std::uint64_t v[8] = {};
    for (auto& x : v)
      f >> x;
    // user nice system idle iowait irq softirq steal
    std::uint64_t busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    std::uint64_t idle = v[3] + v[4];
    t.busy_ms = busy * 1000 / static_cast<std::uint64_t>(ticks_per_s);
    t.idle_ms = idle * 1000 / static_cast<std::uint64_t>(ticks_per_s);
  }
  return t;
}

std::uint64_t uptime_ms() {
  timespec ts{};
  if (::clock_gettime(CLOCK_BOOTTIME, &ts) != 0)
    return 0;
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000 + static_cast<std::uint64_t>(ts.tv_nsec) / 1000000;
}

system_stats read_system_stats() {
  system_stats s;
  s.uptime_ms = uptime_ms();
  if (auto st = slurp("/proc/stat")) {
    auto t = parse_proc_stat(*st, ::sysconf(_SC_CLK_TCK));
    s.cpu_busy_ms = t.busy_ms;
    s.cpu_idle_ms = t.idle_ms;
    s.cpu_count = t.count;
  }
  if (auto la = slurp("/proc/loadavg"))
    s.load1 = std::strtof(la->c_str(), nullptr);
  if (auto mi = slurp("/proc/meminfo")) {
    auto m = parse_meminfo(*mi);
    s.mem_total = m["MemTotal"];
    s.mem_available = m["MemAvailable"];
  }
  struct statvfs v {};
  if (::statvfs("/", &v) == 0) {
    s.root_total = static_cast<std::uint64_t>(v.f_blocks) * v.f_frsize;
    s.root_free = static_cast<std::uint64_t>(v.f_bavail) * v.f_frsize;
  }
  if (::statvfs("/root", &v) == 0) {
    s.work_total = static_cast<std::uint64_t>(v.f_blocks) * v.f_frsize;
    s.work_free = static_cast<std::uint64_t>(v.f_bavail) * v.f_frsize;
  }
  return s;
}

} // namespace banger::guest
