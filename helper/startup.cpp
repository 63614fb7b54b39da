// See startup.hpp.
#include "helper/startup.hpp"

#include <cerrno>
#include <cstdio>
#include <sys/socket.h>
#include <sys/stat.h>

#include "common/process.hpp"

namespace banger::helper {

expected<unsigned> unix_peer_uid(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0)
    return make_error(errc::unauthorized, "fstat fd " + std::to_string(fd) + ": " + errno_text(errno));
  if (!S_ISSOCK(st.st_mode))
    return make_error(errc::unauthorized, "fd " + std::to_string(fd) +
                                            " is not a socket: banger-helper serves only the daemon's socketpair "
                                            "on its stdin");
  int domain = 0, type = 0;
  socklen_t len = sizeof domain;
  if (::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0 || domain != AF_UNIX)
    return make_error(errc::unauthorized, "fd " + std::to_string(fd) + " is not a unix socket");
  len = sizeof type;
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM)
    return make_error(errc::unauthorized, "fd " + std::to_string(fd) + " is not a stream socket");
  struct ucred cred {};
  len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    return make_error(errc::unauthorized,
                      "getsockopt SO_PEERCRED on fd " + std::to_string(fd) + ": " + errno_text(errno));
  if (cred.pid <= 0)
    return make_error(errc::unauthorized, "fd " + std::to_string(fd) + " has no peer");
  return static_cast<unsigned>(cred.uid);
}

expected<helper_config> check_dirs(const std::filesystem::path& state_dir, const std::filesystem::path& runtime_dir,
                                   unsigned peer_uid) {
  helper_config cfg{state_dir, runtime_dir, 0};
  bool first = true;
  for (const auto& dir : {state_dir, runtime_dir}) {
    // The lstat walk from "/" refuses a symlink anywhere on the way, the dir itself included.
    if (auto ok = validate_path_under(dir, {"/"}); !ok)
      return make_error(errc::unauthorized, "refusing " + dir.string() + ": " + ok.err().message);
    struct stat st {};
    if (::lstat(dir.c_str(), &st) != 0)
      return make_error(errc::unauthorized, "lstat " + dir.string() + ": " + errno_text(errno));
    if (!S_ISDIR(st.st_mode))
      return make_error(errc::unauthorized, "refusing " + dir.string() + ": not a directory");
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
      char mode[8];
      std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
      return make_error(errc::unauthorized, "refusing " + dir.string() + ": it is group- or world-writable (mode " +
                                              mode + "); chmod go-w it");
    }
    if (first)
      cfg.owner_uid = st.st_uid;
    else if (st.st_uid != cfg.owner_uid)
      return make_error(errc::unauthorized, "refusing " + dir.string() + ": owned by uid " + std::to_string(st.st_uid) +
                                              ", but " + state_dir.string() + " by uid " +
                                              std::to_string(cfg.owner_uid));
    first = false;
  }
  if (peer_uid != 0 && peer_uid != cfg.owner_uid)
    return make_error(errc::unauthorized, "refusing peer uid " + std::to_string(peer_uid) +
                                            ": only root or the owner of the state and runtime dirs (uid " +
                                            std::to_string(cfg.owner_uid) + ") may drive banger-helper");
  return cfg;
}

} // namespace banger::helper
