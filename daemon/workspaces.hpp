// The workspace RPC (vmWorkspacePrepare of schema/banger.capnp; docs/workspaces.md): the CLI
// streams a checkout it read into a WorkspaceSink; the sink queues each record for the VM's
// worker, which lands what has come in the work disk or through the agent
// (actors/vm/pipeline.hpp run_prepare_workspace). A streaming call resolves at once while less
// than 8 MiB waits and is held back beyond that, so the stream's flow control reaches from the
// landing back to the CLI and the daemon holds at most that much. Runs on the KJ thread; the
// queue is the one thing both threads touch.
#pragma once

#include <string>

#include "daemon/server.hpp"
#include "schema/banger.capnp.h"

namespace banger::daemon {

kj::Promise<void> vm_workspace_prepare(
  daemon_context& ctx, const std::string& op,
  capnp::CallContext<rpc::Daemon::VmWorkspacePrepareParams, rpc::Daemon::VmWorkspacePrepareResults> c);

} // namespace banger::daemon
