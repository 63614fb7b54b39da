// See network.hpp.
#include "guest/init/network.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <net/route.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "guest/init/cmdline.hpp"
#include "guest/init/console.hpp"
#include "guest/init/hosts.hpp"

namespace banger::guest::init {

namespace {

bool set_flags_up(int sock, const std::string& dev) {
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, dev.c_str(), IFNAMSIZ - 1);
  if (::ioctl(sock, SIOCGIFFLAGS, &ifr) != 0)
    return false;
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  return ::ioctl(sock, SIOCSIFFLAGS, &ifr) == 0;
}

bool set_addr(int sock, const std::string& dev, unsigned long req, const std::string& ip) {
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, dev.c_str(), IFNAMSIZ - 1);
  auto* sin = reinterpret_cast<sockaddr_in*>(&ifr.ifr_addr);
  sin->sin_family = AF_INET;
  ::inet_pton(AF_INET, ip.c_str(), &sin->sin_addr);
  return ::ioctl(sock, req, &ifr) == 0;
}

void write_small(const std::string& path, const char* text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return;
  ssize_t ignored = ::write(fd, text, std::strlen(text));
  (void)ignored;
  ::close(fd);
}

} // namespace

void network(const std::map<std::string, std::string>& args) {
  int sock = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) {
    say("socket: " + errstr());
    return;
  }
  set_flags_up(sock, "lo");
  // banger.ip= (what banger passes, so the initramfs leaves the network to us), else ip=.
  auto it = args.find("banger.ip");
  if (it == args.end())
    it = args.find("ip");
  if (it == args.end()) {
    ::close(sock);
    return;
  }
  auto cfg = parse_ip(it->second);
  if (!cfg) {
    say("ip=" + it->second + " is not a static configuration; leaving the network alone");
    ::close(sock);
    return;
  }
  if (!set_addr(sock, cfg->device, SIOCSIFADDR, cfg->address) ||
      !set_addr(sock, cfg->device, SIOCSIFNETMASK, cfg->netmask) || !set_flags_up(sock, cfg->device)) {
    if (errno != EEXIST)
      say("configuring " + cfg->device + " as " + cfg->address + ": " + errstr());
  }
  if (!cfg->gateway.empty()) {
    rtentry rt{};
    auto* dst = reinterpret_cast<sockaddr_in*>(&rt.rt_dst);
    auto* gw = reinterpret_cast<sockaddr_in*>(&rt.rt_gateway);
    auto* mask = reinterpret_cast<sockaddr_in*>(&rt.rt_genmask);
    dst->sin_family = gw->sin_family = mask->sin_family = AF_INET;
    ::inet_pton(AF_INET, cfg->gateway.c_str(), &gw->sin_addr);
    rt.rt_flags = RTF_UP | RTF_GATEWAY;
    if (::ioctl(sock, SIOCADDRT, &rt) != 0 && errno != EEXIST)
      say("default route via " + cfg->gateway + ": " + errstr());
  }
  ::close(sock);
  say("network " + cfg->device + " " + cfg->address + (cfg->gateway.empty() ? "" : " via " + cfg->gateway));
}

void link_up_without_identity() {
  int sock = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0)
    return;
  write_small("/proc/sys/net/ipv6/conf/eth0/disable_ipv6", "1");
  set_flags_up(sock, "lo");
  set_flags_up(sock, "eth0");
  ::close(sock);
}

void set_mac(const std::map<std::string, std::string>& args) {
  if (auto it = args.find("banger.mac"); it != args.end()) {
    unsigned b[6];
    char tail;
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, "eth0", IFNAMSIZ - 1);
    if (std::sscanf(it->second.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail) !=
        6) {
      say("banger.mac=" + it->second + " is not a MAC address; eth0 keeps its own");
    } else {
      ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
      for (int i = 0; i < 6; ++i)
        ifr.ifr_hwaddr.sa_data[i] = static_cast<char>(b[i]);
      int sock = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      if (sock < 0 || ::ioctl(sock, SIOCSIFHWADDR, &ifr) != 0)
        say("setting eth0's MAC to " + it->second + ": " + errstr());
      if (sock >= 0)
        ::close(sock);
    }
  }
  write_small("/proc/sys/net/ipv6/conf/eth0/disable_ipv6", "0");
}

namespace {

/// The name on /etc/hosts' 127.0.1.1 line (hosts.hpp), through a temporary file renamed over
/// (the rootfs is the VM's own overlay). Best effort: a failure is a console line.
void hosts_entry(const std::string& name) {
  constexpr const char* path = "/etc/hosts";
  std::string text;
  if (int fd = ::open(path, O_RDONLY | O_CLOEXEC); fd >= 0) {
    struct stat st {};
    if (::fstat(fd, &st) != 0 || st.st_size > (1 << 20)) {
      ::close(fd);
      say("/etc/hosts: not given this VM's name (unreadable or over 1 MiB)");
      return;
    }
    text.resize(static_cast<std::size_t>(st.st_size));
    ssize_t n = ::read(fd, text.data(), text.size());
    ::close(fd);
    text.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  }
  auto want = hosts_with_name(text, name);
  if (want == text)
    return;
  constexpr const char* tmp = "/etc/.hosts.banger";
  int fd = ::open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
  bool ok = fd >= 0 && ::write(fd, want.data(), want.size()) == static_cast<ssize_t>(want.size());
  if (fd >= 0)
    ::close(fd);
  if (!ok || ::rename(tmp, path) != 0) {
    say(std::string("/etc/hosts: ") + errstr());
    ::unlink(tmp);
  }
}

} // namespace

void hostname(const std::map<std::string, std::string>& args) {
  std::string name;
  if (auto it = args.find("banger.hostname"); it != args.end())
    name = it->second;
  else if (auto ip = args.find("banger.ip"); ip != args.end() || (ip = args.find("ip")) != args.end())
    if (auto cfg = parse_ip(ip->second))
      name = cfg->hostname;
  if (name.empty())
    return;
  if (::sethostname(name.c_str(), name.size()) != 0)
    say("sethostname " + name + ": " + errstr());
  hosts_entry(name);
}

} // namespace banger::guest::init
