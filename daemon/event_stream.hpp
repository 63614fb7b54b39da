// `banger events` on the daemon's side: the `events` RPC's catch-up and its live follow. Each
// stream is a pump that reads the journal from a sequence number and pushes batches to the
// client's sink one at a time (flow control), waking on the journal's commits; a followed
// stream is kept by the Handle its caller holds (dropping it ends the stream). KJ thread, except
// notify_commit (any thread: the journal's commit listener).
#pragma once

#include <memory>
#include <string>

#include <kj/async.h>

#include "daemon/server.hpp"
#include "schema/banger.capnp.h"

namespace banger::daemon {

class event_streams {
public:
  event_streams(daemon_context& ctx, kj::Timer& timer);
  ~event_streams();

  /// The `events` RPC (op id `op`, already authorised): delivers what is journaled up to now and
  /// returns; with `follow`, hands back a Handle that keeps the stream live.
  kj::Promise<void> serve(capnp::CallContext<rpc::Daemon::EventsParams, rpc::Daemon::EventsResults> c,
                          const std::string& op);
  /// Wakes streams waiting for new events; callable from any thread.
  void notify_commit();
  /// Ends every followed stream with `reason` once it delivered what is journaled now; resolves
  /// when all have ended, or after 2 s.
  kj::Promise<void> stop(std::string reason);

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

} // namespace banger::daemon
