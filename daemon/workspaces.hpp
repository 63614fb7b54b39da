// The workspace RPC (vmWorkspacePrepare of schema/banger.capnp; docs/workspaces.md): the CLI
// streams a checkout it read into a WorkspaceSink; the sink queues each record for the VM's
// worker, which lands it in the work disk (actors/vm/pipeline.hpp run_prepare_workspace), and
// each streaming call resolves once the worker has taken its record, so the stream's flow
// control reaches from the guest's disk back to the CLI and the daemon holds at most the calls
// in flight. Runs on the KJ thread; the queue is the one thing both threads touch.
#pragma once

#include <string>

#include "daemon/server.hpp"
#include "schema/banger.capnp.h"

namespace banger::daemon {

kj::Promise<void> vm_workspace_prepare(
  daemon_context& ctx, const std::string& op,
  capnp::CallContext<rpc::Daemon::VmWorkspacePrepareParams, rpc::Daemon::VmWorkspacePrepareResults> c);

} // namespace banger::daemon
