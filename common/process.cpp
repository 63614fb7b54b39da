// See process.hpp.
#include "common/process.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <sys/file.h>
#include <unistd.h>

#include <fmt/core.h>

namespace banger {

void unique_fd::reset() noexcept {
  if (fd_ >= 0)
    ::close(fd_);
  fd_ = -1;
}

std::string errno_text(int err) {
  const char* name = strerrorname_np(err);
  return fmt::format("{} ({})", std::strerror(err), name ? name : "?");
}

expected<std::string> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return make_error(errc::operation_failed, fmt::format("open {}: {}", path.string(), errno_text(errno)));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool process_alive(int pid) {
  if (pid <= 0 || (::kill(pid, 0) != 0 && errno == ESRCH))
    return false;
  auto stat = read_file(fmt::format("/proc/{}/stat", pid));
  if (!stat)
    return false;
  // "pid (comm) S ...": the state follows the last ')', since comm may contain spaces or ')'.
  auto close = stat->rfind(')');
  return close == std::string::npos || close + 2 >= stat->size() || (*stat)[close + 2] != 'Z';
}

expected<std::string> read_boot_id() {
  auto s = read_file("/proc/sys/kernel/random/boot_id");
  if (!s)
    return s;
  std::string v = std::move(*s);
  while (!v.empty() && (v.back() == '\n' || v.back() == ' '))
    v.pop_back();
  return v;
}

expected<unique_fd> lock_single_instance(const std::filesystem::path& path) {
  unique_fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd)
    return make_error(errc::operation_failed, fmt::format("open {}: {}", path.string(), errno_text(errno)));
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    if (err == EWOULDBLOCK) {
      char buf[32] = {};
      ssize_t n = ::pread(fd.get(), buf, sizeof buf - 1, 0);
      std::string holder = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "?";
      while (!holder.empty() && holder.back() == '\n')
        holder.pop_back();
      return make_error(errc::already_exists,
                        fmt::format("another bangerd (pid {}) is already running on state dir {}; "
                                    "stop it with `banger daemon stop` first",
                                    holder, path.parent_path().string()));
    }
    return make_error(errc::operation_failed, fmt::format("flock {}: {}", path.string(), errno_text(err)));
  }
  auto pid = fmt::format("{}\n", ::getpid());
  if (::ftruncate(fd.get(), 0) != 0 || ::pwrite(fd.get(), pid.data(), pid.size(), 0) < 0)
    return make_error(errc::operation_failed, fmt::format("write {}: {}", path.string(), errno_text(errno)));
  return fd;
}

} // namespace banger
