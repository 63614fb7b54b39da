// See work_disk.hpp.
#include "guest/work_disk.hpp"

#include <cerrno>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <unistd.h>

namespace banger::guest {

std::string work_device(const std::map<std::string, std::string>& cmdline) {
  auto it = cmdline.find("banger.work");
  return it == cmdline.end() ? "/dev/vdb" : it->second;
}

int flush_device_cache(const std::string& dev) {
  int fd = ::open(dev.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return errno;
  int rc = ::ioctl(fd, BLKFLSBUF, 0) == 0 ? 0 : errno;
  ::close(fd);
  return rc;
}

int mount_work_disk(const std::string& dev) {
  // noinit_itable: no ext4lazyinit thread zeroing the unused inode tables in the background
  // while the VM's first commands run. Work disks are sparse copies of a template, so those
  // tables already read as zeros; zeroing them only costs guest CPU and disk space.
  return ::mount(dev.c_str(), "/root", "ext4", MS_NOATIME, "noinit_itable") == 0 ? 0 : errno;
}

} // namespace banger::guest
