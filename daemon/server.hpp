// bangerd's RPC edge: the unix-socket listener, its accept loop (SO_PEERCRED check per
// connection), and the `Daemon` interface of schema/banger.capnp. Everything here runs on the
// one KJ event-loop thread of bangerd's main(); it reaches actors through bridge.hpp and the
// journal through its thread-safe API (reads are short and bounded, appends go to the writer).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <caf/fwd.hpp>
#include <kj/async-io.h>

#include "actors/vm/host.hpp"
#include "common/log.hpp"
#include "common/op_id.hpp"
#include "common/paths.hpp"
#include "common/process.hpp"

namespace banger::journal {
class journal;
}

namespace banger::daemon {

class agent_pool;

/// What the RPC handlers need, wired by main(). Outlives the server.
struct daemon_context {
  dirs paths;
  logger log;
  journal::journal* journal = nullptr;
  caf::actor_system* system = nullptr;
  caf::actor* registry = nullptr;
  caf::actor* catalog = nullptr; ///< VM reads and the rules that span entities (actors/catalog.hpp)
  caf::actor* writer = nullptr;
  unsigned owner_uid = 0;
  std::chrono::steady_clock::time_point started;
  /// Where kernels and images live, and the guest binaries injected into images.
  std::filesystem::path agent_bin;
  std::filesystem::path init_bin;
  /// VMs: where their files live, the network, banger's ssh key and known_hosts.
  actors::host_config host;
  std::filesystem::path ssh_key; ///< private key `vm ssh` uses (its .pub goes into every VM)
  agent_pool* agents = nullptr;  ///< KJ thread
  /// Called (on the KJ thread) when a `shutdown` RPC asks the daemon to stop.
  std::function<void(std::string op_id)> request_shutdown;
};

/// Creates the listening socket at `path`: a stale socket file is removed (the caller holds the
/// single-instance lock, so nothing else serves it), the socket is created with mode 0600.
expected<unique_fd> listen_unix(const std::filesystem::path& path);

class server {
public:
  server(daemon_context& ctx, kj::AsyncIoContext& io, unique_fd listen_fd);
  ~server();
  /// Runs the accept loop; resolves only on failure.
  kj::Promise<void> run();
  /// Ends every `events --follow` stream with `reason` and drops all connections.
  kj::Promise<void> stop(std::string reason);
  /// Wakes `events --follow` streams; callable from any thread (the journal's commit listener).
  void notify_commit();

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

} // namespace banger::daemon
