// See mounts.hpp.
#include "guest/init/mounts.hpp"

#include <cerrno>
#include <cstring>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "guest/init/console.hpp"
#include "guest/work_disk.hpp"

namespace banger::guest::init {

namespace {

void mount_fs(const char* src, const char* target, const char* type, unsigned long flags, const char* data) {
  ::mkdir(target, 0755);
  if (::mount(src, target, type, flags, data) != 0 && errno != EBUSY)
    say(std::string("mount ") + type + " on " + target + ": " + errstr());
}

} // namespace

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

void mount_work(const std::map<std::string, std::string>& args, bool restored) {
  std::string dev = work_device(args);
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
    if (int err = flush_device_cache(dev))
      say("flushing " + dev + "'s cache: " + std::strerror(err));
  }
  if (int err = mount_work_disk(dev))
    say("mount " + dev + " on /root: " + std::strerror(err));
  else
    say("work disk " + dev + " on /root");
}

} // namespace banger::guest::init
