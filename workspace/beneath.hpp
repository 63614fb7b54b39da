// Internal to banger_workspace: opening a path of the user's checkout from its top without
// following any symlink (openat2 with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), as the scan and
// the sender both must. Returns the descriptor, or -1 with errno set.
#pragma once

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <string>

namespace banger::workspace::detail {

inline int open_beneath(int dirfd, const std::string& path, int flags) {
  open_how how{};
  how.flags = static_cast<std::uint64_t>(flags | O_CLOEXEC);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  return static_cast<int>(syscall(SYS_openat2, dirfd, path.c_str(), &how, sizeof how));
}

} // namespace banger::workspace::detail
