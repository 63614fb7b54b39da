// banger-init: PID 1 of banger guests (images may opt for their own init instead).
//   1. mounts proc, sys, dev, devpts, shm, run, tmp; sets the hostname (banger.hostname=, else
//      the ip= hostname)
//   2. starts banger-agent first (linked in: forked, not exec'd); it holds commands until step 5.
//      With banger.await (a boot snapshot's template) it then brings lo and eth0 up without an
//      address and waits: the host snapshots the guest there, and each VM restored from the
//      snapshot gets its hostname, banger.ip=, banger.mac= through the agent (configure), which
//      step 1's hostname and step 3 then use
//   3. brings networking up from banger.ip= (else ip=) with plain ioctls (lo, the device's
//      address and netmask, a default route) while a child mounts the work disk (banger.work=,
//      default /dev/vdb) at /root
//   4. starts sshd when the image has one, generating host keys on first boot (images carry
//      none, so no two VMs share keys)
//   5. creates its ready file; restarts sshd or the agent if either dies
//   6. reaps every zombie; on SIGUSR2/SIGTERM/SIGINT/SIGUSR1 or the ACPI power button (KEY_POWER
//      on /dev/input/event*) it stops everything, syncs, unmounts and powers off.
// Single-threaded: one poll loop over a signalfd and the input devices. Statically linked.
#include <arpa/inet.h>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/input.h>
#include <map>
#include <net/if.h>
#include <net/if_arp.h>
#include <net/route.h>
#include <netinet/in.h>
#include <poll.h>
#include <string>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <vector>

#include "guest/agent/entry.hpp"
#include "guest/init/cmdline.hpp"

namespace {

using namespace banger::guest;

int console_fd = 2;

/// Console lines carry the guest's uptime, so a slow boot shows where its time went.
void say(const std::string& msg) {
  timespec ts{};
  ::clock_gettime(CLOCK_BOOTTIME, &ts);
  char stamp[32];
  std::snprintf(stamp, sizeof stamp, "[%ld.%03ld] ", static_cast<long>(ts.tv_sec), ts.tv_nsec / 1000000);
  std::string line = "banger-init: " + std::string(stamp) + msg + "\n";
  ssize_t ignored = ::write(console_fd, line.data(), line.size());
  (void)ignored;
}

std::string errstr() { return std::strerror(errno); }

bool exists(const char* p) { return ::access(p, F_OK) == 0; }

std::string read_small(const char* path) {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return {};
  char buf[4096];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

void mount_fs(const char* src, const char* target, const char* type, unsigned long flags, const char* data) {
  ::mkdir(target, 0755);
  if (::mount(src, target, type, flags, data) != 0 && errno != EBUSY)
    say(std::string("mount ") + type + " on " + target + ": " + errstr());
}

void mount_basics() {
  mount_fs("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);
  mount_fs("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);
  mount_fs("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
  mount_fs("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "gid=5,mode=620,ptmxmode=666");
  mount_fs("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  mount_fs("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
  mount_fs("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  if (!exists("/dev/ptmx"))
    ::symlink("pts/ptmx", "/dev/ptmx");
}

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

/// The host's settings for a guest restored from a boot snapshot (banger.await on the command
/// line): the agent's configure writes them here, in the kernel command line's syntax.
constexpr const char* settings_file = "/run/banger-init.settings";

void write_small(const std::string& path, const char* text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return;
  ssize_t ignored = ::write(fd, text, std::strlen(text));
  (void)ignored;
  ::close(fd);
}

/// Before a boot snapshot: lo and eth0 up, with no address. eth0's first up fills its receive
/// ring (tens of ms under TCG), work every VM restored from the snapshot is then spared. IPv6 is
/// off on eth0 until the VM's own MAC is set, so no link-local address of the template's leaks
/// into every restored VM.
void link_up_without_identity() {
  int sock = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0)
    return;
  write_small("/proc/sys/net/ipv6/conf/eth0/disable_ipv6", "1");
  set_flags_up(sock, "lo");
  set_flags_up(sock, "eth0");
  ::close(sock);
}

/// After a restore: eth0 takes the VM's own MAC (banger.mac=), then IPv6 comes back on it.
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

void hostname(const std::map<std::string, std::string>& args) {
  std::string name;
  if (auto it = args.find("banger.hostname"); it != args.end())
    name = it->second;
  else if (auto ip = args.find("banger.ip"); ip != args.end() || (ip = args.find("ip")) != args.end())
    if (auto cfg = parse_ip(ip->second))
      name = cfg->hostname;
  if (!name.empty() && ::sethostname(name.c_str(), name.size()) != 0)
    say("sethostname " + name + ": " + errstr());
}

void mount_work(const std::map<std::string, std::string>& args, bool restored) {
  std::string dev = "/dev/vdb";
  if (auto it = args.find("banger.work"); it != args.end())
    dev = it->second;
  if (dev == "none")
    return;
  for (int i = 0; i < 30 && !exists(dev.c_str()); ++i)
    ::usleep(100 * 1000);
  if (!exists(dev.c_str())) {
    say("no work disk at " + dev + "; /root stays on the root filesystem");
    return;
  }
  ::mkdir("/root", 0700);
  if (restored) {
    // The snapshot's kernel probed its own work disk: drop whatever it cached of that device
    // (the first block, which holds ext4's superblock) before mounting this VM's.
    int fd = ::open(dev.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || ::ioctl(fd, BLKFLSBUF, 0) != 0)
      say("flushing " + dev + "'s cache: " + errstr());
    if (fd >= 0)
      ::close(fd);
  }
  // noinit_itable: no ext4lazyinit thread zeroing the unused inode tables in the background
  // while the VM's first commands run. Work disks are sparse copies of a template, so those
  // tables already read as zeros; zeroing them only costs guest CPU and disk space.
  if (::mount(dev.c_str(), "/root", "ext4", MS_NOATIME, "noinit_itable") != 0)
    say("mount " + dev + " on /root: " + errstr());
  else
    say("work disk " + dev + " on /root");
}

struct service {
  std::string name;
  std::vector<std::string> argv;
  pid_t pid = -1;
  time_t restart_at = 0;
  bool in_process = false; ///< the agent: forked from this binary, argv unused
};

/// Where init says the guest is ready for commands; the agent (started before eth0, /root and
/// sshd's host keys are set up, so the host's first ping is answered early) holds exec,
/// writeFile and readFile until it exists. Every service gets its path as BANGER_READY_FILE.
constexpr const char* ready_file = "/run/banger-init.ready";

/// Every service's environment.
constexpr const char* service_path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr const char* service_home = "/root";

/// In a new child: no blocked signals, a session of its own, /dev/null in, the console out.
void child_setup() {
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::setsid();
  int devnull = ::open("/dev/null", O_RDONLY);
  ::dup2(devnull, 0);
  ::dup2(console_fd, 1);
  ::dup2(console_fd, 2);
}

pid_t spawn(const std::vector<std::string>& argv) {
  pid_t pid = ::fork();
  if (pid != 0)
    return pid;
  child_setup();
  std::vector<char*> args;
  for (const auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::string path = std::string("PATH=") + service_path, home = std::string("HOME=") + service_home;
  std::string ready = std::string("BANGER_READY_FILE=") + ready_file; // for the agent
  char* envp[] = {path.data(), home.data(), ready.data(), nullptr};
  ::execve(args[0], args.data(), envp);
  std::fprintf(stderr, "banger-init: exec %s: %s\n", args[0], std::strerror(errno));
  ::_exit(127);
}

bool awaiting_settings = false; ///< banger.await: the agent's configure brings the settings

/// The agent, in a child of this process (its code is linked in), with the environment and
/// stdio spawn() gives a service. No exec: the child starts with the code loaded, which under
/// TCG saves a booting guest the exec of a 9 MB static binary (~30 ms). Init's own descriptors
/// (the console, the signalfd, input devices) are closed in the child; exec would have.
pid_t fork_agent() {
  pid_t pid = ::fork();
  if (pid != 0)
    return pid;
  child_setup();
  ::close_range(3, ~0U, 0);
  ::clearenv();
  ::setenv("PATH", service_path, 1);
  ::setenv("HOME", service_home, 1);
  ::setenv("BANGER_READY_FILE", ready_file, 1);
  if (awaiting_settings)
    ::setenv("BANGER_SETTINGS_FILE", settings_file, 1);
  ::prctl(PR_SET_NAME, "banger-agent", 0, 0, 0);
  char arg0[] = "banger-agent";
  char* args[] = {arg0, nullptr};
  ::_exit(agent_main(1, args));
}

pid_t start(const service& s) { return s.in_process ? fork_agent() : spawn(s.argv); }

/// Waits for settings_file (inotify on /run, checked each second as well), restarting the agent
/// if it dies meanwhile: it is the only way the settings come. Returns the file's contents.
std::string await_settings(pid_t& agent) {
  int in = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (in >= 0)
    ::inotify_add_watch(in, "/run", IN_CREATE | IN_MOVED_TO);
  for (;;) {
    if (exists(settings_file)) {
      if (in >= 0)
        ::close(in);
      return read_small(settings_file);
    }
    pollfd p{in, POLLIN, 0};
    if (::poll(&p, in >= 0 ? 1 : 0, 1000) > 0) {
      char buf[4096];
      while (::read(in, buf, sizeof buf) > 0) {
      }
    }
    int status = 0;
    if (agent > 0 && ::waitpid(agent, &status, WNOHANG) == agent) {
      say("banger-agent exited while waiting for the host's settings; restarting it");
      agent = fork_agent();
    }
  }
}

int run_and_wait(const std::vector<std::string>& argv) {
  pid_t pid = spawn(argv);
  int status = 0;
  while (pid > 0 && ::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return pid > 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::vector<service> services() {
  std::vector<service> out;
  if (exists("/usr/sbin/sshd")) {
    ::mkdir("/run/sshd", 0755);
    bool have_keys = false;
    if (DIR* d = ::opendir("/etc/ssh")) {
      while (dirent* e = ::readdir(d))
        if (std::strncmp(e->d_name, "ssh_host_", 9) == 0)
          have_keys = true;
      ::closedir(d);
    }
    if (!have_keys) {
      say("generating ssh host keys for this VM");
      if (run_and_wait({"/usr/bin/ssh-keygen", "-A"}) != 0)
        say("ssh-keygen -A failed; sshd will not start");
    }
    out.push_back({"sshd", {"/usr/sbin/sshd", "-D", "-e"}, -1, 0});
  }
  return out;
}

std::vector<int> open_power_buttons() {
  std::vector<int> fds;
  if (DIR* d = ::opendir("/dev/input")) {
    while (dirent* e = ::readdir(d)) {
      if (std::strncmp(e->d_name, "event", 5) != 0)
        continue;
      std::string p = std::string("/dev/input/") + e->d_name;
      int fd = ::open(p.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
      if (fd >= 0)
        fds.push_back(fd);
    }
    ::closedir(d);
  }
  return fds;
}

void reap_all(std::vector<service>& svcs, bool stopping) {
  for (;;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0)
      return;
    for (auto& s : svcs)
      if (s.pid == pid) {
        s.pid = -1;
        if (!stopping) {
          say(s.name + " exited (" +
              (WIFSIGNALED(status) ? "signal " + std::to_string(WTERMSIG(status))
                                   : "status " + std::to_string(WEXITSTATUS(status))) +
              "); restarting in 1 s");
          s.restart_at = ::time(nullptr) + 1;
        }
      }
  }
}

/// Whether any user-space process other than this one is left. kill(-1, 0) cannot tell: from
/// PID 1 it also reaches the kernel's threads, so it never fails with ESRCH. Kernel threads
/// (and zombies, which reap_all collects) have an empty /proc/PID/cmdline.
bool user_processes_left() {
  DIR* d = ::opendir("/proc");
  if (!d)
    return false;
  bool left = false;
  while (dirent* e = ::readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 1)
      continue;
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      continue;
    char c;
    bool has_cmdline = ::read(fd, &c, 1) == 1;
    ::close(fd);
    if (has_cmdline) {
      left = true;
      break;
    }
  }
  ::closedir(d);
  return left;
}

[[noreturn]] void power_off(std::vector<service>& svcs, const std::string& why) {
  say("powering off (" + why + ")");
  ::kill(-1, SIGTERM);
  for (int i = 0; i < 30; ++i) {
    reap_all(svcs, true);
    if (!user_processes_left())
      break;
    ::usleep(100 * 1000);
  }
  ::kill(-1, SIGKILL);
  reap_all(svcs, true);
  ::sync();
  if (::umount2("/root", 0) != 0 && errno != EINVAL && errno != ENOENT)
    say("umount /root: " + errstr());
  ::mount(nullptr, "/", nullptr, MS_REMOUNT | MS_RDONLY, nullptr);
  ::sync();
  ::reboot(RB_POWER_OFF);
  say("reboot(POWER_OFF): " + errstr());
  for (;;)
    ::pause();
}

} // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "--version") {
    std::printf("banger-init %s\n", BANGER_VERSION);
    return 0;
  }
  if (::getpid() != 1) {
    std::fprintf(stderr, "banger-init: must run as PID 1 (it is the guest's init)\n");
    return 1;
  }
  sigset_t all;
  sigfillset(&all);
  ::sigprocmask(SIG_BLOCK, &all, nullptr);

  mount_basics();
  int con = ::open("/dev/console", O_WRONLY | O_NOCTTY | O_CLOEXEC);
  if (con >= 0)
    console_fd = con;
  say("started");
  auto args = parse_cmdline(read_small("/proc/cmdline"));
  awaiting_settings = args.count("banger.await") != 0;
  if (!awaiting_settings)
    hostname(args);
  // The agent first, so it starts while eth0 and /root are set up; it runs no command before
  // ready_file exists (agent_options::ready_file).
  std::vector<service> svcs{{"banger-agent", {}, -1, 0, true}};
  svcs.front().pid = start(svcs.front());
  if (awaiting_settings) {
    // A boot snapshot's template: everything up to here is the same for every VM of its shape.
    // The host takes the snapshot once this line is on the console; each VM restored from it
    // resumes here, and its settings arrive through the agent (configure).
    link_up_without_identity();
    say("waiting for the host's settings");
    auto settings = await_settings(svcs.front().pid);
    for (auto& [k, v] : parse_cmdline(settings))
      args[k] = v;
    say("settings from the host: " + settings.substr(0, settings.find('\n')));
    hostname(args);
    set_mac(args);
  }
  // The work disk is mounted by a child while this process sets up the network: the mount
  // waits on the disk, the network keeps the CPU busy, and the mount is the whole system's.
  pid_t mounter = ::fork();
  if (mounter == 0) {
    mount_work(args, awaiting_settings);
    ::_exit(0);
  }
  network(args);
  if (mounter < 0)
    mount_work(args, awaiting_settings);
  else
    while (::waitpid(mounter, nullptr, 0) < 0 && errno == EINTR) {
    }

  sigset_t wanted;
  sigemptyset(&wanted);
  for (int s : {SIGCHLD, SIGUSR1, SIGUSR2, SIGTERM, SIGINT, SIGPWR})
    sigaddset(&wanted, s);
  int sfd = ::signalfd(-1, &wanted, SFD_CLOEXEC | SFD_NONBLOCK);
  for (auto& s : services()) { // sshd, after its host keys are made (the host reads them next)
    s.pid = start(s);
    svcs.push_back(std::move(s));
  }
  if (int fd = ::open(ready_file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644); fd >= 0)
    ::close(fd);
  else
    say(std::string("creating ") + ready_file + ": " + errstr() + " (the agent will wait 30 s before commands)");
  auto buttons = open_power_buttons();
  say("ready (" + std::to_string(svcs.size()) + " services, " + std::to_string(buttons.size()) + " input devices)");

  for (;;) {
    std::vector<pollfd> pfds{{sfd, POLLIN, 0}};
    for (int fd : buttons)
      pfds.push_back({fd, POLLIN, 0});
    ::poll(pfds.data(), pfds.size(), 500);
    if (pfds[0].revents & POLLIN) {
      signalfd_siginfo si{};
      while (::read(sfd, &si, sizeof si) == sizeof si) {
        if (si.ssi_signo == SIGCHLD)
          reap_all(svcs, false);
        else
          power_off(svcs, std::string("signal ") + strsignal(static_cast<int>(si.ssi_signo)));
      }
    }
    for (std::size_t i = 1; i < pfds.size(); ++i) {
      if (!(pfds[i].revents & POLLIN))
        continue;
      input_event ev{};
      while (::read(pfds[i].fd, &ev, sizeof ev) == sizeof ev)
        if (ev.type == EV_KEY && ev.code == KEY_POWER && ev.value == 1)
          power_off(svcs, "power button");
    }
    time_t now = ::time(nullptr);
    for (auto& s : svcs)
      if (s.pid < 0 && s.restart_at != 0 && now >= s.restart_at) {
        s.restart_at = 0;
        s.pid = start(s);
      }
  }
}
