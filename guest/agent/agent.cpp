// The Agent service; see agent.hpp. This file: the state every connection shares, with the wait
// for the ready file, and the Agent methods that start no process and move no file: ping, ports,
// stats, poweroff and configure. exec is in agent_exec.cpp, writeFile and readFile in
// agent_files.cpp; what they share is declared in agent_internal.hpp. Runs on the one KJ
// event-loop thread of banger-agent.
#include "guest/agent/agent.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <linux/random.h>
#include <string>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include <vector>

#include "guest/agent/agent_internal.hpp"
#include "guest/agent/sysinfo.hpp"

#ifndef BANGER_VERSION
#define BANGER_VERSION "dev"
#endif

namespace banger::guest {

bool agent_service::impl::ready_now() {
  if (!ready_seen && (opts.ready_file.empty() || ::access(opts.ready_file.c_str(), F_OK) == 0))
    ready_seen = true;
  return ready_seen;
}

kj::Promise<void> agent_service::impl::guest_ready() {
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

kj::Promise<void> agent_service::impl::appeared() {
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

kj::Promise<void> agent_service::impl::watch(kj::Own<kj::AsyncInputStream> in, kj::Array<kj::byte> buf) {
  if (ready_now()) // checked after the watch exists: a file made before it is not missed
    return kj::READY_NOW;
  auto read = in->tryRead(buf.begin(), 1, buf.size());
  return read.then([this, in = kj::mv(in), buf = kj::mv(buf)](size_t n) mutable -> kj::Promise<void> {
    if (n == 0)
      return poll_ready();
    return watch(kj::mv(in), kj::mv(buf));
  });
}

kj::Promise<void> agent_service::impl::poll_ready() {
  if (ready_now())
    return kj::READY_NOW;
  return io.provider->getTimer().afterDelay(10 * kj::MILLISECONDS).then([this] { return poll_ready(); });
}

void agent_service::impl::taskFailed(kj::Exception&& e) {
  std::fprintf(stderr, "banger-agent: task failed: %s\n", e.getDescription().cStr());
}

namespace detail {

kj::Promise<void> agent_impl::ping(PingContext c) {
  auto r = c.getResults();
  r.setVersion(BANGER_VERSION);
  r.setUptimeMs(uptime_ms());
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  r.setHostname(host);
  return kj::READY_NOW;
}

kj::Promise<void> agent_impl::ports(PortsContext c) {
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

kj::Promise<void> agent_impl::stats(StatsContext c) {
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

kj::Promise<void> agent_impl::poweroff(PoweroffContext c) {
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

kj::Promise<void> agent_impl::configure(ConfigureContext c) {
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
    timespec ts{static_cast<time_t>(p.getRealtimeNs() / 1000000000), static_cast<long>(p.getRealtimeNs() % 1000000000)};
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

int agent_impl::add_entropy(const kj::byte* data, std::size_t n) {
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

} // namespace detail

agent_service::agent_service(kj::AsyncIoContext& io, agent_options opts) : impl_(kj::heap<impl>(io, opts)) {}
agent_service::~agent_service() = default;

agent_rpc::Agent::Client agent_service::client() { return kj::heap<detail::agent_impl>(*impl_); }

} // namespace banger::guest
