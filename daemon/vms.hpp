// The VM RPCs (vmCreate ... vmSshTarget of schema/banger.capnp): the glue between the RPC edge
// and the vm actors. Runs on the KJ thread. Commands go through the registry to the VM's actor;
// creates, list, show and what exec and ssh check go through the catalog (actors/catalog.hpp:
// the projection of every VM, current to the last commit, and the cross-entity rules); exec
// talks to the guest agent through the daemon's agent pool, passing the caller's sinks through.
#pragma once

#include <string>

#include "daemon/server.hpp"
#include "schema/banger.capnp.h"

namespace banger::actors {
struct vm_state;
struct vm_request;
} // namespace banger::actors

namespace banger::daemon {

using DaemonRpc = rpc::Daemon;

/// Sends `rq` to the VM's actor (spawned on demand); its reply.
kj::Promise<expected<actors::vm_state>> vm_request_to(daemon_context& ctx, const std::string& name,
                                                      actors::vm_request rq);
/// The VM as `vm list` and `vm show` give it.
void fill_vm_info(rpc::VmInfo::Builder b, const daemon_context& ctx, const actors::vm_state& s);

kj::Promise<void> vm_create(daemon_context& ctx, const std::string& op,
                            capnp::CallContext<DaemonRpc::VmCreateParams, DaemonRpc::VmCreateResults> c);
kj::Promise<void> vm_command(daemon_context& ctx, const std::string& op,
                             capnp::CallContext<DaemonRpc::VmCommandParams, DaemonRpc::VmCommandResults> c);
kj::Promise<void> vm_list(daemon_context& ctx, const std::string& op,
                          capnp::CallContext<DaemonRpc::VmListParams, DaemonRpc::VmListResults> c);
kj::Promise<void> vm_show(daemon_context& ctx, const std::string& op,
                          capnp::CallContext<DaemonRpc::VmShowParams, DaemonRpc::VmShowResults> c);
kj::Promise<void> vm_exec(daemon_context& ctx, const std::string& op,
                          capnp::CallContext<DaemonRpc::VmExecParams, DaemonRpc::VmExecResults> c);
kj::Promise<void> vm_ssh_target(daemon_context& ctx, const std::string& op,
                                capnp::CallContext<DaemonRpc::VmSshTargetParams, DaemonRpc::VmSshTargetResults> c);
kj::Promise<void> vm_sync_files(daemon_context& ctx, const std::string& op,
                                capnp::CallContext<DaemonRpc::VmSyncFilesParams, DaemonRpc::VmSyncFilesResults> c);
kj::Promise<void> vm_ping(daemon_context& ctx, const std::string& op,
                          capnp::CallContext<DaemonRpc::VmPingParams, DaemonRpc::VmPingResults> c);
kj::Promise<void> vm_ports(daemon_context& ctx, const std::string& op,
                           capnp::CallContext<DaemonRpc::VmPortsParams, DaemonRpc::VmPortsResults> c);

} // namespace banger::daemon
