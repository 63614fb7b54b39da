// The Agent's hold on the work disk (agent.capnp releaseWorkDisk / attachWorkDisk;
// docs/workspaces.md, "Into a running VM"): /root is unmounted so that the host can write the
// disk in-process, and mounted again afterwards. While it is let go, an empty read-only tmpfs
// ("banger-released") holds /root. Runs on banger-agent's one KJ event-loop thread.
#include <sys/mount.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "guest/agent/agent_internal.hpp"
#include "guest/init/cmdline.hpp"
#include "guest/work_disk.hpp"

namespace banger::guest::detail {

namespace {

constexpr const char* placeholder = "banger-released";

struct mount_entry {
  std::string source, fstype;
};

/// What is mounted on /root now (the last mount there), if anything.
std::optional<mount_entry> root_mount() {
  std::ifstream in("/proc/self/mounts");
  std::optional<mount_entry> found;
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string source, target, fstype;
    if (fields >> source >> target >> fstype && target == "/root")
      found = mount_entry{source, fstype};
  }
  return found;
}

/// The work disk's device, as banger-init reads it from the kernel command line.
std::string work_device() {
  std::ifstream in("/proc/cmdline");
  std::stringstream text;
  text << in.rdbuf();
  return guest::work_device(parse_cmdline(text.str()));
}

/// Mounts `dev` on /root as banger-init does, after dropping what the guest cached of it: the
/// host has written the disk behind this kernel's back. 0 or an errno.
int mount_work(const std::string& dev) {
  if (int err = flush_device_cache(dev))
    return err;
  return mount_work_disk(dev);
}

} // namespace

kj::Promise<void> agent_impl::releaseWorkDisk(ReleaseWorkDiskContext c) {
  auto f = c.getResults().initFailure();
  if (!svc_.opts.allow_mounts) {
    fail(f, e_unavailable, "releaseWorkDisk: the agent is not running in a guest");
    return kj::READY_NOW;
  }
  auto at = root_mount();
  if (at && at->fstype == "tmpfs" && at->source == placeholder)
    return kj::READY_NOW; // let go already
  auto dev = work_device();
  if (!at || at->fstype != "ext4" || at->source != dev) {
    fail(f, e_unavailable, "releaseWorkDisk: the work disk (" + dev + ") is not what is mounted on /root");
    return kj::READY_NOW;
  }
  ::sync();
  if (::umount2("/root", 0) != 0) {
    int err = errno;
    fail(f, err == EBUSY ? e_unavailable : e_operation_failed,
         err == EBUSY ? "releaseWorkDisk: /root is in use in the guest (a shell, a process or an open file in it)"
                      : "releaseWorkDisk: unmounting /root: " + errno_str(err));
    return kj::READY_NOW;
  }
  if (::mount(placeholder, "/root", "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700,size=4k") != 0) {
    int err = errno;
    int back = mount_work(at->source);
    fail(f, e_operation_failed,
         "releaseWorkDisk: holding /root with a tmpfs: " + errno_str(err) +
           (back ? "; and mounting the work disk back: " + errno_str(back) : std::string("; the work disk is back")));
  }
  return kj::READY_NOW;
}

kj::Promise<void> agent_impl::attachWorkDisk(AttachWorkDiskContext c) {
  auto f = c.getResults().initFailure();
  if (!svc_.opts.allow_mounts) {
    fail(f, e_unavailable, "attachWorkDisk: the agent is not running in a guest");
    return kj::READY_NOW;
  }
  auto at = root_mount();
  if (at && at->fstype == "ext4")
    return kj::READY_NOW; // mounted already
  if (at && at->fstype == "tmpfs" && at->source == placeholder)
    // Empty and read-only: a process that went into it in the meantime does not keep it.
    if (::umount2("/root", MNT_DETACH) != 0) {
      fail(f, e_operation_failed, "attachWorkDisk: unmounting the placeholder on /root: " + errno_str(errno));
      return kj::READY_NOW;
    }
  auto dev = work_device();
  if (int err = mount_work(dev))
    fail(f, e_operation_failed, "attachWorkDisk: mounting " + dev + " on /root: " + errno_str(err));
  return kj::READY_NOW;
}

} // namespace banger::guest::detail
