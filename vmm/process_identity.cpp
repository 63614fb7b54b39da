// See process_identity.hpp.
#include "vmm/process_identity.hpp"

#include <charconv>
#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include "common/process.hpp"
#include "common/sha256.hpp"

namespace banger::vmm {

namespace {

/// The whole of a /proc file, read with plain read(2) (procfs files report size 0).
std::optional<std::string> read_proc_file(const std::string& path) {
  unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd)
    return std::nullopt;
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0)
      return std::nullopt;
    if (n == 0)
      return out;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

} // namespace

std::optional<proc_stat> parse_proc_stat(std::string_view stat) {
  auto close = stat.rfind(')');
  if (close == std::string_view::npos)
    return std::nullopt;
  // After "pid (comm)": field 3 (state) is the first, so field 22 is the 20th.
  auto rest = stat.substr(close + 1);
  proc_stat out;
  int field = 2;
  std::size_t i = 0;
  while (i < rest.size()) {
    while (i < rest.size() && rest[i] == ' ')
      ++i;
    if (i >= rest.size())
      break;
    auto end = rest.find(' ', i);
    if (end == std::string_view::npos)
      end = rest.size();
    auto tok = rest.substr(i, end - i);
    ++field;
    if (field == 3) {
      if (tok.size() != 1)
        return std::nullopt;
      out.state = tok[0];
    } else if (field == 22) {
      auto [p, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), out.start_time);
      if (ec != std::errc() || p != tok.data() + tok.size())
        return std::nullopt;
      return out;
    }
    i = end;
  }
  return std::nullopt;
}

std::optional<proc_stat> read_proc_stat(int pid) {
  if (pid <= 0)
    return std::nullopt;
  auto s = read_proc_file(fmt::format("/proc/{}/stat", pid));
  if (!s)
    return std::nullopt;
  return parse_proc_stat(*s);
}

std::optional<std::string> cmdline_sha256(int pid) {
  if (pid <= 0)
    return std::nullopt;
  auto s = read_proc_file(fmt::format("/proc/{}/cmdline", pid));
  if (!s)
    return std::nullopt;
  return sha256_hex(*s);
}

} // namespace banger::vmm
