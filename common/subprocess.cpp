// See subprocess.hpp. run_process: fork/exec in a new process group; both pipes drained with poll
// so a chatty child never blocks on a full pipe. spawn_process: the same child setup onto files.
#include "common/subprocess.hpp"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

namespace banger {

namespace {

/// In a forked child: stdin from opts.stdin_file (or /dev/null), stdout/stderr onto the given
/// descriptors, the extra environment and working directory applied, then argv exec'd. Never
/// returns.
[[noreturn]] void exec_child(const std::vector<std::string>& argv, const process_options& opts, int out_fd,
                             int err_fd) {
  const char* in = opts.stdin_file.empty() ? "/dev/null" : opts.stdin_file.c_str();
  int in_fd = ::open(in, O_RDONLY);
  if (in_fd < 0) {
    std::fprintf(stderr, "open %s: %s\n", in, std::strerror(errno));
    ::_exit(127);
  }
  ::dup2(in_fd, STDIN_FILENO);
  ::dup2(out_fd, STDOUT_FILENO);
  ::dup2(err_fd, STDERR_FILENO);
  for (const auto& [k, v] : opts.env) {
    if (v.empty())
      ::unsetenv(k.c_str());
    else
      ::setenv(k.c_str(), v.c_str(), 1);
  }
  if (!opts.cwd.empty() && ::chdir(opts.cwd.c_str()) != 0) {
    std::fprintf(stderr, "chdir %s: %s\n", opts.cwd.c_str(), std::strerror(errno));
    ::_exit(127);
  }
  std::vector<char*> args;
  for (const auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  ::execvp(args[0], args.data());
  std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
  ::_exit(127);
}

} // namespace

process_result run_process(const std::vector<std::string>& argv, const process_options& opts) {
  process_result r;
  if (argv.empty())
    return r;
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0)
    return r;
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return r;
  }
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    exec_child(argv, opts, out_pipe[1], opts.merge_stderr ? out_pipe[1] : err_pipe[1]);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (pid < 0) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    return r;
  }
  auto deadline = std::chrono::steady_clock::now() + opts.timeout;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  std::size_t line_start = 0; // start of the first line of `out` not yet given to on_line
  while (open_fds > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      r.timed_out = true;
      ::kill(-pid, SIGKILL);
      break;
    }
    if (::poll(fds, 2, static_cast<int>(left.count())) < 0 && errno != EINTR)
      break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
        continue;
      char buf[65536];
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
        if (i == 0 && opts.on_line)
          for (auto nl = r.out.find('\n', line_start); nl != std::string::npos; nl = r.out.find('\n', line_start)) {
            opts.on_line(std::string_view(r.out).substr(line_start, nl - line_start));
            line_start = nl + 1;
          }
      } else {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0)
      ::close(f.fd);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

int spawn_process(const std::vector<std::string>& argv, const process_options& opts,
                  const std::filesystem::path& out_file, const std::filesystem::path& err_file) {
  if (argv.empty())
    return -1;
  pid_t pid = ::fork();
  if (pid == 0) {
    int out = ::open(out_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    int err = ::open(err_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    exec_child(argv, opts, out, err);
  }
  return pid;
}

std::optional<std::filesystem::path> find_program(std::string_view name) {
  const char* env_path = std::getenv("PATH");
  std::string dirs = env_path ? env_path : "";
  dirs += ":/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    auto end = dirs.find(':', start);
    if (end == std::string::npos)
      end = dirs.size();
    if (end > start) {
      auto candidate = std::filesystem::path(dirs.substr(start, end - start)) / name;
      if (::access(candidate.c_str(), X_OK) == 0)
        return candidate;
    }
    start = end + 1;
  }
  return std::nullopt;
}

std::string describe_command(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty())
      out += ' ';
    if (a.find_first_of(" \t'\"") != std::string::npos)
      out += "'" + a + "'";
    else
      out += a;
  }
  return out;
}

} // namespace banger
