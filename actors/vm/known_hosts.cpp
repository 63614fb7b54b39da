// See known_hosts.hpp.
#include "actors/vm/known_hosts.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sstream>
#include <sys/file.h>
#include <unistd.h>

#include <fmt/core.h>

#include "common/process.hpp"
#include "common/text.hpp"

namespace banger::actors {

namespace fs = std::filesystem;

namespace {

error failed(std::string_view what, const fs::path& p, int err) {
  return make_error(errc::operation_failed, fmt::format("known_hosts: {} {}: {}; the file was left as it was", what,
                                                        p.string(), std::strerror(err)));
}

bool one_line(std::string_view s) { return s.find_first_of("\r\n") == std::string_view::npos; }

} // namespace

std::string host_key_of(std::string_view pub) {
  std::istringstream in{std::string(pub)};
  std::string type, b64;
  in >> type >> b64;
  static constexpr std::string_view types[] = {"ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
                                               "ecdsa-sha2-nistp521"};
  bool known = false;
  for (auto t : types)
    known = known || type == t;
  if (!known || b64.empty() || b64.size() > 4096)
    return {};
  for (char c : b64)
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/' ||
          c == '='))
      return {};
  return type + " " + b64;
}

expected<void> update_known_hosts(const fs::path& file, std::string_view alias, std::string_view key) {
  if (alias.empty() || !one_line(alias) || alias.find(' ') != std::string_view::npos || !one_line(key))
    return make_error(errc::bad_request, fmt::format("known_hosts: bad entry for {}", quoted(alias)));
  std::error_code ec;
  fs::create_directories(file.parent_path(), ec);
  unique_fd lock(::open((file.string() + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock || ::flock(lock.get(), LOCK_EX) != 0)
    return failed("lock", file.string() + ".lock", errno);

  std::string old;
  if (auto text = read_file(file))
    old = *text;
  std::string out;
  std::istringstream in(old);
  std::string prefix = std::string(alias) + " ";
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line.rfind(prefix, 0) != 0)
      out += line + "\n";
  if (!key.empty())
    out += prefix + std::string(key) + "\n";
  if (out == old)
    return {};

  auto tmp = fs::path(file.string() + ".new");
  {
    unique_fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd)
      return failed("create", tmp, errno);
    for (std::size_t done = 0; done < out.size();) {
      ssize_t n = ::write(fd.get(), out.data() + done, out.size() - done);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0) {
        int err = n < 0 ? errno : ENOSPC;
        ::unlink(tmp.c_str());
        return failed("write", tmp, err);
      }
      done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd.get()) != 0) {
      int err = errno;
      ::unlink(tmp.c_str());
      return failed("fsync", tmp, err);
    }
  }
  // Defense in depth: what is renamed into place is what was meant to be written.
  if (auto back = read_file(tmp); !back || *back != out) {
    ::unlink(tmp.c_str());
    return failed("read back", tmp, back ? EIO : errno);
  }
  if (::rename(tmp.c_str(), file.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return failed("rename over", file, err);
  }
  return {};
}

} // namespace banger::actors
