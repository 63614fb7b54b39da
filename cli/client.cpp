// See client.hpp. Starting the daemon: fork, setsid (so it outlives this shell and never gets
// its signals), stdin/stdout to /dev/null, stderr to a pipe we read only if it dies early.
#include "cli/client.hpp"

#include <cerrno>
#include <climits>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <fmt/core.h>

#include "cli/connection.hpp"
#include "common/process.hpp"

namespace banger::cli {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

client::client(std::unique_ptr<connection> c) : conn_(std::move(c)) {}
client::~client() = default;

namespace {

/// connect(2) to the socket; -1 with errno on failure.
int raw_connect(const fs::path& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.native().size() >= sizeof addr.sun_path) {
    errno = ENAMETOOLONG;
    return -1;
  }
  std::memcpy(addr.sun_path, path.c_str(), path.native().size());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    ::close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

/// One ping round trip; true when the daemon answered (even with an error value).
bool answers(client& c) {
  try {
    c.conn().daemon.pingRequest().send().wait(c.conn().io.waitScope);
    return true;
  } catch (const kj::Exception&) {
    return false;
  }
}

} // namespace

expected<std::unique_ptr<client>> try_connect(const dirs& d, connect_failure& failure) {
  auto sock = d.socket();
  int fd = raw_connect(sock);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT || err == ECONNREFUSED) {
      failure = connect_failure::not_running;
      return make_error(
        errc::unavailable,
        fmt::format("bangerd is not running (no answer on {}); start it with `banger daemon start`", sock.string()));
    }
    if (err == EACCES || err == EPERM) {
      failure = connect_failure::permission_denied;
      return make_error(errc::unauthorized,
                        fmt::format("permission denied on {}: that bangerd belongs to another user; "
                                    "run banger as its owner or as root",
                                    sock.string()));
    }
    failure = connect_failure::other;
    return make_error(errc::unavailable, fmt::format("connect {}: {}", sock.string(), errno_text(err)));
  }
  failure = connect_failure::none;
  return std::make_unique<client>(std::make_unique<connection>(kj::setupAsyncIo(), fd));
}

std::string sibling_binary(const std::string& name) {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n > 0) {
    fs::path p = fs::path(std::string(buf, static_cast<size_t>(n))).parent_path() / name;
    if (::access(p.c_str(), X_OK) == 0)
      return p.string();
  }
  return name;
}

std::optional<int> recorded_pid(const dirs& d) {
  auto s = read_file(d.pid_file());
  if (!s)
    return std::nullopt;
  try {
    int pid = std::stoi(*s);
    return pid > 0 ? std::optional<int>(pid) : std::nullopt;
  } catch (...) {
    return std::nullopt;
  }
}

expected<int> start_daemon(const dirs& d, std::chrono::milliseconds timeout) {
  if (auto r = ensure_dirs(d, ::geteuid()); !r)
    return std::move(r).err();
  std::string bin = sibling_binary("bangerd");
  int err_pipe[2];
  int pid_pipe[2];
  if (::pipe2(err_pipe, O_CLOEXEC) != 0 || ::pipe2(pid_pipe, O_CLOEXEC) != 0)
    return make_error(errc::operation_failed, fmt::format("pipe: {}", errno_text(errno)));
  // Double fork: the daemon is never our child, so it is never left a zombie of a long-lived
  // CLI (e.g. `events --follow`), and setsid() detaches it from this terminal.
  pid_t mid = ::fork();
  if (mid < 0)
    return make_error(errc::operation_failed, fmt::format("fork: {}", errno_text(errno)));
  if (mid == 0) {
    ::setsid();
    pid_t pid = ::fork();
    if (pid != 0) {
      ssize_t ignored = ::write(pid_pipe[1], &pid, sizeof pid);
      (void)ignored;
      ::_exit(pid > 0 ? 0 : 1);
    }
    int devnull = ::open("/dev/null", O_RDWR);
    ::dup2(devnull, STDIN_FILENO);
    ::dup2(devnull, STDOUT_FILENO);
    ::dup2(err_pipe[1], STDERR_FILENO);
    std::vector<char*> argv{const_cast<char*>(bin.c_str())};
    if (d.mode == install_mode::system)
      argv.push_back(const_cast<char*>("--system"));
    argv.push_back(nullptr);
    ::execvp(bin.c_str(), argv.data());
    std::fprintf(stderr, "exec %s: %s\n", bin.c_str(), std::strerror(errno));
    ::_exit(127);
  }
  ::close(err_pipe[1]);
  ::close(pid_pipe[1]);
  unique_fd err_fd(err_pipe[0]);
  unique_fd pid_fd(pid_pipe[0]);
  int status = 0;
  ::waitpid(mid, &status, 0);
  pid_t pid = -1;
  if (::read(pid_fd.get(), &pid, sizeof pid) != sizeof pid || pid <= 0)
    return make_error(errc::operation_failed, "fork of bangerd failed");
  ::fcntl(err_fd.get(), F_SETFL, O_NONBLOCK);
  std::string early_output;
  bool lost_race = false;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    // Liveness is sampled once and before the pipe is drained: a daemon seen dead has written
    // all it will, so its last words are read before they are judged.
    bool alive = lost_race || process_alive(pid);
    char buf[4096];
    ssize_t n;
    while ((n = ::read(err_fd.get(), buf, sizeof buf)) > 0)
      early_output.append(buf, static_cast<size_t>(n));
    // Another command started a daemon first (several commands run at once with none up): ours
    // exits on finding that one's lock, and that one is the daemon to wait for.
    if (!alive && early_output.find("is already running on state dir") != std::string::npos)
      lost_race = true;
    else if (!alive) {
      while (!early_output.empty() && early_output.back() == '\n')
        early_output.pop_back();
      if (early_output.rfind("bangerd: ", 0) == 0)
        early_output = early_output.substr(9);
      return make_error(errc::operation_failed,
                        fmt::format("bangerd failed to start: {}",
                                    early_output.empty() ? "it exited without a message" : early_output));
    }
    connect_failure why{};
    if (auto c = try_connect(d, why); c && answers(**c))
      return lost_race ? recorded_pid(d).value_or(pid) : pid;
    std::this_thread::sleep_for(50ms);
  }
  if (lost_race)
    return make_error(errc::unavailable, fmt::format("another command's bangerd did not answer on {} within {} ms; see "
                                                     "{}",
                                                     d.socket().string(), timeout.count(), d.log_file().string()));
  return make_error(errc::unavailable, fmt::format("bangerd (pid {}) did not answer on {} within {} ms; see {}", pid,
                                                   d.socket().string(), timeout.count(), d.log_file().string()));
}

expected<std::unique_ptr<client>> client::connect(const dirs& d, bool autostart) {
  connect_failure why{};
  auto c = try_connect(d, why);
  if (c || !autostart || why != connect_failure::not_running || d.mode != install_mode::dev)
    return c;
  if (auto started = start_daemon(d, 15s); !started)
    return std::move(started).err();
  return try_connect(d, why);
}

} // namespace banger::cli
