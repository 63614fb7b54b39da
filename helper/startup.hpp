// banger-helper's start-up checks, run once before it serves anything: its stdin must be a unix
// stream socket (the daemon's socketpair end), whose peer (SO_PEERCRED) is root or the owner of
// the state and runtime dirs; those dirs must be absolute, normalised, reachable with no symlink
// component, directories, owned by one uid and writable by nobody else. Any failure: the helper
// refuses to start (exit 3) with the reason on stderr.
#pragma once

#include <filesystem>

#include "common/error.hpp"
#include "helper/validate.hpp"

namespace banger::helper {

/// What the helper trusts after start-up: the two roots and the uid that owns them.
struct helper_config {
  std::filesystem::path state_dir;
  std::filesystem::path runtime_dir;
  unsigned owner_uid = 0;

  helper::roots roots() const { return {state_dir, runtime_dir}; }
};

/// The uid of the peer of `fd`, which must be a connected AF_UNIX SOCK_STREAM socket.
expected<unsigned> unix_peer_uid(int fd);

/// Checks both dirs as above and that `peer_uid` is 0 or their owner.
expected<helper_config> check_dirs(const std::filesystem::path& state_dir, const std::filesystem::path& runtime_dir,
                                   unsigned peer_uid);

} // namespace banger::helper
