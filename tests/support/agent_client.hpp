// Test support: a Cap'n Proto client of banger-agent over a unix socket (the host-side agent's
// --listen socket, or QEMU's virtio-serial socket), the ByteSink that collects a process's
// output, running one command to completion, and kj waits with a time limit. Test-thread only.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

#include "schema/agent.capnp.h"

namespace banger::test {

/// `promise` waited for at most `limit` (a kj exception on timeout). The loop's timer is
/// refreshed first: it keeps the time the loop last ran, which may be long ago.
template <class T>
T wait_for(kj::AsyncIoContext& io, kj::Promise<T>&& promise, std::chrono::milliseconds limit) {
  io.waitScope.poll();
  return io.provider->getTimer().timeoutAfter(limit.count() * kj::MILLISECONDS, kj::mv(promise)).wait(io.waitScope);
}
template <class T>
capnp::Response<T> wait_for(kj::AsyncIoContext& io, capnp::RemotePromise<T>&& promise,
                            std::chrono::milliseconds limit) {
  return wait_for(io, kj::Promise<capnp::Response<T>>(kj::mv(promise)), limit);
}

/// Collects what a process writes to one stream.
class collect_sink final : public agent_rpc::ByteSink::Server {
public:
  explicit collect_sink(std::string& out) : out_(out) {}
  kj::Promise<void> write(WriteContext c) override;
  kj::Promise<void> close(CloseContext) override { return kj::READY_NOW; }

private:
  std::string& out_;
};

/// One Agent.exec: the failure it answered with, or how the process ended and what it wrote.
struct exec_result {
  int failure_code = 0;
  std::string failure;
  bool signaled = false;
  int code = -1; ///< the exit code, or the signal when `signaled`
  std::string out, err;
};

/// One connection to an agent.
class agent_connection {
public:
  /// Connects to the agent serving on `socket`; a kj exception when it cannot.
  void open(kj::AsyncIoContext& io, const std::filesystem::path& socket);
  void close();

  agent_rpc::Agent::Client& agent() { return KJ_ASSERT_NONNULL(agent_); }

  /// Runs argv in `cwd` to completion: `stdin_data` is written and closed when not empty, `tty`
  /// asks for a terminal, `env` ("KEY=VALUE") is added to the agent's, `workspace` is the
  /// ExecSpec's. At most 60 s for the agent to start it, 300 s for it to finish.
  exec_result run(kj::AsyncIoContext& io, const std::vector<std::string>& argv, const std::string& stdin_data = {},
                  bool tty = false, const std::string& cwd = "/", const std::vector<std::string>& env = {},
                  const std::string& workspace = {});

private:
  kj::Own<kj::AsyncIoStream> stream_;
  kj::Own<capnp::TwoPartyClient> client_;
  kj::Maybe<agent_rpc::Agent::Client> agent_;
};

} // namespace banger::test
