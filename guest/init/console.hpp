// banger-init's console and the small checks every step makes: console lines stamped with the
// guest's uptime (say), errno as text, whether a path exists, a small file's contents. Runs in
// PID 1 and in its forked children (they inherit console_fd). Statically linked, libc only.
#pragma once

#include <string>

namespace banger::guest::init {

/// Where say() writes: stderr until main() opens /dev/console. Set once, by main(), before any
/// child is forked.
extern int console_fd;

/// Console lines carry the guest's uptime, so a slow boot shows where its time went.
void say(const std::string& msg);

std::string errstr();

bool exists(const char* p);

/// Up to 4095 bytes of `path` (one read); empty when it cannot be read.
std::string read_small(const char* path);

} // namespace banger::guest::init
