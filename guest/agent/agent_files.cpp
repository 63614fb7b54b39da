// The Agent's file transfers (agent.hpp): writeFile, written aside and renamed into place, and
// readFile, of regular files up to a size limit. Both refuse relative paths and "." or ".."
// components. Runs on the one KJ event-loop thread of banger-agent, blocking it for the file's
// I/O.
#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <optional>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <unistd.h>

#include "guest/agent/agent_internal.hpp"

namespace banger::guest::detail {

namespace {

constexpr std::size_t max_file_bytes = 256u << 20;

} // namespace

std::optional<std::string> bad_path(kj::StringPtr p) {
  std::string_view s(p.cStr(), p.size());
  if (s.empty() || s[0] != '/')
    return "path must be absolute";
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f)
      return "path contains a control character";
  std::size_t i = 0;
  while (i < s.size()) {
    auto j = s.find('/', i);
    auto part = s.substr(i, j == std::string_view::npos ? std::string_view::npos : j - i);
    if (part == "." || part == "..")
      return "path contains a '.' or '..' component";
    if (j == std::string_view::npos)
      break;
    i = j + 1;
  }
  return std::nullopt;
}

int mkdir_parents(const std::string& path) {
  for (std::size_t i = 1; i < path.size(); ++i) {
    if (path[i] != '/')
      continue;
    std::string dir = path.substr(0, i);
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
      return errno;
  }
  return 0;
}

int write_all(int fd, const kj::byte* data, std::size_t n) {
  std::size_t off = 0;
  while (off < n) {
    ssize_t w = ::write(fd, data + off, n - off);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return errno;
    }
    off += static_cast<std::size_t>(w);
  }
  return 0;
}

kj::Promise<void> agent_impl::write_file_now(WriteFileContext c) {
  auto p = c.getParams();
  auto f = c.getResults().initFailure();
  if (auto why = bad_path(p.getPath())) {
    fail(f, e_bad_request, "writeFile " + std::string(p.getPath().cStr()) + ": " + *why);
    return kj::READY_NOW;
  }
  std::string path = p.getPath();
  if (p.getMakeParents())
    if (int err = mkdir_parents(path)) {
      fail(f, e_operation_failed, "mkdir parents of " + path + ": " + errno_str(err));
      return kj::READY_NOW;
    }
  auto slash = path.rfind('/');
  std::string tmp =
    path.substr(0, slash + 1) + ".banger-tmp-" + std::to_string(::getpid()) + "-" + path.substr(slash + 1);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    int err = errno;
    fail(f, err == ENOENT ? e_not_found : e_operation_failed,
         "create " + path + ": " + errno_str(err) + (err == ENOENT ? " (parent directory missing?)" : ""));
    return kj::READY_NOW;
  }
  auto data = p.getData();
  int err = write_all(fd, data.begin(), data.size());
  if (err == 0 && ::fchown(fd, p.getUid(), p.getGid()) != 0)
    err = errno;
  if (err == 0 && ::fchmod(fd, p.getMode() & 07777) != 0)
    err = errno;
  ::close(fd);
  if (err == 0 && ::rename(tmp.c_str(), path.c_str()) != 0)
    err = errno;
  if (err != 0) {
    ::unlink(tmp.c_str());
    fail(f, e_operation_failed, "write " + path + ": " + errno_str(err));
  }
  return kj::READY_NOW;
}

kj::Promise<void> agent_impl::read_file_now(ReadFileContext c) {
  auto p = c.getParams();
  auto r = c.getResults();
  if (auto why = bad_path(p.getPath())) {
    fail(r.initFailure(), e_bad_request, "readFile " + std::string(p.getPath().cStr()) + ": " + *why);
    return kj::READY_NOW;
  }
  std::string path = p.getPath();
  std::size_t cap = p.getMaxBytes() == 0 ? max_file_bytes : std::min<std::size_t>(p.getMaxBytes(), max_file_bytes);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0) {
    int err = errno;
    if (fd >= 0)
      ::close(fd);
    fail(r.initFailure(), err == ENOENT ? e_not_found : e_operation_failed, "read " + path + ": " + errno_str(err));
    return kj::READY_NOW;
  }
  if (!S_ISREG(st.st_mode) || static_cast<std::size_t>(st.st_size) > cap) {
    ::close(fd);
    fail(
      r.initFailure(), e_bad_request,
      "read " + path + ": " +
        (!S_ISREG(st.st_mode) ? "not a regular file" : "larger than the limit of " + std::to_string(cap) + " bytes"));
    return kj::READY_NOW;
  }
  auto data = r.initData(static_cast<unsigned>(st.st_size));
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::read(fd, data.begin() + off, data.size() - off);
    if (n <= 0) {
      if (n < 0 && errno == EINTR)
        continue;
      break;
    }
    off += static_cast<std::size_t>(n);
  }
  ::close(fd);
  if (off != data.size()) {
    fail(r.initFailure(), e_operation_failed, "read " + path + ": file changed while being read");
    return kj::READY_NOW;
  }
  r.setMode(st.st_mode & 07777);
  r.setUid(st.st_uid);
  r.setGid(st.st_gid);
  return kj::READY_NOW;
}

} // namespace banger::guest::detail
