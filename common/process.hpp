// Small POSIX helpers: an owning fd, the host's boot id, and single-instance locking.
// Every failure names the syscall, the path and errno.
#pragma once

#include <filesystem>
#include <string>
#include <utility>

#include "common/error.hpp"

namespace banger {

/// Owns one file descriptor; closes it on destruction. Move-only.
class unique_fd {
public:
  unique_fd() = default;
  explicit unique_fd(int fd) noexcept : fd_(fd) {}
  unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd() { reset(); }

  int get() const noexcept { return fd_; }
  int release() noexcept { return std::exchange(fd_, -1); }
  void reset() noexcept;
  explicit operator bool() const noexcept { return fd_ >= 0; }

private:
  int fd_ = -1;
};

/// /proc/sys/kernel/random/boot_id, trimmed.
expected<std::string> read_boot_id();

/// Takes an exclusive flock on `path` (created 0600) without waiting, and writes our pid into
/// it. Fails with errc::already_exists naming the holder's pid when another process holds it.
expected<unique_fd> lock_single_instance(const std::filesystem::path& path);

/// Reads a whole small file.
expected<std::string> read_file(const std::filesystem::path& path);

/// Whether `pid` names a live process (a zombie counts as dead: it has exited, and its
/// parent may never reap it).
bool process_alive(int pid);

/// errno as text, e.g. "No such file or directory (ENOENT)".
std::string errno_text(int err);

} // namespace banger
