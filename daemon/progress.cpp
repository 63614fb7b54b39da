// See progress.hpp.
#include "daemon/progress.hpp"

namespace banger::daemon {

kj::Promise<void> pump_progress(std::shared_ptr<progress_queue> q, rpc::Progress::Client client) {
  std::deque<actors::progress_update> batch;
  kj::Promise<void> woken = nullptr;
  {
    std::lock_guard lock(q->mu);
    batch.swap(q->updates);
    if (batch.empty()) {
      auto paf = kj::newPromiseAndCrossThreadFulfiller<void>();
      q->wake = kj::mv(paf.fulfiller);
      woken = kj::mv(paf.promise);
    }
  }
  if (batch.empty())
    return woken.then([q, client]() mutable { return pump_progress(q, client); });
  kj::Promise<void> sent = kj::READY_NOW;
  for (const auto& u : batch) {
    sent = sent.then([client, u]() mutable {
      auto req = client.updateRequest();
      req.setStage(u.stage);
      req.setDone(u.done);
      req.setTotal(u.total);
      return req.send();
    });
  }
  return sent.then([q, client]() mutable { return pump_progress(q, client); });
}

std::pair<actors::progress_sink, kj::Promise<void>> progress_to(rpc::Progress::Client client) {
  auto q = std::make_shared<progress_queue>();
  auto sink = std::make_shared<std::function<void(const actors::progress_update&)>>(
    [q](const actors::progress_update& u) { q->push(u); });
  auto loop =
    pump_progress(q, client).catch_([](kj::Exception&&) {}).then([]() -> kj::Promise<void> { return kj::NEVER_DONE; });
  return {sink, kj::mv(loop)};
}

} // namespace banger::daemon
