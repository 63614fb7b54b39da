// The kernel and image RPCs (artifactBuild/List/Show/Remove of schema/banger.capnp): the glue
// between the RPC edge and the artifact actors. Runs on the KJ thread; builds go through the
// registry to the per-name actor; list and show fold the journal directly (it is the source of
// truth, and artifact actors append before they apply).
#pragma once

#include <string>

#include "daemon/server.hpp"
#include "schema/banger.capnp.h"

namespace banger::daemon {

/// Fills an RPC error from a domain error.
inline void set_error(rpc::Error::Builder b, const error& e) {
  b.setCode(static_cast<std::uint16_t>(e.code));
  b.setMessage(e.message);
  b.setOpId(e.op_id);
}

kj::Promise<void>
artifact_build(daemon_context& ctx, const std::string& op,
               capnp::CallContext<rpc::Daemon::ArtifactBuildParams, rpc::Daemon::ArtifactBuildResults> c);
void artifact_list(daemon_context& ctx, const std::string& op,
                   capnp::CallContext<rpc::Daemon::ArtifactListParams, rpc::Daemon::ArtifactListResults> c);
void artifact_show(daemon_context& ctx, const std::string& op,
                   capnp::CallContext<rpc::Daemon::ArtifactShowParams, rpc::Daemon::ArtifactShowResults> c);
kj::Promise<void>
artifact_remove(daemon_context& ctx, const std::string& op,
                capnp::CallContext<rpc::Daemon::ArtifactRemoveParams, rpc::Daemon::ArtifactRemoveResults> c);

kj::Promise<void>
image_cache_prune(daemon_context& ctx, const std::string& op,
                  capnp::CallContext<rpc::Daemon::ImageCachePruneParams, rpc::Daemon::ImageCachePruneResults> c);

kj::Promise<void>
kernel_export(daemon_context& ctx, const std::string& op,
              capnp::CallContext<rpc::Daemon::KernelExportParams, rpc::Daemon::KernelExportResults> c);

} // namespace banger::daemon
