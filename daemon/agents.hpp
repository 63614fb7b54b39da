// The daemon's connections to guest agents: one Cap'n Proto connection per running VM through
// its virtio-serial socket (QEMU's chardev accepts one client at a time, so every exec, file and
// stop request of a VM shares it). Lives on the KJ thread; access() wraps it for VM workers on
// other threads (they block on a cross-thread call).
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include <kj/async-io.h>

#include "actors/vm/host.hpp"
#include "common/error.hpp"
#include "schema/agent.capnp.h"

namespace banger::daemon {

/// An agent answer's Failure as an error (none when the call succeeded).
template <class Res>
expected<void> failure_of(Res&& res) {
  if (auto f = res.getFailure(); f.getCode() != 0)
    return make_error(errc_from_number(f.getCode()), f.getMessage().cStr());
  return {};
}

class agent_pool {
public:
  explicit agent_pool(kj::AsyncIoContext& io);
  ~agent_pool();

  /// KJ thread. The agent of `vm`, connecting through `socket` when there is no connection (a new
  /// connection is returned once the agent answered on it, within new_connection_limit).
  kj::Promise<expected<agent_rpc::Agent::Client>> get(const std::string& vm, const std::filesystem::path& socket);
  /// KJ thread. Until the agent answers a ping, reconnecting after errors, or `limit` passes.
  kj::Promise<expected<void>> wait_ready(const std::string& vm, const std::filesystem::path& socket,
                                         std::chrono::milliseconds limit);
  /// KJ thread. Drops the connection (the VMM is going away).
  void forget(const std::string& vm);

  /// For VM workers (any thread but the KJ one). The functions stay safe to call after the
  /// pool is gone (they answer unavailable).
  actors::agent_access access();

  struct handle;
  /// KJ thread. Keeps `p` running until it ends or the pool goes.
  void add_task(kj::Promise<void> p);
  kj::Timer& timer() { return io_.provider->getTimer(); }

  /// KJ thread. Workspace landings in progress (agents.cpp agent_landing), kept here so their
  /// capabilities live and die on the KJ thread: a number for `l`, the landing of a number
  /// (nullptr when gone), and its end (the guest removes an uncommitted staging tree).
  std::uint64_t keep_landing(agent_rpc::WorkspaceLanding::Client l);
  agent_rpc::WorkspaceLanding::Client* landing(std::uint64_t id);
  void drop_landing(std::uint64_t id) { landings_.erase(id); }

private:
  kj::AsyncIoContext& io_;
  static constexpr std::chrono::seconds new_connection_limit{15};
  /// The cached connection, or a new one (not yet known to answer).
  kj::Promise<expected<agent_rpc::Agent::Client>> connection_of(const std::string& vm,
                                                                const std::filesystem::path& socket);
  kj::Promise<expected<void>> attempt_ready(const std::string& vm, const std::filesystem::path& socket,
                                            std::chrono::steady_clock::time_point deadline, std::string last);
  struct connection;
  std::shared_ptr<handle> handle_;
  std::map<std::string, kj::Own<connection>> conns_;
  std::map<std::uint64_t, agent_rpc::WorkspaceLanding::Client> landings_;
  std::uint64_t next_landing_ = 0;
  kj::Own<kj::TaskSet> tasks_;
  struct error_handler;
  kj::Own<error_handler> errors_;
};

} // namespace banger::daemon
