// See power.hpp.
#include "guest/init/power.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <unistd.h>

#include "guest/init/console.hpp"

namespace banger::guest::init {

namespace {

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

} // namespace

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

} // namespace banger::guest::init
