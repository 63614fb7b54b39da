// The work disk on /root, as banger-init mounts it at boot and the agent mounts it again after
// lending it to the host (guest/init/mounts.cpp, guest/agent/agent_disk.cpp): one device rule
// and one set of mount options for both.
#pragma once

#include <map>
#include <string>

namespace banger::guest {

/// The work disk's device: banger.work= among the kernel command line's words (parse_cmdline),
/// else /dev/vdb; "none" when the VM has none.
std::string work_device(const std::map<std::string, std::string>& cmdline);

/// Drops whatever this kernel cached of `dev` (BLKFLSBUF): someone else wrote the disk. 0 or an
/// errno.
int flush_device_cache(const std::string& dev);

/// Mounts `dev` on /root, noatime and without ext4's lazy inode-table zeroing. 0 or an errno.
int mount_work_disk(const std::string& dev);

} // namespace banger::guest
