// See proc.hpp.
#include "tests/support/proc.hpp"

#include "common/subprocess.hpp"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <stdexcept>
#include <sys/wait.h>
#include <unistd.h>

namespace banger::test {

namespace fs = std::filesystem;

namespace {

void apply_env(const std::map<std::string, std::string>& env) {
  for (const auto& [k, v] : env) {
    if (v.empty())
      ::unsetenv(k.c_str());
    else
      ::setenv(k.c_str(), v.c_str(), 1);
  }
}

[[noreturn]] void exec_argv(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  ::execvp(args[0], args.data());
  std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
  ::_exit(127);
}

} // namespace

run_result run(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
               std::chrono::milliseconds timeout) {
  process_options opts;
  opts.env = env;
  opts.timeout = timeout;
  auto p = run_process(argv, opts);
  return run_result{p.exit_code, p.timed_out, std::move(p.out), std::move(p.err)};
}

int spawn(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
          const fs::path& log_dir) {
  pid_t pid = ::fork();
  if (pid < 0)
    throw std::runtime_error("fork failed");
  if (pid == 0) {
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, STDIN_FILENO);
    int out = ::open((log_dir / "spawn.out").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int err = ::open((log_dir / "spawn.err").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(out, STDOUT_FILENO);
    ::dup2(err, STDERR_FILENO);
    apply_env(env);
    exec_argv(argv);
  }
  return pid;
}

fs::path bin_dir() {
  const char* d = std::getenv("BANGER_BIN_DIR");
  if (d == nullptr)
    throw std::runtime_error("BANGER_BIN_DIR is not set (run the tests through ctest)");
  return d;
}

temp_dir::temp_dir(const std::string& prefix) {
  std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr)
    throw std::runtime_error("mkdtemp failed");
  path = buf.data();
}

temp_dir::~temp_dir() {
  std::error_code ec;
  fs::remove_all(path, ec);
}

} // namespace banger::test
