// The Agent's exec (agent.hpp) and the Process capability it returns.
//
// exec: posix_spawn with pipes (fork/exec with a pty), the child's stdout/stderr pumped into the caller's
// ByteSinks with capnp streaming flow control, stdin fed from writeStdin. A child is reaped by
// a task owned by the service (not by the Process capability), so dropping the capability —
// which SIGKILLs a running child — never leaves a zombie.
//
// Runs on the one KJ event-loop thread of banger-agent; the service's reapers (agent.cpp) are
// driven by kj::UnixEventPort::onChildExit.
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <pty.h>
#include <spawn.h>
#include <string>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utmp.h>
#include <vector>

#include <kj/async-unix.h>

#include "guest/agent/agent_internal.hpp"

namespace banger::guest::detail {

namespace {

constexpr std::size_t chunk = 64u << 10;

/// A child process's life: its exit status once reaped, and who waits for it.
struct child_state : kj::Refcounted {
  kj::Maybe<pid_t> pid; // cleared by onChildExit when reaped
  bool exited = false;
  int status = 0;
  kj::Vector<kj::Own<kj::PromiseFulfiller<void>>> waiters;

  kj::Promise<void> when_exited() {
    if (exited)
      return kj::READY_NOW;
    auto paf = kj::newPromiseAndFulfiller<void>();
    waiters.add(kj::mv(paf.fulfiller));
    return kj::mv(paf.promise);
  }
  void set_exit(int st) {
    exited = true;
    status = st;
    for (auto& w : waiters)
      w->fulfill();
    waiters.clear();
  }
};

/// Copies `in` to `sink` until EOF (EIO on a pty master counts as EOF), then closes the sink.
kj::Promise<void> pump(kj::Own<kj::AsyncInputStream> in, agent_rpc::ByteSink::Client sink) {
  auto buf = kj::heapArray<kj::byte>(chunk);
  auto read = in->tryRead(buf.begin(), 1, buf.size());
  return read
    .then(
      [in = kj::mv(in), sink, buf = kj::mv(buf)](size_t n) mutable -> kj::Promise<void> {
        if (n == 0)
          return sink.closeRequest().send().ignoreResult();
        auto req = sink.writeRequest();
        req.setData(buf.slice(0, n));
        return req.send().then([in = kj::mv(in), sink]() mutable { return pump(kj::mv(in), sink); });
      },
      [sink](kj::Exception&&) mutable { return sink.closeRequest().send().ignoreResult(); })
    .catch_([](kj::Exception&&) {}); // the caller went away: stop pumping
}

class process_impl final : public agent_rpc::Process::Server {
public:
  process_impl(kj::Own<child_state> child, kj::Own<kj::AsyncOutputStream> stdin_stream, int tty_fd,
               kj::Promise<void> output_done)
    : child_(kj::mv(child)), stdin_(kj::mv(stdin_stream)), tty_fd_(tty_fd), output_(output_done.fork()) {}

  ~process_impl() {
    KJ_IF_MAYBE (pid, child_->pid)
      ::kill(-*pid, SIGKILL); // its own session and process group
    if (tty_fd_ >= 0)
      ::close(tty_fd_);
  }

  kj::Promise<void> writeStdin(WriteStdinContext c) override {
    KJ_IF_MAYBE (s, stdin_) {
      auto data = c.getParams().getData();
      return (*s)->write(data.begin(), data.size()).catch_([](kj::Exception&&) {
        // The process closed its stdin or exited; further input is dropped, like a pipe would.
      });
    }
    return kj::READY_NOW;
  }

  kj::Promise<void> closeStdin(CloseStdinContext) override {
    stdin_ = nullptr;
    return kj::READY_NOW;
  }

  kj::Promise<void> signal(SignalContext c) override {
    int sig = c.getParams().getSigno();
    KJ_IF_MAYBE (pid, child_->pid)
      ::kill(*pid, sig);
    return kj::READY_NOW;
  }

  kj::Promise<void> resize(ResizeContext c) override {
    if (tty_fd_ >= 0) {
      struct winsize ws {};
      ws.ws_row = c.getParams().getRows();
      ws.ws_col = c.getParams().getCols();
      ::ioctl(tty_fd_, TIOCSWINSZ, &ws);
    }
    return kj::READY_NOW;
  }

  kj::Promise<void> wait(WaitContext c) override {
    return child_->when_exited().then([this] { return output_.addBranch(); }).then([this, c]() mutable {
      auto st = c.getResults().initStatus();
      if (WIFSIGNALED(child_->status))
        st.setSignaled(WTERMSIG(child_->status));
      else
        st.setExited(WEXITSTATUS(child_->status));
    });
  }

private:
  kj::Own<child_state> child_;
  kj::Maybe<kj::Own<kj::AsyncOutputStream>> stdin_;
  int tty_fd_; ///< pty master kept for resize; -1 without a tty
  kj::ForkedPromise<void> output_;
};

/// `mise` in the command's PATH, or in HOME/.local/bin where mise installs itself; "" when the
/// guest has none.
std::string find_mise(const std::vector<std::string>& env) {
  std::string path, home = "/root";
  for (const auto& e : env) {
    if (e.rfind("PATH=", 0) == 0)
      path = e.substr(5);
    else if (e.rfind("HOME=", 0) == 0)
      home = e.substr(5);
  }
  path += ":" + home + "/.local/bin";
  std::size_t at = 0;
  while (at <= path.size()) {
    auto end = path.find(':', at);
    if (end == std::string::npos)
      end = path.size();
    std::string dir = path.substr(at, end - at);
    at = end + 1;
    if (dir.empty() || dir[0] != '/')
      continue;
    std::string candidate = dir + "/mise";
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(candidate.c_str(), X_OK) == 0)
      return candidate;
  }
  return {};
}

/// `mise trust --quiet --all` in workspace `ws`, once per tree, so its .mise.toml never stops a
/// command to ask: resolves when it is done (at once when it was, for this tree). Best effort:
/// its output is dropped, its failure ignored, and it is given 10 s (then killed). The agent's
/// loop goes on meanwhile; commands that come while it runs wait for the same run.
kj::Promise<void> trust_once(agent_service::impl& svc, const std::string& mise, const std::string& ws,
                             std::vector<std::string> env) {
  struct stat st {};
  if (::stat(ws.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return kj::READY_NOW;
  std::pair<std::uint64_t, std::uint64_t> tree{st.st_dev, st.st_ino};
  if (auto it = svc.mise_trusted.find(tree); it != svc.mise_trusted.end())
    return it->second.addBranch();
  std::vector<char*> envp;
  for (auto& e : env)
    if (!e.empty())
      envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string m = mise, trust = "trust", quiet = "--quiet", all = "--all", dir = ws;
  char* argv[] = {m.data(), trust.data(), quiet.data(), all.data(), dir.data(), nullptr};
  posix_spawn_file_actions_t actions;
  ::posix_spawn_file_actions_init(&actions);
  for (int fd : {0, 1, 2})
    ::posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0);
  ::posix_spawn_file_actions_addchdir_np(&actions, ws.c_str());
  pid_t pid = -1;
  int err = ::posix_spawn(&pid, mise.c_str(), &actions, nullptr, argv, envp.data());
  ::posix_spawn_file_actions_destroy(&actions);
  kj::Promise<void> done = kj::READY_NOW;
  if (err == 0) {
    auto child = kj::refcounted<child_state>();
    child->pid = pid;
    svc.reapers.add(svc.io.unixEventPort.onChildExit(child->pid).then([c = kj::addRef(*child)](int status) mutable {
      c->set_exit(status);
    }));
    auto too_long = svc.io.provider->getTimer().afterDelay(10 * kj::SECONDS).then([c = kj::addRef(*child)] {
      KJ_IF_MAYBE (p, c->pid)
        ::kill(*p, SIGKILL);
    });
    done = child->when_exited().exclusiveJoin(kj::mv(too_long)).attach(kj::mv(child));
  }
  return svc.mise_trusted.emplace(tree, done.fork()).first->second.addBranch();
}

} // namespace

kj::Promise<void> agent_impl::exec_now(ExecContext c) {
  auto p = c.getParams();
  auto spec = p.getSpec();
  auto r = c.getResults();
  if (spec.getArgv().size() == 0) {
    fail(r.initFailure(), e_bad_request, "exec: empty argv");
    return kj::READY_NOW;
  }
  std::vector<std::string> argv_s, env_s;
  for (auto a : spec.getArgv())
    argv_s.emplace_back(a.cStr(), a.size());
  bool tty = spec.getTty();
  env_s = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "USER=root",
           "LOGNAME=root", tty ? "TERM=xterm-256color" : "TERM=dumb"};
  for (auto e : spec.getEnv()) {
    std::string kv(e.cStr(), e.size());
    auto eq = kv.find('=');
    if (eq == 0 || eq == std::string::npos) {
      fail(r.initFailure(), e_bad_request, "exec: environment entry \"" + kv + "\" is not KEY=VALUE");
      return kj::READY_NOW;
    }
    for (auto& existing : env_s)
      if (existing.compare(0, eq + 1, kv, 0, eq + 1) == 0)
        existing.clear();
    env_s.push_back(kv);
  }
  // In a workspace, a guest with mise runs the command through it, once the workspace is
  // trusted; without mise, as it is.
  if (std::string ws = spec.getWorkspace(); !ws.empty() && ws[0] == '/')
    if (std::string mise = find_mise(env_s); !mise.empty()) {
      auto trusting = trust_once(svc_, mise, ws, env_s);
      argv_s.insert(argv_s.begin(), {mise, "exec", "--"});
      return trusting.then([this, c, argv_s = std::move(argv_s), env_s = std::move(env_s)]() mutable {
        return spawn_now(c, std::move(argv_s), std::move(env_s));
      });
    }
  return spawn_now(c, std::move(argv_s), std::move(env_s));
}

kj::Promise<void> agent_impl::spawn_now(ExecContext c, std::vector<std::string> argv_s,
                                        std::vector<std::string> env_s) {
  auto p = c.getParams();
  auto spec = p.getSpec();
  auto r = c.getResults();
  bool tty = spec.getTty();
  std::string cwd = spec.hasCwd() && spec.getCwd().size() > 0 ? std::string(spec.getCwd().cStr()) : "/root";

  // Pipes, or a pty (and then a CLOEXEC status pipe that carries errno if exec fails).
  int in_pipe[2] = {-1, -1}, out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1}, status_pipe[2] = {-1, -1};
  int master = -1, slave = -1;
  bool ok = true;
  if (tty) {
    struct winsize ws {};
    ws.ws_row = spec.getRows() ? spec.getRows() : 24;
    ws.ws_col = spec.getCols() ? spec.getCols() : 80;
    ok = ::pipe2(status_pipe, O_CLOEXEC) == 0 && ::openpty(&master, &slave, nullptr, nullptr, &ws) == 0;
  } else {
    ok = ::pipe2(out_pipe, O_CLOEXEC) == 0 && ::pipe2(err_pipe, O_CLOEXEC) == 0 &&
         (!spec.getStdin() || ::pipe2(in_pipe, O_CLOEXEC) == 0);
  }
  if (!ok) {
    fail(r.initFailure(), e_operation_failed, "exec: creating pipes: " + errno_str(errno));
    for (int fd : {in_pipe[0], in_pipe[1], out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1], status_pipe[0],
                   status_pipe[1], master, slave})
      if (fd >= 0)
        ::close(fd);
    return kj::READY_NOW;
  }
  std::vector<char*> argv, envp;
  for (auto& a : argv_s)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env_s)
    if (!e.empty())
      envp.push_back(e.data());
  envp.push_back(nullptr);

  pid_t pid = -1;
  int exec_err = 0; // errno of a failed fork, chdir or exec
  if (tty) {
    pid = ::fork();
    if (pid == 0) {
      // Child: only async-signal-safe calls from here to exec.
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      ::signal(SIGPIPE, SIG_DFL);
      ::close(master);
      ::login_tty(slave); // setsid, controlling tty, dup to 0/1/2
      if (::chdir(cwd.c_str()) == 0)
        ::execvpe(argv[0], argv.data(), envp.data());
      int err = errno;
      ssize_t ignored = ::write(status_pipe[1], &err, sizeof err);
      (void)ignored;
      ::_exit(127);
    }
    exec_err = pid < 0 ? errno : 0;
    ::close(status_pipe[1]);
    // Blocking read: the child either execs (closing the pipe) or writes errno at once.
    if (pid > 0 && ::read(status_pipe[0], &exec_err, sizeof exec_err) != sizeof exec_err)
      exec_err = 0;
    ::close(status_pipe[0]);
  } else {
    // posix_spawn (vfork-like): no copy of the agent's page tables and no copy-on-write faults
    // in the agent afterwards, which a fork costs a first command ~10 ms under TCG. It reports
    // a failed chdir or exec as its result.
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawnattr_init(&attr);
    if (spec.getStdin())
      ::posix_spawn_file_actions_adddup2(&actions, in_pipe[0], 0);
    else
      ::posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    ::posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
    ::posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
    ::posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    ::posix_spawnattr_setsigmask(&attr, &none);
    ::posix_spawnattr_setsigdefault(&attr, &all); // SIGPIPE is ignored here
    ::posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    exec_err = ::posix_spawnp(&pid, argv[0], &actions, &attr, argv.data(), envp.data());
    ::posix_spawn_file_actions_destroy(&actions);
    ::posix_spawnattr_destroy(&attr);
    if (exec_err != 0)
      pid = -1;
  }
  // Every child is reaped by the service: also a tty child that failed to exec (it exits 127).
  kj::Own<child_state> child;
  if (pid > 0) {
    child = kj::refcounted<child_state>();
    child->pid = pid;
    svc_.reapers.add(svc_.io.unixEventPort.onChildExit(child->pid).then([c = kj::addRef(*child)](int status) mutable {
      c->set_exit(status);
    }));
  }
  for (int fd : {in_pipe[0], out_pipe[1], err_pipe[1], slave})
    if (fd >= 0)
      ::close(fd);
  if (pid < 0 || exec_err != 0) {
    for (int fd : {in_pipe[1], out_pipe[0], err_pipe[0], master})
      if (fd >= 0)
        ::close(fd);
    bool missing = exec_err == ENOENT;
    if (pid < 0 && tty)
      fail(r.initFailure(), e_operation_failed, "exec: fork: " + errno_str(exec_err));
    else
      fail(r.initFailure(), missing ? e_not_found : e_operation_failed,
           "exec " + argv_s[0] + ": " + errno_str(exec_err) +
             (missing ? " (not in PATH, or cwd " + cwd + " missing)" : ""));
    return kj::READY_NOW;
  }

  auto& lowlevel = *svc_.io.lowLevelProvider;
  constexpr uint own = kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP | kj::LowLevelAsyncIoProvider::ALREADY_CLOEXEC;
  kj::Own<kj::AsyncOutputStream> stdin_stream;
  kj::Promise<void> output = nullptr;
  int tty_fd = -1;
  if (tty) {
    int wfd = ::fcntl(master, F_DUPFD_CLOEXEC, 0);
    tty_fd = ::fcntl(master, F_DUPFD_CLOEXEC, 0);
    stdin_stream = lowlevel.wrapOutputFd(wfd, own);
    output =
      kj::joinPromises(kj::arr(pump(lowlevel.wrapInputFd(master, own), p.getStdout()),
                               p.getStderr().closeRequest().send().ignoreResult().catch_([](kj::Exception&&) {})));
  } else {
    if (spec.getStdin())
      stdin_stream = lowlevel.wrapOutputFd(in_pipe[1], own);
    output = kj::joinPromises(kj::arr(pump(lowlevel.wrapInputFd(out_pipe[0], own), p.getStdout()),
                                      pump(lowlevel.wrapInputFd(err_pipe[0], own), p.getStderr())));
  }
  auto proc = kj::heap<process_impl>(kj::mv(child), kj::mv(stdin_stream), tty_fd, kj::mv(output));
  r.setProcess(kj::mv(proc));
  return kj::READY_NOW;
}

} // namespace banger::guest::detail
