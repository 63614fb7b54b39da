// bangerd's RPC edge; see server.hpp. One KJ thread runs all of it. This file is the listener,
// the peer check and the `Daemon` interface's dispatch (each method enters, then hands off to
// vms.cpp, artifacts.cpp or the event streams, event_stream.cpp).
//
// Per connection: SO_PEERCRED is read once at accept; a peer whose uid is neither 0 nor the
// daemon's owner is still served, but every method answers `unauthorized` (checked at the
// entry of each method, not only at accept). The socket's 0600 mode is the first barrier;
// this is the second.
#include "daemon/server.hpp"

#include <cerrno>
#include <set>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <capnp/rpc-twoparty.h>
#include <kj/mutex.h>

#include "actors/image/artifact.hpp"
#include "actors/messages.hpp"
#include "daemon/artifacts.hpp"
#include "daemon/bridge.hpp"
#include "daemon/event_stream.hpp"
#include "daemon/vms.hpp"
#include "daemon/workspaces.hpp"
#include "journal/codec.hpp"
#include "journal/journal.hpp"
#include "schema/banger.capnp.h"

namespace banger::daemon {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

expected<unique_fd> listen_unix(const fs::path& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.native().size() >= sizeof addr.sun_path)
    return make_error(errc::bad_request, fmt::format("socket path {} is too long for a unix socket ({} bytes max); "
                                                     "set XDG_RUNTIME_DIR to a shorter directory",
                                                     path.string(), sizeof addr.sun_path - 1));
  std::memcpy(addr.sun_path, path.c_str(), path.native().size());
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode))
      return make_error(errc::already_exists,
                        fmt::format("{} exists and is not a socket; remove it and start again", path.string()));
    if (::unlink(path.c_str()) != 0)
      return make_error(errc::operation_failed,
                        fmt::format("unlink stale socket {}: {}", path.string(), errno_text(errno)));
  }
  unique_fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd)
    return make_error(errc::operation_failed, fmt::format("socket(AF_UNIX): {}", errno_text(errno)));
  // The umask makes the socket 0600 from the moment it exists; chmod below is belt and braces.
  mode_t old = ::umask(0177);
  int rc = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  int err = errno;
  ::umask(old);
  if (rc != 0)
    return make_error(errc::operation_failed, fmt::format("bind {}: {}", path.string(), errno_text(err)));
  if (::chmod(path.c_str(), 0600) != 0)
    return make_error(errc::operation_failed, fmt::format("chmod 0600 {}: {}", path.string(), errno_text(errno)));
  if (::listen(fd.get(), 64) != 0)
    return make_error(errc::operation_failed, fmt::format("listen {}: {}", path.string(), errno_text(errno)));
  return fd;
}

namespace {

struct peer_cred {
  bool known = false;
  pid_t pid = 0;
  uid_t uid = 0;
};

peer_cred peer_of(const kj::AsyncIoStream& stream) {
  peer_cred out;
  KJ_IF_MAYBE (fd, stream.getFd()) {
    struct ucred cred {};
    socklen_t len = sizeof cred;
    if (::getsockopt(*fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
      out.known = true;
      out.pid = cred.pid;
      out.uid = cred.uid;
    }
  }
  return out;
}

} // namespace

struct server::impl {
  daemon_context& ctx;
  kj::AsyncIoContext& io;
  kj::Own<kj::ConnectionReceiver> listener;
  op_id_source ops;
  event_streams events; ///< `events` streams; outlives the connections, whose handles it tracks

  struct error_handler : kj::TaskSet::ErrorHandler {
    logger* log;
    void taskFailed(kj::Exception&& e) override { log->warn("", "connection ended: {}", e.getDescription().cStr()); }
  } on_error;
  kj::TaskSet connections; // after on_error and events: destroyed before them

  impl(daemon_context& c, kj::AsyncIoContext& i, unique_fd fd)
    : ctx(c), io(i),
      listener(io.lowLevelProvider->wrapListenSocketFd(fd.release(), kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP |
                                                                       kj::LowLevelAsyncIoProvider::ALREADY_CLOEXEC |
                                                                       kj::LowLevelAsyncIoProvider::ALREADY_NONBLOCK)),
      events(c, i.provider->getTimer()), connections(on_error) {
    on_error.log = &ctx.log;
  }

  kj::Promise<void> accept_loop();
};

namespace {

class daemon_impl final : public rpc::Daemon::Server {
public:
  daemon_impl(server::impl& srv, peer_cred peer) : srv_(srv), ctx_(srv.ctx), peer_(peer) {}

  kj::Promise<void> ping(PingContext c) override {
    auto entered = enter("ping", c);
    if (!entered)
      return kj::READY_NOW;
    auto op = *entered;
    c.getResults().setOpId(op);
    return kj::READY_NOW;
  }

  kj::Promise<void> version(VersionContext c) override {
    if (!enter("version", c))
      return kj::READY_NOW;
    c.getResults().setVersion(BANGER_VERSION);
    c.getResults().setJournalSchema(journal::schema_version);
    return kj::READY_NOW;
  }

  kj::Promise<void> status(StatusContext c) override {
    auto entered = enter("status", c);
    if (!entered)
      return kj::READY_NOW;
    auto op = *entered;
    return ask<actors::entity_counts>(*ctx_.system, *ctx_.registry, 5000ms, actors::count_atom::value)
      .then([this, c, op](expected<actors::entity_counts> counts) mutable {
        auto res = c.getResults();
        if (!counts) {
          auto err = std::move(counts).err();
          err.op_id = op;
          ctx_.log.error(op, "status: {}", err.message);
          set_error(res.initError(), err);
          return;
        }
        auto s = res.initStatus();
        s.setVersion(BANGER_VERSION);
        s.setPid(::getpid());
        s.setUptimeMs(static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - ctx_.started)
            .count()));
        s.setJournalSeq(ctx_.journal->last_seq());
        auto list = s.initEntities(static_cast<unsigned>(counts->size()));
        unsigned i = 0;
        for (const auto& [kind, n] : *counts) {
          list[i].setKind(kind);
          list[i].setCount(n);
          ++i;
        }
        s.setStateDir(ctx_.paths.state.string());
        s.setRuntimeDir(ctx_.paths.runtime.string());
        s.setLogFile(ctx_.paths.log_file().string());
      });
  }

  kj::Promise<void> shutdown(ShutdownContext c) override {
    auto entered = enter("shutdown", c);
    if (!entered)
      return kj::READY_NOW;
    auto op = *entered;
    ctx_.log.info(op, "shutdown requested by pid {} uid {}", peer_.pid, peer_.uid);
    // Reply first; stop on a later turn so the answer reaches the caller. The caller hangs up
    // on the answer, which destroys this object: the delayed call holds the daemon's context,
    // which outlives every connection, not `this`.
    auto& timer = srv_.io.provider->getTimer();
    srv_.connections.add(
      timer.afterDelay(20 * kj::MILLISECONDS).then([ctx = &ctx_, op] { ctx->request_shutdown(op); }));
    return kj::READY_NOW;
  }

  kj::Promise<void> events(EventsContext c) override {
    auto entered = enter("events", c);
    if (!entered)
      return kj::READY_NOW;
    return srv_.events.serve(c, *entered);
  }

  kj::Promise<void> artifactBuild(ArtifactBuildContext c) override {
    auto entered = enter("artifactBuild", c);
    if (!entered)
      return kj::READY_NOW;
    return artifact_build(srv_.ctx, *entered, c);
  }

  kj::Promise<void> artifactList(ArtifactListContext c) override {
    auto entered = enter("artifactList", c);
    if (!entered)
      return kj::READY_NOW;
    artifact_list(ctx_, *entered, c);
    return kj::READY_NOW;
  }

  kj::Promise<void> artifactShow(ArtifactShowContext c) override {
    auto entered = enter("artifactShow", c);
    if (!entered)
      return kj::READY_NOW;
    artifact_show(ctx_, *entered, c);
    return kj::READY_NOW;
  }

  kj::Promise<void> artifactRemove(ArtifactRemoveContext c) override {
    auto entered = enter("artifactRemove", c);
    if (!entered)
      return kj::READY_NOW;
    return artifact_remove(ctx_, *entered, c);
  }

  kj::Promise<void> vmCreate(VmCreateContext c) override {
    auto entered = enter("vmCreate", c);
    return entered ? vm_create(ctx_, *entered, c) : kj::READY_NOW;
  }
  kj::Promise<void> vmList(VmListContext c) override {
    auto entered = enter("vmList", c);
    return entered ? vm_list(ctx_, *entered, c) : kj::READY_NOW;
  }
  kj::Promise<void> vmShow(VmShowContext c) override {
    auto entered = enter("vmShow", c);
    return entered ? vm_show(ctx_, *entered, c) : kj::READY_NOW;
  }
  kj::Promise<void> vmCommand(VmCommandContext c) override {
    auto entered = enter("vmCommand", c);
    return entered ? vm_command(ctx_, *entered, c) : kj::READY_NOW;
  }
  kj::Promise<void> vmExec(VmExecContext c) override {
    auto entered = enter("vmExec", c);
    return entered ? vm_exec(ctx_, *entered, c) : kj::READY_NOW;
  }
  kj::Promise<void> vmSshTarget(VmSshTargetContext c) override {
    auto entered = enter("vmSshTarget", c);
    return entered ? vm_ssh_target(ctx_, *entered, c) : kj::READY_NOW;
  }
  kj::Promise<void> vmSyncFiles(VmSyncFilesContext c) override {
    auto entered = enter("vmSyncFiles", c);
    return entered ? vm_sync_files(ctx_, *entered, c) : kj::READY_NOW;
  }

  kj::Promise<void> vmPing(VmPingContext c) override {
    auto entered = enter("vmPing", c);
    return entered ? vm_ping(ctx_, *entered, c) : kj::READY_NOW;
  }

  kj::Promise<void> vmPorts(VmPortsContext c) override {
    auto entered = enter("vmPorts", c);
    return entered ? vm_ports(ctx_, *entered, c) : kj::READY_NOW;
  }

  kj::Promise<void> vmWorkspacePrepare(VmWorkspacePrepareContext c) override {
    auto entered = enter("vmWorkspacePrepare", c);
    return entered ? vm_workspace_prepare(ctx_, *entered, c) : kj::READY_NOW;
  }

  kj::Promise<void> imageCachePrune(ImageCachePruneContext c) override {
    auto entered = enter("imageCachePrune", c);
    return entered ? image_cache_prune(ctx_, *entered, c) : kj::READY_NOW;
  }

  kj::Promise<void> kernelExport(KernelExportContext c) override {
    auto entered = enter("kernelExport", c);
    if (!entered)
      return kj::READY_NOW;
    return kernel_export(ctx_, *entered, c);
  }

private:
  /// Every method's entry: gives the request its op id, logs it, and checks the peer. Returns
  /// the op id, or nothing after answering `unauthorized`.
  template <class Context>
  std::optional<std::string> enter(const char* method, Context& c) {
    auto op = srv_.ops.next();
    ctx_.log.debug(op, "rpc {} from pid {} uid {}", method, peer_.pid, peer_.uid);
    if (auto e = refuse(op)) {
      set_error(c.getResults().initError(), *e);
      return std::nullopt;
    }
    return op;
  }

  /// The authorization check, made at the entry of every method.
  std::optional<error> refuse(const std::string& op) {
    if (peer_.known && (peer_.uid == 0 || peer_.uid == ctx_.owner_uid))
      return std::nullopt;
    ctx_.log.warn(op, "refused peer pid {} uid {}: not root and not the owner (uid {})", peer_.pid, peer_.uid,
                  ctx_.owner_uid);
    return error{errc::unauthorized,
                 fmt::format("uid {} may not use this bangerd (owned by uid {}); run banger as that user or root",
                             peer_.uid, ctx_.owner_uid),
                 op};
  }

  server::impl& srv_;
  daemon_context& ctx_;
  peer_cred peer_;
};

struct connection {
  connection(kj::Own<kj::AsyncIoStream> s, capnp::Capability::Client bootstrap)
    : stream(kj::mv(s)), network(*stream, capnp::rpc::twoparty::Side::SERVER),
      rpc(capnp::makeRpcServer(network, kj::mv(bootstrap))) {}
  kj::Own<kj::AsyncIoStream> stream;
  capnp::TwoPartyVatNetwork network;
  capnp::RpcSystem<capnp::rpc::twoparty::VatId> rpc;
};

} // namespace

kj::Promise<void> server::impl::accept_loop() {
  return listener->accept().then([this](kj::Own<kj::AsyncIoStream>&& stream) {
    auto peer = peer_of(*stream);
    if (!peer.known)
      ctx.log.warn("", "could not read SO_PEERCRED of a new connection; it will be refused");
    auto conn = kj::heap<connection>(kj::mv(stream), kj::heap<daemon_impl>(*this, peer));
    auto& net = conn->network;
    connections.add(net.onDisconnect().attach(kj::mv(conn)));
    return accept_loop();
  });
}

server::server(daemon_context& ctx, kj::AsyncIoContext& io, unique_fd listen_fd)
  : impl_(std::make_unique<impl>(ctx, io, std::move(listen_fd))) {}

server::~server() = default;

kj::Promise<void> server::run() { return impl_->accept_loop(); }

void server::notify_commit() { impl_->events.notify_commit(); }

kj::Promise<void> server::stop(std::string reason) {
  impl_->listener = nullptr;
  return impl_->events.stop(std::move(reason));
}

} // namespace banger::daemon
