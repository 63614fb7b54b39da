// See qemu.hpp. launch() forks: between fork and exec the child calls only async-signal-safe
// functions (the daemon is multithreaded), with everything it needs prepared beforehand. A
// CLOEXEC pipe reports an exec failure (stage + errno); its EOF means exec succeeded.
#include "vmm/qemu.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <functional>
#include <iterator>
#include <linux/close_range.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "common/process.hpp"
#include "common/subprocess.hpp"
#include "vmm/process_identity.hpp"
#include "vmm/qmp.hpp"

namespace banger::vmm {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

std::string qemu_opt_escape(std::string_view value) {
  std::string out;
  for (char c : value) {
    out += c;
    if (c == ',')
      out += ',';
  }
  return out;
}

std::vector<std::string> qemu_argv(const vm_spec& s, bool tcg, long host_khz, const fs::path& qemu) {
  auto esc = [](const fs::path& p) { return qemu_opt_escape(p.string()); };
  std::vector<std::string> a = {qemu.string(), "-M", "microvm"};
  if (tcg)
    a.insert(a.end(), {"-accel", "tcg,tb-size=128", "-cpu", "max"});
  else
    a.insert(a.end(), {"-accel", "kvm", "-cpu", "host"});
  a.insert(a.end(), {"-m", std::to_string(s.memory_mib), "-smp", std::to_string(s.vcpus), "-no-reboot", "-nodefaults",
                     "-no-user-config", "-display", "none"});
  if (!s.memory_file.empty())
    // share=off maps the file copy-on-write: a restored guest starts from the snapshot's pages,
    // read from the page cache as it touches them, and never writes the file.
    a.insert(a.end(), {"-object",
                       fmt::format("memory-backend-file,id=ram0,size={}M,mem-path={},share={}", s.memory_mib,
                                   esc(s.memory_file), s.memory_shared ? "on" : "off"),
                       "-machine", "memory-backend=ram0"});
  if (s.incoming)
    a.insert(a.end(), {"-incoming", "defer"});
  a.insert(a.end(),
           {"-chardev", "file,id=serial0,path=" + esc(s.console_log) + ",append=on", "-serial", "chardev:serial0"});
  a.insert(a.end(), {"-qmp", "unix:" + esc(s.dir / "qmp.sock") + ",server=on,wait=off"});
  a.insert(a.end(), {"-kernel", s.kernel.string()});
  if (!s.initrd.empty())
    a.insert(a.end(), {"-initrd", s.initrd.string()});
  a.insert(a.end(), {"-append", kernel_cmdline(s, tcg, host_khz)});
  // virtio-mmio devices are numbered in creation order: root is /dev/vda, work /dev/vdb.
  a.insert(a.end(), {"-drive", "id=root,file=" + esc(s.root_disk) + ",format=qcow2,if=none", "-device",
                     "virtio-blk-device,drive=root"});
  if (!s.work_disk.empty())
    a.insert(a.end(), {"-drive", "id=work,file=" + esc(s.work_disk) + ",format=raw,if=none", "-device",
                       "virtio-blk-device,drive=work"});
  if (!s.tap.empty())
    a.insert(a.end(), {"-netdev", "tap,id=n0,ifname=" + s.tap + ",script=no,downscript=no", "-device",
                       "virtio-net-device,netdev=n0,mac=" + (s.mac.empty() ? derive_mac(s.name) : s.mac)});
  // Two ports (0 is reserved for a console; the agent's is 1), not QEMU's default 31: the guest
  // sets up a pair of virtqueues per port when virtio_console probes, ~20 ms of a TCG boot.
  a.insert(a.end(), {"-device", "virtio-serial-device,max_ports=2", "-chardev",
                     "socket,path=" + esc(s.dir / "agent.sock") + ",server=on,wait=off,id=ch0", "-device",
                     "virtserialport,chardev=ch0,name=org.banger.agent.0"});
  return a;
}

std::string file_tail(const fs::path& path, std::size_t max_bytes) {
  unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd)
    return {};
  off_t size = ::lseek(fd.get(), 0, SEEK_END);
  if (size < 0)
    return {};
  off_t from = size > static_cast<off_t>(max_bytes) ? size - static_cast<off_t>(max_bytes) : 0;
  std::string out(static_cast<std::size_t>(size - from), '\0');
  ssize_t n = ::pread(fd.get(), out.data(), out.size(), from);
  out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  auto first = out.find_first_not_of(" \t\r\n");
  auto last = out.find_last_not_of(" \t\r\n");
  return first == std::string::npos ? std::string() : out.substr(first, last - first + 1);
}

namespace {

/// What the child reports through the pipe when a step before exec fails.
struct child_failure {
  int stage; ///< index into child_stages
  int err;   ///< errno
};
constexpr const char* child_stages[] = {"setsid", "open /dev/null", "open the stderr file", "dup2", "chdir", "exec"};

/// In the forked child: async-signal-safe calls only. Never returns.
[[noreturn]] void child_exec(int report_fd, const char* binary, char* const* argv, const char* stderr_path,
                             const char* cwd) {
  auto fail = [report_fd](int stage) {
    child_failure f{stage, errno};
    [[maybe_unused]] auto n = ::write(report_fd, &f, sizeof f);
    ::_exit(127);
  };
  // Its own session: no controlling terminal, not in the daemon's process group, so neither a
  // terminal's signals nor a daemon restart reach it.
  if (::setsid() < 0)
    fail(0);
  // The daemon's threads may block or handle signals; QEMU starts from the defaults.
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig)
    if (sig != SIGKILL && sig != SIGSTOP)
      ::sigaction(sig, &dfl, nullptr); // EINVAL for the few reserved numbers: harmless
  int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (in < 0)
    fail(1);
  int out = ::open(stderr_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (out < 0)
    fail(2);
  if (::dup2(in, STDIN_FILENO) < 0 || ::dup2(out, STDOUT_FILENO) < 0 || ::dup2(out, STDERR_FILENO) < 0)
    fail(3);
  // No inherited descriptor survives exec: QEMU must never hold the daemon's sockets, journal
  // or lock file. report_fd is already CLOEXEC and stays usable until exec.
  if (::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
    long max = ::sysconf(_SC_OPEN_MAX);
    for (int fd = 3; fd < (max > 0 && max < 65536 ? max : 65536); ++fd)
      if (fd != report_fd)
        ::close(fd);
  }
  if (::chdir(cwd) != 0)
    fail(4);
  ::execv(binary, argv);
  fail(5);
  ::_exit(127); // unreachable: fail() exits
}

/// SIGKILLs a launch that failed (its whole session: a wrapper script's children too) and reaps it.
void kill_and_reap(int pid) {
  ::kill(-pid, SIGKILL);
  ::kill(pid, SIGKILL);
  while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

std::string describe_status(int status) {
  if (WIFEXITED(status))
    return fmt::format("exited with status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return fmt::format("was killed by signal {}", WTERMSIG(status));
  return "stopped";
}

std::string stderr_context(const fs::path& file) {
  auto tail = file_tail(file);
  return tail.empty() ? fmt::format(" (nothing on {})", file.string())
                      : fmt::format("; {} ends with:\n{}", file.string(), tail);
}

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec) || fs::is_block_file(p, ec);
}

class qemu_driver final : public driver {
public:
  explicit qemu_driver(qemu_options opts) : opts_(std::move(opts)) {}

  std::string_view name() const override { return "qemu"; }

  expected<vmm_process> launch(const vm_spec& s) override {
    if (auto v = validate(s); !v)
      return std::move(v).err();
    fs::path binary = opts_.binary;
    if (binary.empty()) {
      auto found = find_program("qemu-system-x86_64");
      if (!found)
        return make_error(errc::unavailable, fmt::format("VM {}: qemu-system-x86_64 not found in PATH; install "
                                                         "Debian's qemu-system-x86 package",
                                                         s.name));
      binary = *found;
    }
    if (::access(binary.c_str(), X_OK) != 0)
      return make_error(errc::unavailable,
                        fmt::format("VM {}: QEMU binary {}: {}", s.name, binary.string(), errno_text(errno)));
    std::error_code ec;
    if (!fs::is_directory(s.dir, ec))
      return make_error(errc::not_found, fmt::format("VM {}: runtime dir {} does not exist", s.name, s.dir.string()));
    for (auto [what, p] : {std::pair{"kernel", &s.kernel}, std::pair{"initrd", &s.initrd},
                           std::pair{"root disk", &s.root_disk}, std::pair{"work disk", &s.work_disk}})
      if (!p->empty() && !is_file(*p))
        return make_error(errc::not_found,
                          fmt::format("VM {}: {} {} does not exist or is not a file", s.name, what, p->string()));

    if (s.acceleration == accel::kvm && !kvm_usable())
      return make_error(errc::unavailable, fmt::format("VM {}: KVM asked for, but /dev/kvm cannot run ordinary "
                                                       "guests here (it does not open read-write, or the CPU has "
                                                       "no vmx/svm flag); use acceleration auto or tcg",
                                                       s.name));
    const bool tcg = uses_tcg(s);

    vmm_process p;
    p.qmp_socket = s.dir / "qmp.sock";
    p.agent_socket = s.dir / "agent.sock";
    // Defense in depth: the caller owns the dir, but a VMM still serving it would lose its
    // sockets to the new one.
    if (auto busy = qmp_client::connect(p.qmp_socket, clock_type::now() + 200ms);
        busy || busy.err().code != errc::unavailable)
      return make_error(errc::conflict, fmt::format("VM {}: a VMM already listens on {}; stop it first", s.name,
                                                    p.qmp_socket.string()));
    fs::remove(p.qmp_socket, ec);
    fs::remove(p.agent_socket, ec);

    auto argv = qemu_argv(s, tcg, tcg ? host_tsc_khz() : 0, binary);
    std::vector<char*> cargv;
    for (auto& a : argv)
      cargv.push_back(a.data());
    cargv.push_back(nullptr);
    auto stderr_file = s.dir / "qemu.stderr";

    int report[2];
    if (::pipe2(report, O_CLOEXEC) != 0)
      return make_error(errc::operation_failed, fmt::format("VM {}: pipe2: {}", s.name, errno_text(errno)));
    unique_fd report_r(report[0]), report_w(report[1]);
    pid_t pid = ::fork();
    if (pid < 0)
      return make_error(errc::operation_failed, fmt::format("VM {}: fork: {}", s.name, errno_text(errno)));
    if (pid == 0)
      child_exec(report_w.get(), binary.c_str(), cargv.data(), stderr_file.c_str(), s.dir.c_str());
    report_w.reset();
    child_failure f{};
    ssize_t n;
    while ((n = ::read(report_r.get(), &f, sizeof f)) < 0 && errno == EINTR) {
    }
    if (n > 0) {
      kill_and_reap(pid);
      auto stage = f.stage >= 0 && f.stage < static_cast<int>(std::size(child_stages)) ? child_stages[f.stage] : "?";
      return make_error(errc::operation_failed, fmt::format("VM {}: starting {}: {} failed: {}", s.name,
                                                            binary.string(), stage, errno_text(f.err)));
    }
    p.pid = pid;

    auto started = clock_type::now();
    auto deadline = started + opts_.launch_timeout;
    error last = make_error(errc::unavailable, fmt::format("{} never appeared", p.qmp_socket.string()));
    for (;;) {
      int status = 0;
      pid_t w = ::waitpid(pid, &status, WNOHANG);
      if (w < 0 && errno == ECHILD && !process_alive(pid)) {
        // SIGCHLD ignored by the embedding process: the kernel reaped it, its status is lost.
        ::kill(-pid, SIGKILL);
        return make_error(errc::operation_failed, fmt::format("VM {}: QEMU exited before its QMP socket answered{}",
                                                              s.name, stderr_context(stderr_file)));
      }
      if (w == pid) {
        ::kill(-pid, SIGKILL); // anything it left in its session
        return make_error(errc::operation_failed, fmt::format("VM {}: QEMU {} before its QMP socket answered{}", s.name,
                                                              describe_status(status), stderr_context(stderr_file)));
      }
      if (clock_type::now() >= deadline) {
        kill_and_reap(pid);
        return make_error(errc::operation_failed,
                          fmt::format("VM {}: QEMU (pid {}) did not answer on {} within {} ms, so it was killed ({}){}",
                                      s.name, pid, p.qmp_socket.string(), opts_.launch_timeout.count(), last.message,
                                      stderr_context(stderr_file)));
      }
      auto c = qmp_client::connect(p.qmp_socket, deadline);
      if (c) {
        auto st = c->execute("query-status", deadline);
        if (st)
          break;
        last = std::move(st).err();
      } else {
        last = std::move(c).err();
      }
      std::this_thread::sleep_for(10ms);
    }

    auto stat = read_proc_stat(pid);
    auto hash = cmdline_sha256(pid);
    if (!stat || !hash || stat->state == 'Z') {
      kill_and_reap(pid);
      return make_error(errc::operation_failed, fmt::format("VM {}: QEMU (pid {}) exited right after answering QMP{}",
                                                            s.name, pid, stderr_context(stderr_file)));
    }
    p.start_time = stat->start_time;
    p.cmdline_sha256 = *hash;
    return p;
  }

  bool matches(const vmm_process& p) const override {
    auto st = read_proc_stat(p.pid);
    if (!st || st->state == 'Z' || st->state == 'X' || st->start_time != p.start_time)
      return false;
    auto hash = cmdline_sha256(p.pid);
    return hash && *hash == p.cmdline_sha256;
  }

  expected<std::string> status(const vmm_process& p) override {
    auto r = call(p, "query-status");
    if (!r)
      return std::move(r).err();
    auto j = nlohmann::json::parse(*r, nullptr, false);
    if (!j.is_object() || !j.contains("status") || !j["status"].is_string())
      return make_error(errc::operation_failed,
                        fmt::format("QEMU pid {}: query-status answered without a status: {}", p.pid, *r));
    return j["status"].get<std::string>();
  }

  expected<void> powerdown(const vmm_process& p) override {
    auto r = call(p, "system_powerdown");
    if (!r)
      return std::move(r).err();
    return {};
  }

  expected<void> pause(const vmm_process& p) override { return run_state(p, "stop", "paused"); }

  expected<void> resume(const vmm_process& p) override { return run_state(p, "cont", "running"); }

  expected<void> quit(const vmm_process& p) override {
    if (!matches(p))
      return make_error(errc::not_running, fmt::format("QEMU pid {} is no longer running", p.pid));
    auto r = call(p, "quit");
    // QEMU may exit before its answer reaches us: a hang-up after sending quit is success.
    if (!r && r.err().code != errc::not_running)
      return std::move(r).err();
    return {};
  }

  bool wait_exit(const vmm_process& p, std::chrono::milliseconds limit) override {
    auto deadline = clock_type::now() + limit;
    // A pidfd polls readable the moment the process exits (child or not), so the checks below
    // run then instead of on a 10 ms tick; without one (an old kernel) they poll.
    unique_fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, p.pid, 0)));
    for (;;) {
      auto st = read_proc_stat(p.pid);
      if (!st || st->start_time != p.start_time)
        return true; // gone (reaped by us or by its parent), or the pid is reused
      // Still our VMM, running or a zombie. Reap it if it is our child: that pid only, never -1,
      // since other code in this process waits for its own children.
      int status = 0;
      pid_t w = ::waitpid(p.pid, &status, WNOHANG);
      if (w == p.pid)
        return true;
      if (w < 0 && errno == ECHILD && (st->state == 'Z' || st->state == 'X'))
        return true; // another process's child (we were restarted) that exited
      auto now = clock_type::now();
      if (now >= deadline)
        return false;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
      if (pidfd) {
        pollfd pfd{pidfd.get(), POLLIN, 0};
        ::poll(&pfd, 1, static_cast<int>(std::min<std::int64_t>(left.count() + 1, 1000)));
      } else {
        std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(left, 10ms));
      }
    }
  }

  std::string guest_shape(const vm_spec& s) const override {
    vm_spec t = s;
    t.name = "template";
    t.dir = "/dir";
    t.console_log = "/console";
    t.root_disk = "/root";
    if (!t.work_disk.empty())
      t.work_disk = "/work";
    if (!t.tap.empty())
      t.tap = "tap";
    t.mac = "52:54:00:00:00:00";
    t.ip_cidr.clear();
    t.gateway.clear();
    t.memory_file = "/ram";
    t.memory_shared = true;
    t.await_settings = true;
    t.incoming = false;
    const bool tcg = uses_tcg(s);
    auto argv = qemu_argv(t, tcg, tcg ? host_tsc_khz() : 0, opts_.binary.empty() ? "qemu-system-x86_64" : opts_.binary);
    return fmt::format("{}", fmt::join(argv, "\n"));
  }

  expected<void> save(const vmm_process& p, const fs::path& state) override {
    auto uri = exec_uri("cat > ", state);
    if (!uri)
      return std::move(uri).err();
    auto m = migration_steps(p, "saving",
                             {{"stop", ""},
                              {"migrate-set-capabilities", ignore_shared_on},
                              {"migrate", nlohmann::json{{"uri", *uri}}.dump()}});
    if (!m)
      return std::move(m).err();
    // Without RAM the state is small (tens of KiB): done in milliseconds.
    auto st = wait_status(*m, "query-migrate", "saving", p,
                          [](const std::string& s) { return s == "completed" || s == "failed" || s == "cancelled"; });
    if (!st)
      return std::move(st).err();
    if (st->first != "completed")
      return make_error(errc::operation_failed, fmt::format("saving QEMU pid {} to {}: migration {} ({})", p.pid,
                                                            state.string(), st->first, st->second));
    return {};
  }

  expected<void> restore(const vmm_process& p, const fs::path& state) override {
    auto uri = exec_uri("exec cat ", state);
    if (!uri)
      return std::move(uri).err();
    auto m = migration_steps(
      p, "restoring",
      {{"migrate-set-capabilities", ignore_shared_on}, {"migrate-incoming", nlohmann::json{{"uri", *uri}}.dump()}});
    if (!m)
      return std::move(m).err();
    // The state was saved paused, so the guest stays paused once it is loaded: resume it then.
    auto st = wait_status(*m, "query-status", "restoring", p, [](const std::string& s) { return s != "inmigrate"; });
    if (!st)
      return std::move(st).err();
    if (st->first != "paused" && st->first != "running")
      return make_error(errc::operation_failed, fmt::format("restoring QEMU pid {} from {}: the VM is {} (see its "
                                                            "qemu.stderr)",
                                                            p.pid, state.string(), st->first));
    if (auto r = m->client.execute("cont", m->deadline); !r)
      return make_error(r.err().code, fmt::format("resuming QEMU pid {}: {}", p.pid, r.err().message));
    return {};
  }

  expected<void> kill(const vmm_process& p, int signo) override {
    if (!matches(p))
      return make_error(errc::not_running, fmt::format("QEMU pid {} is no longer running", p.pid));
    if (::kill(p.pid, signo) != 0)
      return make_error(errc::operation_failed, fmt::format("kill({}, {}): {}", p.pid, signo, errno_text(errno)));
    return {};
  }

private:
  /// Whether `s` runs under TCG: asked for, or auto on a host where KVM cannot run it.
  static bool uses_tcg(const vm_spec& s) {
    return s.acceleration == accel::tcg || (s.acceleration == accel::auto_ && !kvm_usable());
  }

  /// RAM in a shared memory_file is left out of the stream (QEMU's x-ignore-shared).
  static constexpr const char* ignore_shared_on = R"({"capabilities":[{"capability":"x-ignore-shared","state":true}]})";

  /// QEMU's "exec:" migration URI running `prefix` + the quoted path through /bin/sh. Paths
  /// are banger's own; one with a quote or a newline is refused rather than escaped.
  static expected<std::string> exec_uri(std::string_view prefix, const fs::path& file) {
    if (file.string().find_first_of("'\n") != std::string::npos || !file.is_absolute())
      return make_error(errc::bad_request, fmt::format("snapshot state path {} must be absolute, without a quote "
                                                       "or a newline",
                                                       file.string()));
    return fmt::format("exec:{}'{}'", prefix, file.string());
  }

  /// A QMP session on one VMM, bounded by one qmp_timeout from its start.
  struct qmp_session {
    qmp_client client;
    clock_type::time_point deadline;
  };

  /// Connects to p, unless it is no longer that VMM (errc::not_running).
  expected<qmp_session> session(const vmm_process& p) {
    if (!matches(p))
      return make_error(errc::not_running, fmt::format("QEMU pid {} is no longer running", p.pid));
    auto deadline = clock_type::now() + opts_.qmp_timeout;
    auto c = qmp_client::connect(p.qmp_socket, deadline);
    if (!c)
      return std::move(c).err();
    return qmp_session{std::move(*c), deadline};
  }

  /// A session on p that has run `steps` (command, arguments JSON) in order; `what` leads the error.
  expected<qmp_session> migration_steps(const vmm_process& p, std::string_view what,
                                        std::initializer_list<std::pair<std::string_view, std::string>> steps) {
    auto m = session(p);
    if (!m)
      return m;
    for (const auto& [cmd, args] : steps)
      if (auto r = m->client.execute(cmd, m->deadline, args); !r)
        return make_error(r.err().code, fmt::format("{} QEMU pid {}: {}: {}", what, p.pid, cmd, r.err().message));
    return m;
  }

  /// Runs `query` until its "status" satisfies `settled` (errc::operation_failed at the
  /// deadline): that status and the answer's "error-desc" (or the whole answer).
  expected<std::pair<std::string, std::string>> wait_status(qmp_session& m, std::string_view query,
                                                            std::string_view what, const vmm_process& p,
                                                            const std::function<bool(const std::string&)>& settled) {
    for (;;) {
      auto r = m.client.execute(query, m.deadline);
      if (!r)
        return make_error(r.err().code, fmt::format("{} QEMU pid {}: {}", what, p.pid, r.err().message));
      auto j = nlohmann::json::parse(*r, nullptr, false);
      std::string status = j.is_object() ? j.value("status", "") : "";
      if (!status.empty() && settled(status))
        return std::make_pair(status, j.value("error-desc", *r));
      if (clock_type::now() >= m.deadline)
        return make_error(errc::operation_failed, fmt::format("{} QEMU pid {}: still {} after {} ms", what, p.pid,
                                                              status.empty() ? *r : status, opts_.qmp_timeout.count()));
      std::this_thread::sleep_for(1ms);
    }
  }

  /// One QMP command on a fresh connection, within opts_.qmp_timeout.
  /// `command` (stop or cont), then query-status must say `want`: QEMU accepts both at once, so
  /// the status is what tells that the guest is where it was asked to be.
  expected<void> run_state(const vmm_process& p, std::string_view command, std::string_view want) {
    if (!matches(p))
      return make_error(errc::not_running, fmt::format("QEMU pid {} is no longer running", p.pid));
    if (auto r = call(p, command); !r)
      return std::move(r).err();
    auto st = status(p);
    if (!st)
      return std::move(st).err();
    if (*st != want)
      return make_error(errc::operation_failed,
                        fmt::format("QEMU pid {}: after {} the guest is {}, not {}", p.pid, command, *st, want));
    return {};
  }

  expected<std::string> call(const vmm_process& p, std::string_view command) {
    auto m = session(p);
    if (!m)
      return std::move(m).err();
    return m->client.execute(command, m->deadline);
  }

  qemu_options opts_;
};

} // namespace

std::unique_ptr<driver> make_qemu_driver(fs::path qemu_binary) {
  qemu_options o;
  o.binary = std::move(qemu_binary);
  return make_qemu_driver(std::move(o));
}

std::unique_ptr<driver> make_qemu_driver(qemu_options opts) { return std::make_unique<qemu_driver>(std::move(opts)); }

} // namespace banger::vmm
