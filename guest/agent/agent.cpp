// The Agent service; see agent.hpp.
//
// exec: posix_spawn with pipes (fork/exec with a pty), the child's stdout/stderr pumped into the caller's
// ByteSinks with capnp streaming flow control, stdin fed from writeStdin. A child is reaped by
// a task owned by the service (not by the Process capability), so dropping the capability —
// which SIGKILLs a running child — never leaves a zombie.
#include "guest/agent/agent.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <linux/random.h>
#include <pty.h>
#include <spawn.h>
#include <string>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <utmp.h>
#include <vector>

#include <kj/async-unix.h>

#include "guest/agent/sysinfo.hpp"

#ifndef BANGER_VERSION
#define BANGER_VERSION "dev"
#endif

namespace banger::guest {

namespace {

// errc numbers (common/error.hpp); the guest side does not link common/.
constexpr std::uint8_t e_not_found = 1;
constexpr std::uint8_t e_already_exists = 2;
constexpr std::uint8_t e_bad_request = 3;
constexpr std::uint8_t e_unavailable = 6;
constexpr std::uint8_t e_operation_failed = 8;

constexpr std::size_t max_file_bytes = 256u << 20;
constexpr std::size_t chunk = 64u << 10;

void fail(agent_rpc::Failure::Builder f, std::uint8_t code, std::string msg) {
  f.setCode(code);
  f.setMessage(msg);
}

std::string errno_str(int err) { return std::strerror(err); }

/// Absolute, no NUL or control characters, no "." or ".." components.
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

} // namespace

struct agent_service::impl : kj::TaskSet::ErrorHandler {
  kj::AsyncIoContext& io;
  agent_options opts;
  kj::TaskSet reapers;

  bool ready_seen = false;
  /// Shared by every command waiting for the ready file; made by the first one.
  kj::Maybe<kj::ForkedPromise<void>> ready_wait;

  impl(kj::AsyncIoContext& i, agent_options o) : io(i), opts(std::move(o)), reapers(*this) {}

  bool ready_now() {
    if (!ready_seen && (opts.ready_file.empty() || ::access(opts.ready_file.c_str(), F_OK) == 0))
      ready_seen = true;
    return ready_seen;
  }

  /// Resolves once the guest is ready for commands (agent_options::ready_file), at most 30 s
  /// after the first command asked.
  kj::Promise<void> guest_ready() {
    if (ready_now())
      return kj::READY_NOW;
    KJ_IF_MAYBE (w, ready_wait)
      return w->addBranch();
    auto timeout = io.provider->getTimer().afterDelay(30 * kj::SECONDS).then([this] {
      std::fprintf(stderr, "banger-agent: %s did not appear within 30 s; running commands anyway\n",
                   opts.ready_file.c_str());
      ready_seen = true;
    });
    auto forked = appeared().exclusiveJoin(kj::mv(timeout)).fork();
    auto branch = forked.addBranch();
    ready_wait = kj::mv(forked);
    return branch;
  }

  /// Resolves when the ready file exists: on inotify's word that something appeared in its
  /// directory (init creates it the moment the guest is ready), else on a 10 ms poll.
  kj::Promise<void> appeared() {
    auto slash = opts.ready_file.rfind('/');
    std::string dir = slash == 0 ? "/" : slash == std::string::npos ? "." : opts.ready_file.substr(0, slash);
    int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd >= 0 && ::inotify_add_watch(fd, dir.c_str(), IN_CREATE | IN_MOVED_TO) >= 0) {
      auto in = io.lowLevelProvider->wrapInputFd(fd, kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP |
                                                       kj::LowLevelAsyncIoProvider::ALREADY_CLOEXEC);
      return watch(kj::mv(in), kj::heapArray<kj::byte>(4096));
    }
    if (fd >= 0)
      ::close(fd);
    return poll_ready();
  }
  kj::Promise<void> watch(kj::Own<kj::AsyncInputStream> in, kj::Array<kj::byte> buf) {
    if (ready_now()) // checked after the watch exists: a file made before it is not missed
      return kj::READY_NOW;
    auto read = in->tryRead(buf.begin(), 1, buf.size());
    return read.then([this, in = kj::mv(in), buf = kj::mv(buf)](size_t n) mutable -> kj::Promise<void> {
      if (n == 0)
        return poll_ready();
      return watch(kj::mv(in), kj::mv(buf));
    });
  }
  kj::Promise<void> poll_ready() {
    if (ready_now())
      return kj::READY_NOW;
    return io.provider->getTimer().afterDelay(10 * kj::MILLISECONDS).then([this] { return poll_ready(); });
  }
  void taskFailed(kj::Exception&& e) override {
    std::fprintf(stderr, "banger-agent: task failed: %s\n", e.getDescription().cStr());
  }
};

namespace {

class agent_impl final : public agent_rpc::Agent::Server {
public:
  explicit agent_impl(agent_service::impl& svc) : svc_(svc) {}

  kj::Promise<void> ping(PingContext c) override {
    auto r = c.getResults();
    r.setVersion(BANGER_VERSION);
    r.setUptimeMs(uptime_ms());
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    r.setHostname(host);
    return kj::READY_NOW;
  }

  kj::Promise<void> exec(ExecContext c) override {
    return svc_.guest_ready().then([this, c, self = thisCap()]() mutable { return exec_now(c); });
  }
  kj::Promise<void> exec_now(ExecContext c);

  kj::Promise<void> writeFile(WriteFileContext c) override {
    return svc_.guest_ready().then([this, c, self = thisCap()]() mutable { return write_file_now(c); });
  }

  kj::Promise<void> write_file_now(WriteFileContext c) {
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
    std::size_t off = 0;
    int err = 0;
    while (off < data.size()) {
      ssize_t n = ::write(fd, data.begin() + off, data.size() - off);
      if (n < 0) {
        if (errno == EINTR)
          continue;
        err = errno;
        break;
      }
      off += static_cast<std::size_t>(n);
    }
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

  kj::Promise<void> readFile(ReadFileContext c) override {
    return svc_.guest_ready().then([this, c, self = thisCap()]() mutable { return read_file_now(c); });
  }

  kj::Promise<void> read_file_now(ReadFileContext c) {
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

  kj::Promise<void> ports(PortsContext c) override {
    auto list = list_listening_ports();
    auto out = c.getResults().initPorts(static_cast<unsigned>(list.size()));
    for (unsigned i = 0; i < list.size(); ++i) {
      out[i].setProtocol(list[i].protocol);
      out[i].setAddress(list[i].address);
      out[i].setPort(list[i].port);
      out[i].setProcess(list[i].process);
    }
    return kj::READY_NOW;
  }

  kj::Promise<void> stats(StatsContext c) override {
    auto s = read_system_stats();
    auto o = c.getResults().initStats();
    o.setUptimeMs(s.uptime_ms);
    o.setCpuCount(s.cpu_count);
    o.setCpuBusyMs(s.cpu_busy_ms);
    o.setCpuIdleMs(s.cpu_idle_ms);
    o.setLoad1(s.load1);
    o.setMemTotalBytes(s.mem_total);
    o.setMemAvailableBytes(s.mem_available);
    o.setRootTotalBytes(s.root_total);
    o.setRootFreeBytes(s.root_free);
    o.setWorkTotalBytes(s.work_total);
    o.setWorkFreeBytes(s.work_free);
    return kj::READY_NOW;
  }

  kj::Promise<void> poweroff(PoweroffContext c) override {
    if (!svc_.opts.allow_poweroff) {
      fail(c.getResults().initFailure(), e_unavailable, "poweroff is disabled (the agent is not running in a guest)");
      return kj::READY_NOW;
    }
    ::sync();
    // banger-init and busybox init power off on SIGUSR2; systemd on SIGRTMIN+4. Signal after a
    // short delay so this reply reaches the host first.
    auto comm = slurp("/proc/1/comm").value_or("");
    int sig = comm.rfind("systemd", 0) == 0 ? SIGRTMIN + 4 : SIGUSR2;
    svc_.reapers.add(svc_.io.provider->getTimer().afterDelay(50 * kj::MILLISECONDS).then([sig] { ::kill(1, sig); }));
    return kj::READY_NOW;
  }

  kj::Promise<void> configure(ConfigureContext c) override {
    auto p = c.getParams();
    auto f = c.getResults().initFailure();
    const std::string& file = svc_.opts.settings_file;
    if (file.empty()) {
      fail(f, e_unavailable, "configure: this guest booted with its settings; it is not waiting for any");
      return kj::READY_NOW;
    }
    std::string settings = p.getSettings();
    if (settings.size() > 4096 || settings.find_first_of(std::string("\n\0", 2)) != std::string::npos) {
      fail(f, e_bad_request, "configure: settings must be one line of at most 4096 bytes");
      return kj::READY_NOW;
    }
    auto entropy = p.getEntropy();
    if (entropy.size() > 512) {
      fail(f, e_bad_request, "configure: at most 512 bytes of entropy");
      return kj::READY_NOW;
    }
    const std::string configured = "configure: this guest was configured already (" + file + " exists)";
    if (::access(file.c_str(), F_OK) == 0) { // checked first, so a second call leaves the clock alone
      fail(f, e_already_exists, configured);
      return kj::READY_NOW;
    }
    if (p.getRealtimeNs() > 0) {
      timespec ts{static_cast<time_t>(p.getRealtimeNs() / 1000000000),
                  static_cast<long>(p.getRealtimeNs() % 1000000000)};
      if (::clock_settime(CLOCK_REALTIME, &ts) != 0) {
        fail(f, e_operation_failed, "configure: setting the clock: " + errno_str(errno));
        return kj::READY_NOW;
      }
    }
    if (entropy.size() > 0)
      if (int err = add_entropy(entropy.begin(), entropy.size())) {
        fail(f, e_operation_failed, "configure: adding entropy: " + errno_str(err));
        return kj::READY_NOW;
      }
    // Written aside and linked into place: init wakes on the name appearing, whole; link()
    // refuses a second configure that raced this one.
    std::string tmp = file + ".tmp" + std::to_string(::getpid());
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    int err = fd < 0 ? errno : 0;
    settings += '\n';
    if (fd >= 0 && ::write(fd, settings.data(), settings.size()) != static_cast<ssize_t>(settings.size()))
      err = errno ? errno : EIO;
    if (fd >= 0)
      ::close(fd);
    if (err == 0 && ::link(tmp.c_str(), file.c_str()) != 0)
      err = errno;
    ::unlink(tmp.c_str());
    if (err == EEXIST)
      fail(f, e_already_exists, configured);
    else if (err != 0)
      fail(f, e_operation_failed, "configure: writing " + file + ": " + errno_str(err));
    return kj::READY_NOW;
  }

private:
  /// Mixes `n` bytes into the kernel's pool, credited in full, then has the kernel reseed its
  /// generator from the pool at once (not at its next scheduled reseed). 0 or an errno.
  static int add_entropy(const kj::byte* data, std::size_t n) {
    int fd = ::open("/dev/urandom", O_WRONLY | O_CLOEXEC);
    if (fd < 0)
      return errno;
    std::vector<char> buf(sizeof(rand_pool_info) + n);
    auto* info = reinterpret_cast<rand_pool_info*>(buf.data());
    info->entropy_count = static_cast<int>(n * 8);
    info->buf_size = static_cast<int>(n);
    std::memcpy(info->buf, data, n);
    int err = 0;
    if (::ioctl(fd, RNDADDENTROPY, info) != 0 || ::ioctl(fd, RNDRESEEDCRNG) != 0)
      err = errno;
    ::close(fd);
    return err;
  }

  agent_service::impl& svc_;
};

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

} // namespace

agent_service::agent_service(kj::AsyncIoContext& io, agent_options opts) : impl_(kj::heap<impl>(io, opts)) {}
agent_service::~agent_service() = default;

agent_rpc::Agent::Client agent_service::client() { return kj::heap<agent_impl>(*impl_); }

} // namespace banger::guest
