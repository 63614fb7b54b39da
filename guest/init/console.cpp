// See console.hpp.
#include "guest/init/console.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "common/guest_protocol.hpp"

namespace banger::guest::init {

int console_fd = 2;

void say(const std::string& msg) {
  timespec ts{};
  ::clock_gettime(CLOCK_BOOTTIME, &ts);
  char stamp[32];
  std::snprintf(stamp, sizeof stamp, "%ld.%03ld] ", static_cast<long>(ts.tv_sec), ts.tv_nsec / 1000000);
  std::string line = std::string(guest_protocol::init_line_prefix) + stamp + msg + "\n";
  ssize_t ignored = ::write(console_fd, line.data(), line.size());
  (void)ignored;
}

std::string errstr() { return std::strerror(errno); }

bool exists(const char* p) { return ::access(p, F_OK) == 0; }

std::string read_small(const char* path) {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return {};
  char buf[4096];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

} // namespace banger::guest::init
