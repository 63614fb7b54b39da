// See client.hpp. The child gets its socketpair end as fd 0, every other inherited descriptor
// closed and an empty signal mask; the parent wraps its end in a private KJ event loop and a
// capnp::TwoPartyClient (plain stream, no fd passing). Calls wait on that loop with a timeout.
#include "helper/client.hpp"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <fcntl.h>
#include <optional>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

#include "common/process.hpp"
#include "common/subprocess.hpp"
#include "schema/helper.capnp.h"

namespace banger::helper {

namespace {

constexpr auto start_timeout = 20 * kj::SECONDS; // sudo may consult PAM or LDAP

/// waitpid with a deadline; the raw status once reaped (ECHILD counts as reaped, status 0 --
/// someone else's reaper got it), nothing when still running at the deadline.
std::optional<int> wait_exit(pid_t pid, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid)
      return status;
    if (r < 0 && errno != EINTR)
      return 0;
    if (std::chrono::steady_clock::now() >= deadline)
      return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

/// Why a helper that did not answer its first ping is gone, and what to do.
std::string explain_exit(std::optional<int> status, const launch_options& o, bool via_sudo) {
  std::string bin = o.helper_bin.string();
  if (!status)
    return "banger-helper could not start: it did not answer within 20 s (killed it)";
  if (WIFSIGNALED(*status))
    return "banger-helper could not start: killed by signal " + std::to_string(WTERMSIG(*status));
  int code = WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
  if (code == 3)
    return "banger-helper refused to start (exit 3): the state dir " + o.state_dir.string() + " or runtime dir " +
           o.runtime_dir.string() +
           " failed its checks (owned by the daemon's user, not group- or world-writable, no symlink on the "
           "path) or the caller is neither root nor their owner; its reason is on its stderr (the daemon log)";
  if (code == 127)
    return "banger-helper could not start: could not execute " + (via_sudo ? std::string("sudo") : bin);
  if (via_sudo && code == 1)
    return "banger-helper could not start: sudo needs a password (or does not allow " + bin +
           "); install the system service or run as root";
  return "banger-helper could not start: it exited with status " + std::to_string(code) + " before answering";
}

error from_failure(helper_rpc::Failure::Reader f, const std::string& op_id) {
  auto code = f.getCode();
  error e;
  e.code = code <= static_cast<std::uint8_t>(errc::internal) ? static_cast<errc>(code) : errc::internal;
  e.message = f.getMessage().cStr();
  e.op_id = op_id;
  return e;
}

} // namespace

struct client::impl {
  // Declaration order is destruction order reversed: the capability and the RPC system go
  // before the stream, the stream before the event loop.
  kj::AsyncIoContext io;
  kj::Own<kj::AsyncIoStream> stream;
  kj::Own<capnp::TwoPartyClient> rpc;
  helper_rpc::Helper::Client cap;
  pid_t pid;
  kj::Duration call_timeout;

  impl(kj::AsyncIoContext&& ctx, int fd, pid_t child, std::chrono::milliseconds timeout)
    : io(kj::mv(ctx)), stream(io.lowLevelProvider->wrapSocketFd(fd, kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP)),
      rpc(kj::heap<capnp::TwoPartyClient>(*stream)), cap(rpc->bootstrap().castAs<helper_rpc::Helper>()), pid(child),
      call_timeout(timeout.count() * kj::MILLISECONDS) {}

  ~impl() {
    cap = nullptr;
    rpc = nullptr;
    stream = nullptr; // closes our end: the helper sees EOF and exits
    if (pid <= 0)
      return;
    if (wait_exit(pid, std::chrono::seconds(5)))
      return;
    ::kill(pid, SIGKILL);
    (void)wait_exit(pid, std::chrono::seconds(2));
  }

  /// Sends a request and waits for its response; any exception (disconnect, timeout) is
  /// errc::unavailable.
  template <class P, class R>
  expected<capnp::Response<R>> call(capnp::Request<P, R>& req, const std::string& op_id) {
    req.setOpId(op_id);
    try {
      // The loop runs only inside calls, and its timer's "now" is the time it last ran: poll
      // first, or a call after an idle spell longer than the timeout would time out at once.
      io.waitScope.poll();
      return io.provider->getTimer().timeoutAfter(call_timeout, req.send()).wait(io.waitScope);
    } catch (const kj::Exception& e) {
      error err = make_error(errc::unavailable, std::string("banger-helper is not answering (") +
                                                  e.getDescription().cStr() + "); start a new helper");
      err.op_id = op_id;
      return err;
    }
  }

  template <class P, class R>
  expected<void> call_void(capnp::Request<P, R>& req, const std::string& op_id) {
    auto resp = call(req, op_id);
    if (!resp)
      return std::move(resp).err();
    auto f = resp->getFailure();
    if (f.getCode() != 0)
      return from_failure(f, op_id);
    return {};
  }
};

client::client(std::unique_ptr<impl> i) : impl_(std::move(i)) {}
client::client(client&&) noexcept = default;
client& client::operator=(client&&) noexcept = default;
client::~client() = default;

int client::pid() const { return impl_ ? impl_->pid : -1; }

expected<client> client::launch(const launch_options& o) {
  const std::string bin = o.helper_bin.string();
  if (bin.empty() || bin[0] != '/' || ::access(bin.c_str(), X_OK) != 0)
    return make_error(errc::unavailable, "banger-helper not found or not executable at \"" + bin +
                                           "\"; install banger (it ships banger-helper next to bangerd)");
  const bool via_sudo = ::geteuid() != 0 && o.use_sudo;
  std::vector<std::string> argv;
  if (via_sudo) {
    auto sudo = find_program("sudo");
    if (!sudo)
      return make_error(errc::unavailable,
                        "banger-helper could not start: sudo is not installed; install the system service or run as "
                        "root");
    argv = {sudo->string(), "-n", bin};
  } else {
    argv = {bin};
  }
  argv.insert(argv.end(), {"--state-dir", o.state_dir.string(), "--runtime-dir", o.runtime_dir.string()});
  std::vector<char*> cargv;
  for (auto& a : argv)
    cargv.push_back(a.data());
  cargv.push_back(nullptr);

  std::optional<kj::AsyncIoContext> io;
  try {
    io.emplace(kj::setupAsyncIo());
  } catch (const kj::Exception& e) {
    return make_error(errc::internal, std::string("banger-helper client: cannot set up an event loop on this thread "
                                                  "(one KJ event loop per thread): ") +
                                        e.getDescription().cStr());
  }

  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return make_error(errc::unavailable, "socketpair for banger-helper: " + errno_text(errno));
  unique_fd ours(sv[0]), theirs(sv[1]);
  pid_t pid = ::fork();
  if (pid < 0)
    return make_error(errc::unavailable, "fork for banger-helper: " + errno_text(errno));
  if (pid == 0) {
    // Async-signal-safe calls only: the caller may be multithreaded.
    int fd = theirs.get();
    if (fd == STDIN_FILENO)
      ::fcntl(fd, F_SETFD, 0);
    else if (::dup2(fd, STDIN_FILENO) < 0)
      ::_exit(127);
    ::close_range(3, ~0U, 0);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execv(cargv[0], cargv.data());
    ::_exit(127);
  }
  theirs.reset();
  auto im = std::make_unique<impl>(std::move(*io), ours.release(), pid, o.call_timeout);
  auto req = im->cap.pingRequest();
  req.setOpId("");
  try {
    auto resp = im->io.provider->getTimer().timeoutAfter(start_timeout, req.send()).wait(im->io.waitScope);
    (void)resp;
  } catch (const kj::Exception&) {
    im->cap = nullptr;
    im->rpc = nullptr;
    im->stream = nullptr;
    auto status = wait_exit(pid, std::chrono::seconds(5));
    if (!status) {
      ::kill(pid, SIGKILL);
      (void)wait_exit(pid, std::chrono::seconds(2));
    }
    std::string why = explain_exit(status, o, via_sudo);
    im->pid = -1; // reaped (or abandoned) above
    return make_error(errc::unavailable, why);
  }
  return client(std::move(im));
}

expected<std::string> client::ping(const std::string& op_id) {
  auto req = impl_->cap.pingRequest();
  auto resp = impl_->call(req, op_id);
  if (!resp)
    return std::move(resp).err();
  auto f = resp->getFailure();
  if (f.getCode() != 0)
    return from_failure(f, op_id);
  return std::string(resp->getVersion().cStr());
}

expected<void> client::ensure_bridge(const std::string& bridge, const std::string& cidr, const std::string& op_id) {
  auto req = impl_->cap.ensureBridgeRequest();
  req.setName(bridge);
  req.setCidr(cidr);
  return impl_->call_void(req, op_id);
}

expected<void> client::create_tap(const std::string& tap, const std::string& bridge, unsigned owner_uid,
                                  const std::string& op_id) {
  auto req = impl_->cap.createTapRequest();
  req.setName(tap);
  req.setBridge(bridge);
  req.setOwnerUid(owner_uid);
  return impl_->call_void(req, op_id);
}

expected<void> client::delete_tap(const std::string& tap, const std::string& op_id) {
  auto req = impl_->cap.deleteTapRequest();
  req.setName(tap);
  return impl_->call_void(req, op_id);
}

expected<void> client::ensure_nat(const std::string& bridge, const std::string& cidr, const std::string& op_id) {
  auto req = impl_->cap.ensureNatRequest();
  req.setBridge(bridge);
  req.setCidr(cidr);
  return impl_->call_void(req, op_id);
}

expected<void> client::clear_nat(const std::string& bridge, const std::string& cidr, const std::string& op_id) {
  auto req = impl_->cap.clearNatRequest();
  req.setBridge(bridge);
  req.setCidr(cidr);
  return impl_->call_void(req, op_id);
}

expected<void> client::signal_vmm(int pid, int signo, const std::string& op_id) {
  auto req = impl_->cap.signalVmmRequest();
  req.setPid(pid);
  req.setSignal(signo);
  return impl_->call_void(req, op_id);
}

} // namespace banger::helper
