// banger-agent's entry point, agent_main (entry.hpp): serves schema/agent.capnp to the host.
//   banger-agent                       the virtio-serial port org.banger.agent.0 (QEMU guests)
//   banger-agent --port NAME           another virtio-serial port name
//   banger-agent --vsock PORT          AF_VSOCK, any CID (Firecracker guests; port 52 by default)
//   banger-agent --listen PATH         a unix socket (host-side tests; poweroff disabled)
// On the virtio-serial port the host connects and disconnects at will: the guest sees EOF, and
// the agent reopens the port to serve the next connection. Linked into the banger-agent binary
// (agent/main.cpp) and into banger-init, which forks it without an exec. Statically linked
// either way: it must run on any image's libc, or none.
#include "guest/agent/entry.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <string>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <capnp/rpc-twoparty.h>
#include <kj/async-unix.h>
#include <linux/vm_sockets.h>

#include "guest/agent/agent.hpp"
#include "guest/agent/sysinfo.hpp"

namespace {

using namespace banger::guest;

/// Lines carry the guest's uptime, like banger-init's, so a slow boot shows where its time went.
void say(const std::string& msg) {
  timespec ts{};
  ::clock_gettime(CLOCK_BOOTTIME, &ts);
  std::fprintf(stderr, "banger-agent: [%ld.%03ld] %s\n", static_cast<long>(ts.tv_sec), ts.tv_nsec / 1000000,
               msg.c_str());
}

struct connection {
  connection(kj::Own<kj::AsyncIoStream> s, capnp::Capability::Client bootstrap)
    : stream(kj::mv(s)), network(*stream, capnp::rpc::twoparty::Side::SERVER),
      rpc(capnp::makeRpcServer(network, kj::mv(bootstrap))) {}
  kj::Own<kj::AsyncIoStream> stream;
  capnp::TwoPartyVatNetwork network;
  capnp::RpcSystem<capnp::rpc::twoparty::VatId> rpc;
};

struct log_errors : kj::TaskSet::ErrorHandler {
  void taskFailed(kj::Exception&& e) override { say(std::string("connection ended: ") + e.getDescription().cStr()); }
};

/// /dev/virtio-ports/NAME, or the /dev/vportNpM whose sysfs name is NAME (no udev needed).
std::string find_port(const std::string& name) {
  std::string link = "/dev/virtio-ports/" + name;
  if (::access(link.c_str(), F_OK) == 0)
    return link;
  DIR* d = ::opendir("/sys/class/virtio-ports");
  if (d == nullptr)
    return {};
  std::string found;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.')
      continue;
    auto n = slurp(std::string("/sys/class/virtio-ports/") + e->d_name + "/name");
    if (n && n->substr(0, n->find('\n')) == name) {
      found = std::string("/dev/") + e->d_name;
      break;
    }
  }
  ::closedir(d);
  return found;
}

kj::Promise<void> accept_loop(kj::ConnectionReceiver& listener, agent_service& svc, kj::TaskSet& tasks) {
  return listener.accept().then([&](kj::Own<kj::AsyncIoStream>&& stream) {
    auto conn = kj::heap<connection>(kj::mv(stream), svc.client());
    auto& net = conn->network;
    tasks.add(net.onDisconnect().attach(kj::mv(conn)));
    return accept_loop(listener, svc, tasks);
  });
}

int serve_listener(kj::AsyncIoContext& io, agent_service& svc, int fd) {
  log_errors errors;
  kj::TaskSet tasks(errors);
  auto listener = io.lowLevelProvider->wrapListenSocketFd(fd, kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP);
  accept_loop(*listener, svc, tasks).wait(io.waitScope);
  return 0;
}

/// `gate`: the ready file commands wait for ("" when none), named on the "serving" line.
int serve_port(kj::AsyncIoContext& io, agent_service& svc, const std::string& name, const std::string& gate) {
  // The port signals SIGIO to its owner when the host connects (virtio_console forwards the
  // host's open/close to fasync owners): the wait below wakes on it, through a signalfd, and
  // polls every 100 ms only in case it never comes. A guest restored from a boot snapshot sits
  // in this wait when it resumes, so the host's connection is served at once.
  sigset_t sigio;
  sigemptyset(&sigio);
  sigaddset(&sigio, SIGIO);
  ::sigprocmask(SIG_BLOCK, &sigio, nullptr);
  kj::Maybe<kj::Own<kj::AsyncInputStream>> host_events;
  if (int sfd = ::signalfd(-1, &sigio, SFD_NONBLOCK | SFD_CLOEXEC); sfd >= 0)
    host_events = io.lowLevelProvider->wrapInputFd(sfd, kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP |
                                                          kj::LowLevelAsyncIoProvider::ALREADY_CLOEXEC);
  signalfd_siginfo event{};
  auto host_event_or = [&](kj::Duration limit) {
    auto timeout = io.provider->getTimer().afterDelay(limit).then([] { return size_t(0); });
    KJ_IF_MAYBE (in, host_events)
      return (*in)->tryRead(&event, sizeof event, sizeof event).exclusiveJoin(kj::mv(timeout));
    return timeout;
  };
  bool warned = false;
  for (;;) {
    std::string path = find_port(name);
    int fd = path.empty() ? -1 : ::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
      if (!warned)
        say("waiting for virtio-serial port " + name +
            (path.empty() ? "" : " (" + path + ": " + std::strerror(errno) + ")"));
      warned = true;
      io.provider->getTimer().afterDelay(200 * kj::MILLISECONDS).wait(io.waitScope);
      continue;
    }
    warned = false;
    if (::fcntl(fd, F_SETOWN, ::getpid()) == 0)
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_ASYNC);
    // Serve only once a host is connected: the port polls POLLHUP while none is. Reading or
    // writing then would end the session at once, and anything capnp writes on its way out
    // (an abort) would wait in the port for the next host, which would read it as its own
    // session's end.
    int hups = 0;
    for (;;) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 0) >= 0 && !(p.revents & POLLHUP))
        break;
      ++hups;
      host_event_or(100 * kj::MILLISECONDS).wait(io.waitScope);
    }
    say("serving on " + path + (hups ? " (waited for the host)" : "") +
        (gate.empty() ? "" : "; commands wait for " + gate));
    auto started = io.provider->getTimer().now();
    {
      auto stream = io.lowLevelProvider->wrapSocketFd(fd, kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP);
      connection conn(kj::mv(stream), svc.client());
      conn.network.onDisconnect().catch_([](kj::Exception&&) {}).wait(io.waitScope);
    }
    // No host connected reads as an immediate EOF: don't spin.
    if (io.provider->getTimer().now() - started < 200 * kj::MILLISECONDS)
      io.provider->getTimer().afterDelay(200 * kj::MILLISECONDS).wait(io.waitScope);
  }
}

// Binds under a temporary name and renames into place once listening, so the socket
// file appearing means connections are accepted (no window where connect() is refused).
int listen_unix(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string staging = path + ".new";
  if (fd < 0 || staging.size() >= sizeof addr.sun_path)
    return -1;
  std::memcpy(addr.sun_path, staging.c_str(), staging.size());
  ::unlink(staging.c_str());
  mode_t old = ::umask(0177);
  int rc = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::umask(old);
  if (rc != 0 || ::listen(fd, 16) != 0 || ::rename(staging.c_str(), path.c_str()) != 0) {
    ::unlink(staging.c_str());
    ::close(fd);
    return -1;
  }
  return fd;
}

int listen_vsock(unsigned port) {
  int fd = ::socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return -1;
  sockaddr_vm addr{};
  addr.svm_family = AF_VSOCK;
  addr.svm_cid = VMADDR_CID_ANY;
  addr.svm_port = port;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 16) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

int usage() {
  std::fprintf(stderr, "usage: banger-agent [--port NAME | --vsock PORT | --listen PATH] [--version]\n");
  return 2;
}

} // namespace

namespace banger::guest {

int agent_main(int argc, char** argv) {
  std::string port = "org.banger.agent.0", listen_path;
  long vsock_port = -1;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--version") {
      std::printf("banger-agent %s\n", BANGER_VERSION);
      return 0;
    } else if (a == "--port" && i + 1 < argc) {
      port = argv[++i];
    } else if (a == "--listen" && i + 1 < argc) {
      listen_path = argv[++i];
    } else if (a == "--vsock" && i + 1 < argc) {
      vsock_port = std::strtol(argv[++i], nullptr, 10);
      if (vsock_port <= 0 || vsock_port > 0xffffffffL)
        return usage();
    } else {
      return usage();
    }
  }
  std::signal(SIGPIPE, SIG_IGN);
  kj::UnixEventPort::captureChildExit();
  auto io = kj::setupAsyncIo();
  agent_options opts;
  opts.allow_poweroff = listen_path.empty();
  opts.allow_mounts = listen_path.empty();
  if (const char* ready = std::getenv("BANGER_READY_FILE"); ready && *ready)
    opts.ready_file = ready;
  if (const char* settings = std::getenv("BANGER_SETTINGS_FILE"); settings && *settings)
    opts.settings_file = settings;
  if (const char* home = std::getenv("BANGER_AGENT_HOME"); home && *home && !listen_path.empty())
    opts.home = home;
  agent_service svc(io, opts);
  try {
    if (!listen_path.empty()) {
      int fd = listen_unix(listen_path);
      if (fd < 0) {
        say("listen on " + listen_path + ": " + std::strerror(errno));
        return 1;
      }
      return serve_listener(io, svc, fd);
    }
    if (vsock_port > 0) {
      int fd = listen_vsock(static_cast<unsigned>(vsock_port));
      if (fd < 0) {
        say("listen on vsock port " + std::to_string(vsock_port) + ": " + std::strerror(errno));
        return 1;
      }
      return serve_listener(io, svc, fd);
    }
    return serve_port(io, svc, port, opts.ready_file);
  } catch (const kj::Exception& e) {
    say(std::string("fatal: ") + e.getDescription().cStr());
    return 1;
  }
}

} // namespace banger::guest
