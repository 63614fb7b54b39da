// Progress of a long operation, from actors to the client: an actor calls a progress_sink on a
// CAF thread; the sink only queues the update (coalescing byte counts within a stage) and wakes
// a pump on the KJ thread through a cross-thread fulfiller; the pump sends Progress.update with
// streaming flow control. CAF threads never block on the client.
#pragma once

#include <deque>
#include <memory>
#include <mutex>

#include <kj/async.h>

#include "actors/messages.hpp"
#include "schema/banger.capnp.h"

namespace banger::daemon {

/// Shared between the CAF-side sink and the KJ-side pump.
struct progress_queue {
  std::mutex mu;
  std::deque<actors::progress_update> updates;
  kj::Own<kj::CrossThreadPromiseFulfiller<void>> wake;

  void push(const actors::progress_update& u) {
    std::lock_guard lock(mu);
    if (!updates.empty() && updates.back().stage == u.stage)
      updates.back() = u; // coalesce byte counts within a stage
    else
      updates.push_back(u);
    if (wake) {
      wake->fulfill();
      wake = nullptr;
    }
  }
};

kj::Promise<void> pump_progress(std::shared_ptr<progress_queue> q, rpc::Progress::Client client);

/// A progress_sink feeding `client`, and the pump to run beside the operation (never resolves;
/// a client that stops listening does not end the operation).
std::pair<actors::progress_sink, kj::Promise<void>> progress_to(rpc::Progress::Client client);

} // namespace banger::daemon
