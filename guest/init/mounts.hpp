// banger-init's mounts: the basic filesystems (proc, sys, dev, devpts, shm, run, tmp) and the
// work disk at /root. mount_basics runs in PID 1 first thing; mount_work in a child forked for it
// while PID 1 sets up the network (or in PID 1 when that fork fails).
#pragma once

#include <map>
#include <string>

namespace banger::guest::init {

void mount_basics();

/// The work disk (banger.work=, default /dev/vdb; "none": no work disk) on /root, waiting up to
/// 3 s for the device. `restored`: the guest resumed from a boot snapshot, whose kernel cached
/// its own work disk's first block.
void mount_work(const std::map<std::string, std::string>& args, bool restored);

} // namespace banger::guest::init
