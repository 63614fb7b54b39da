// The interactive vm commands: exec (a command in a running VM, its stdio wired to ours), run
// (create, exec, stop, and with --rm delete, cleaning up on Ctrl-C) and ssh (exec(3) of ssh).
//
// Everything runs on the CLI's one thread in the connection's KJ event loop. stdin is
// forwarded asynchronously so output keeps flowing while it is open; stdin's file status flags
// are never changed (it is often the user's shell's terminal): a pollable stdin is read only
// when poll(2) says a read will not block, anything else (a regular file, /dev/null) is read
// directly. SIGINT/SIGTERM/SIGHUP (and SIGWINCH with -t) are captured through KJ's
// UnixEventPort, so the cleanup RPCs of `vm run` still run after Ctrl-C; a -t session puts the
// terminal in raw mode and restores it on every exit path (RAII, including exceptions).
#include <csignal>
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <kj/async-unix.h>

#include "cli/artifacts.hpp"
#include "cli/output.hpp"
#include "cli/vm_rpc.hpp"
#include "common/process.hpp"

namespace banger::cli {

using namespace vm_detail;

namespace {

/// Writes a process's output to one of our fds, in order. A closed pipe (EPIPE: `| head`)
/// makes the rest of the output go nowhere rather than fail the command.
class fd_sink final : public agent_rpc::ByteSink::Server {
public:
  explicit fd_sink(int fd) : fd_(fd) {}

  kj::Promise<void> write(WriteContext c) override {
    auto data = c.getParams().getData();
    const auto* p = data.begin();
    std::size_t left = data.size();
    while (left > 0 && !broken_) {
      ssize_t n = ::write(fd_, p, left);
      if (n > 0) {
        p += n;
        left -= static_cast<std::size_t>(n);
      } else if (n < 0 && errno == EAGAIN) {
        // Someone left our stdout non-blocking: wait for room rather than drop output.
        pollfd pfd{fd_, POLLOUT, 0};
        ::poll(&pfd, 1, -1);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        broken_ = true;
      }
    }
    return kj::READY_NOW;
  }

  kj::Promise<void> close(CloseContext) override { return kj::READY_NOW; }

private:
  int fd_;
  bool broken_ = false;
};

/// The terminal on `fd` in raw mode for this object's lifetime.
class raw_terminal {
public:
  explicit raw_terminal(int fd) : fd_(fd) {
    if (::tcgetattr(fd_, &saved_) != 0)
      return;
    termios raw = saved_;
    ::cfmakeraw(&raw);
    active_ = ::tcsetattr(fd_, TCSADRAIN, &raw) == 0;
  }
  ~raw_terminal() {
    if (active_)
      ::tcsetattr(fd_, TCSADRAIN, &saved_);
  }
  raw_terminal(const raw_terminal&) = delete;
  raw_terminal& operator=(const raw_terminal&) = delete;

private:
  int fd_;
  termios saved_{};
  bool active_ = false;
};

std::pair<std::uint16_t, std::uint16_t> terminal_size() {
  winsize ws{};
  if (::ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0)
    return {ws.ws_row, ws.ws_col};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0)
    return {ws.ws_row, ws.ws_col};
  return {24, 80};
}

/// Whether epoll can watch `fd` (pipes, sockets, terminals can; regular files and /dev/null
/// cannot, and never block on read anyway).
bool pollable(int fd) {
  unique_fd ep(::epoll_create1(EPOLL_CLOEXEC));
  if (ep.get() < 0)
    return false;
  epoll_event ev{};
  ev.events = EPOLLIN;
  return ::epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd, &ev) == 0;
}

bool readable_now(int fd) {
  pollfd pfd{fd, POLLIN, 0};
  return ::poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLIN | POLLHUP | POLLERR)) != 0;
}

/// Forwards our stdin to the process until EOF, then closes its stdin. Owned by the session;
/// destroying the promise from run() stops it between reads.
class stdin_pump {
public:
  stdin_pump(kj::UnixEventPort& port, agent_rpc::Process::Client proc) : proc_(kj::mv(proc)) {
    if (pollable(STDIN_FILENO))
      observer_ =
        kj::heap<kj::UnixEventPort::FdObserver>(port, STDIN_FILENO, kj::UnixEventPort::FdObserver::OBSERVE_READ);
  }

  kj::Promise<void> run() {
    KJ_IF_MAYBE (obs, observer_) {
      // Edge-triggered: wait only when poll(2) has just seen nothing to read.
      if (!readable_now(STDIN_FILENO))
        return (*obs)->whenBecomesReadable().then([this] { return run(); });
    }
    ssize_t n = ::read(STDIN_FILENO, buf_, sizeof buf_);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
      return kj::evalLater([this] { return run(); });
    if (n <= 0) // EOF, or an error reading our stdin: either way the process sees EOF
      return proc_.closeStdinRequest().send().ignoreResult();
    auto req = proc_.writeStdinRequest();
    req.setData(kj::arrayPtr(buf_, static_cast<std::size_t>(n)));
    return req.send().then([this] { return run(); });
  }

private:
  agent_rpc::Process::Client proc_;
  kj::Maybe<kj::Own<kj::UnixEventPort::FdObserver>> observer_;
  kj::byte buf_[16384];
};

kj::Promise<void> forward_resizes(kj::UnixEventPort& port, agent_rpc::Process::Client proc) {
  return port.onSignal(SIGWINCH).then([&port, proc](siginfo_t) mutable {
    auto [rows, cols] = terminal_size();
    auto req = proc.resizeRequest();
    req.setRows(rows);
    req.setCols(cols);
    return req.send().ignoreResult().then([&port, proc]() mutable { return forward_resizes(port, kj::mv(proc)); });
  });
}

kj::Promise<void> forward_signal(kj::UnixEventPort& port, agent_rpc::Process::Client proc, int signo) {
  return port.onSignal(signo).then([&port, proc, signo](siginfo_t) mutable {
    auto req = proc.signalRequest();
    req.setSigno(signo);
    return req.send().ignoreResult().then(
      [&port, proc, signo]() mutable { return forward_signal(port, kj::mv(proc), signo); });
  });
}

/// Signals the interactive commands handle themselves. Captured before the connection's event
/// loop exists, on the only thread.
void capture_signals() {
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGWINCH})
    kj::UnixEventPort::captureSignal(s);
}

struct exec_outcome {
  int code = 0;
  bool aborted = false; ///< `abort` fired; the process was dropped (the agent kills it)
};

/// Where a session's output goes, and whether our stdin is its.
struct exec_io {
  int out = STDOUT_FILENO;
  bool stdin = true;
};

/// Runs `e.argv` in VM `vm` with our stdio (or `io`'s). Without `abort`, SIGINT/SIGTERM/SIGHUP
/// are forwarded to the process; with it, the session ends when it fires.
expected<exec_outcome> exec_session(client& c, const std::string& vm, const vm_exec_opts& e,
                                    kj::ForkedPromise<int>* abort, exec_io stdio = {}) {
  auto& io = c.conn().io;
  auto req = c.conn().daemon.vmExecRequest();
  req.setName(vm);
  auto spec = req.initSpec();
  auto argv = spec.initArgv(static_cast<unsigned>(e.argv.size()));
  for (unsigned i = 0; i < e.argv.size(); ++i)
    argv.set(i, e.argv[i]);
  std::vector<std::string> env = e.env;
  const char* term = std::getenv("TERM");
  bool has_term = std::any_of(env.begin(), env.end(), [](const std::string& kv) { return kv.rfind("TERM=", 0) == 0; });
  if (e.tty && term != nullptr && *term != '\0' && !has_term)
    env.push_back(std::string("TERM=") + term);
  auto envl = spec.initEnv(static_cast<unsigned>(env.size()));
  for (unsigned i = 0; i < env.size(); ++i)
    envl.set(i, env[i]);
  spec.setCwd(e.cwd);
  spec.setTty(e.tty);
  if (e.tty) {
    auto [rows, cols] = terminal_size();
    spec.setRows(rows);
    spec.setCols(cols);
  }
  spec.setStdin(stdio.stdin);
  req.setStdout(kj::heap<fd_sink>(stdio.out));
  req.setStderr(kj::heap<fd_sink>(STDERR_FILENO));
  auto r = req.send().wait(io.waitScope);
  if (failed(r.getError()))
    return from_rpc(r.getError());
  agent_rpc::Process::Client proc = r.getProcess();

  std::optional<raw_terminal> raw;
  if (e.tty)
    raw.emplace(STDIN_FILENO);
  stdin_pump pump(io.unixEventPort, proc);
  // The process may not read stdin.
  auto pumping = (stdio.stdin ? pump.run() : kj::Promise<void>(kj::READY_NOW)).eagerlyEvaluate([](kj::Exception&&) {});
  kj::Vector<kj::Promise<void>> watchers;
  if (e.tty)
    watchers.add(forward_resizes(io.unixEventPort, proc));
  if (abort == nullptr)
    for (int s : {SIGINT, SIGTERM, SIGHUP})
      watchers.add(forward_signal(io.unixEventPort, proc, s));
  auto watching = kj::joinPromises(watchers.releaseAsArray()).eagerlyEvaluate([](kj::Exception&&) {});

  auto done = proc.waitRequest().send().then([](capnp::Response<agent_rpc::Process::WaitResults>&& w) {
    auto st = w.getStatus();
    if (st.isExited())
      return exec_outcome{exit_code(st.getExited(), std::nullopt), false};
    return exec_outcome{exit_code(std::nullopt, st.getSignaled()), false};
  });
  if (abort != nullptr)
    done = done.exclusiveJoin(abort->addBranch().then([](int) { return exec_outcome{130, true}; }));
  return done.wait(io.waitScope);
}

expected<void> check_exec_opts(const vm_exec_opts& e) {
  for (const auto& kv : e.env)
    if (auto ok = validate_env(kv); !ok)
      return ok;
  if (e.tty && ::isatty(STDIN_FILENO) != 1)
    return make_error(errc::bad_request, "-t needs a terminal on stdin; drop -t when piping input");
  return {};
}

} // namespace

expected<int> exec_captured(client& c, const std::string& vm, const std::vector<std::string>& argv,
                            const std::string& cwd, int out_fd) {
  vm_exec_opts e;
  e.name = vm;
  e.cwd = cwd;
  e.argv = argv;
  capture_signals();
  auto out = exec_session(c, vm, e, nullptr, {out_fd, false});
  if (!out)
    return out.err();
  return out->code;
}

int cmd_vm_exec(const dirs& d, const vm_exec_opts& e) {
  output_opts o;
  if (auto ok = check_exec_opts(e); !ok)
    return report(ok.err(), o);
  if (e.argv.empty())
    return report(make_error(errc::bad_request, "no command: `banger vm exec NAME -- CMD...`"), o);
  capture_signals();
  return with_daemon(d, o, [&](client& c) {
    std::shared_ptr<workspace_plan> resync;
    if (auto drift = workspace_drift(c, e.name, e.auto_prepare ? &resync : nullptr)) {
      if (!resync)
        std::cerr << paint("banger: warning:", "1;33", use_colour(2)) << " " << *drift << "\n";
      else if (auto shipped = ship_workspace(c, e.name, *resync, "vm exec", false); !shipped)
        return report(shipped.err(), o);
      else if (auto synced = sync_home(c, d, e.name, plan_checkout(*resync), "vm exec", false); !synced)
        return report(synced.err(), o);
    }
    auto out = exec_session(c, e.name, e, nullptr);
    if (!out)
      return report(out.err(), o);
    return out->code;
  });
}

int cmd_vm_ssh(const dirs& d, const std::string& name, const std::vector<std::string>& command) {
  output_opts o;
  ssh_target t;
  int rc = with_daemon(d, o, [&](client& c) {
    auto req = c.conn().daemon.vmSshTargetRequest();
    req.setName(name);
    auto r = req.send().wait(c.conn().io.waitScope);
    if (failed(r.getError()))
      return report(from_rpc(r.getError()), o);
    t = to_ssh_target(r.getTarget());
    return 0;
  }); // the connection is closed here, before exec
  if (rc != 0)
    return rc;
  if (t.ip.empty())
    return report(make_error(errc::not_running,
                             fmt::format("vm {} has no address; is it running? `banger vm start {}`", name, name)),
                  o);
  auto args = ssh_argv(t, ::isatty(STDIN_FILENO) == 1, command);
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  // ssh inherits dispositions and the signal mask: give it the defaults.
  ::signal(SIGPIPE, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::execvp("ssh", argv.data());
  int err = errno;
  return report(make_error(errc::operation_failed,
                           fmt::format("exec ssh: {}{}", errno_text(err),
                                       err == ENOENT ? "; install the OpenSSH client (openssh-client)" : "")),
                o);
}

int cmd_vm_run(const dirs& d, const vm_run_opts& r) {
  output_opts o;
  if (!r.create.name.empty())
    if (auto ok = validate_vm_name(r.create.name); !ok)
      return report(ok.err(), o);
  vm_exec_opts e = r.exec;
  if (auto ok = check_exec_opts(e); !ok)
    return report(ok.err(), o);
  if (e.argv.empty()) // the daemon runs the image's Entrypoint + Cmd, or a login shell
    e.tty = ::isatty(STDIN_FILENO) == 1;
  auto say = [&](const std::string& line) {
    if (!r.quiet)
      std::cerr << "[vm run] " << line << "\n" << std::flush;
  };
  // A checkout is read before any VM exists: a path that is not one fails with nothing made.
  std::shared_ptr<workspace_plan> plan;
  if (!r.workspace.path.empty()) {
    auto p = plan_workspace(r.workspace);
    if (!p)
      return report(p.err(), o);
    plan = std::move(*p);
  }
  // So is the host setup the guest gets (a config error fails here, with nothing made).
  auto home = plan_home_files(d, plan ? plan_checkout(*plan) : std::filesystem::path(), "vm run");
  if (!home)
    return report(home.err(), o);
  capture_signals();
  return with_daemon(d, o, [&](client& c) {
    auto& io = c.conn().io;
    auto& port = io.unixEventPort;
    auto interrupt = port.onSignal(SIGINT)
                       .exclusiveJoin(port.onSignal(SIGTERM))
                       .exclusiveJoin(port.onSignal(SIGHUP))
                       .then([](siginfo_t s) { return s.si_signo; })
                       .fork();
    bool interrupted = false;
    auto noticed = interrupt.addBranch()
                     .then([&](int) {
                       interrupted = true;
                       say("interrupted: cleaning up");
                     })
                     .eagerlyEvaluate(nullptr);

    // A registry reference is pulled on first use, before any VM exists.
    auto image = image_for_vm(c, d, r.create.image, "vm run", r.quiet);
    if (!image)
      return report(image.err(), o);
    // Create and start. An interrupt does not cancel it: the VM is cleaned up once it exists.
    auto t0 = std::chrono::steady_clock::now();
    auto req = c.conn().daemon.vmCreateRequest();
    auto s = req.initSpec();
    s.setName(r.create.name);
    s.setImage(*image);
    s.setKernel(r.create.kernel);
    s.setVcpus(r.create.vcpus);
    s.setMemoryMib(r.create.memory_mib);
    s.setDiskMib(r.create.disk_mib);
    // With a workspace the VM is created stopped, the checkout written into its work disk
    // (no guest CPU spent on it), then started.
    req.setNoStart(plan != nullptr);
    req.setProgress(kj::heap<stage_printer>("vm run", r.quiet));
    auto created = req.send().wait(io.waitScope);
    if (failed(created.getError())) {
      report(from_rpc(created.getError()), o); // the daemon undoes a failed create
      return interrupted ? 130 : 1;
    }
    std::string name = created.getInfo().getName();

    int rc = 0;
    bool ready = plan == nullptr;
    if (plan && !interrupted) {
      auto shipped = ship_workspace(c, name, *plan, "vm run", r.quiet);
      if (!shipped) {
        rc = report(shipped.err(), o);
      } else {
        if (e.cwd.empty())
          e.cwd = shipped->start_dir;
        if (auto started = command_on(c, name, actors::vm_cmd::start{}, "vm run", r.quiet); !started)
          rc = report(started.err(), o);
        else
          ready = true;
      }
    }
    if (ready && !interrupted)
      if (auto synced = sync_home_files(c, name, *home, "vm run", r.quiet); !synced) {
        rc = report(synced.err(), o);
        ready = false;
      }
    if (ready)
      say(fmt::format("{} ready in {:.1f}s", name, seconds_since(t0)));

    if (ready && !interrupted) {
      auto out = exec_session(c, name, e, &interrupt);
      if (!out) {
        rc = report(out.err(), o);
      } else {
        rc = out->code;
        interrupted = interrupted || out->aborted;
      }
    }

    bool cleanup_failed = false;
    // With --rm the disks are deleted next, so a clean guest shutdown buys nothing: the forced
    // delete below kills the VMM and releases everything. Without --rm, stop it cleanly.
    if (!r.rm) {
      say(fmt::format("stopping {}", name));
      if (auto sr = command_on(c, name, actors::vm_cmd::stop{}, "vm run", true); !sr) {
        const auto& err = sr.err();
        if (err.code != errc::not_running) { // e.g. the command powered it off
          report(err, o);
          cleanup_failed = true;
        }
      }
    }
    if (r.rm) {
      say(fmt::format("deleting {}", name));
      // Forced: kills the VMM first.
      if (auto dr = command_on(c, name, actors::vm_cmd::remove_force{}, "vm run", true); !dr) {
        auto err = dr.err();
        err.message += fmt::format("; vm {} is left behind: `banger vm delete {} --force`", name, name);
        report(err, o);
        cleanup_failed = true;
      } else {
        say(fmt::format("deleted {}", name));
      }
    }
    if (interrupted)
      return 130;
    return cleanup_failed && rc == 0 ? 1 : rc;
  });
}

} // namespace banger::cli
