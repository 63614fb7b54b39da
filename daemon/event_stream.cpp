// See event_stream.hpp.
#include "daemon/event_stream.hpp"

#include <set>

#include <kj/mutex.h>

#include "journal/codec.hpp"
#include "journal/journal.hpp"

namespace banger::daemon {

namespace {

/// Wakes KJ-side waiters when the journal commits. wait() must be called on the KJ thread;
/// wake() from any thread.
class commit_waker {
public:
  kj::Promise<void> wait() {
    auto paf = kj::newPromiseAndCrossThreadFulfiller<void>();
    waiters_.lockExclusive()->add(kj::mv(paf.fulfiller));
    return kj::mv(paf.promise);
  }
  void wake() {
    auto lock = waiters_.lockExclusive();
    for (auto& f : *lock)
      f->fulfill();
    lock->clear();
  }

private:
  kj::MutexGuarded<kj::Vector<kj::Own<kj::CrossThreadPromiseFulfiller<void>>>> waiters_;
};

struct event_filter {
  std::set<std::string> streams;
  std::set<std::string> kinds;
  bool empty() const { return streams.empty() && kinds.empty(); }
  bool matches(const journal::stored_event& e) const {
    if (!streams.empty() && !streams.count(e.stream))
      return false;
    return kinds.empty() || kinds.count(std::string(journal::kind_of(e.body)));
  }
};

} // namespace

/// One event stream to one sink: delivers events with seq >= next, one push at a time.
struct event_pump : kj::Refcounted {
  daemon_context& ctx;
  commit_waker& waker;
  event_filter filter;
  rpc::EventSink::Client sink;
  std::uint64_t next;
  std::string op;
  /// Set when the daemon stops: deliver up to here, then end the sink with end_reason.
  std::uint64_t stop_at = UINT64_MAX;
  std::string end_reason;

  event_pump(daemon_context& c, commit_waker& w, event_filter f, rpc::EventSink::Client s, std::uint64_t from,
             std::string op_id)
    : ctx(c), waker(w), filter(std::move(f)), sink(kj::mv(s)), next(from), op(std::move(op_id)) {}

  /// Delivers up to and including `until` (UINT64_MAX: forever, waiting for commits).
  kj::Promise<void> pump(std::uint64_t until) {
    until = std::min(until, stop_at);
    if (next > until)
      return kj::READY_NOW;
    // Register for the next commit before reading, so a commit between the read and the wait
    // is not missed.
    auto woken = waker.wait();
    auto raw = ctx.journal->read_raw(next, 256);
    if (!raw)
      return KJ_EXCEPTION(FAILED, raw.err().message);
    if (raw->empty()) {
      if (until != UINT64_MAX || stop_at != UINT64_MAX)
        return kj::READY_NOW;
      return woken.then([self = kj::addRef(*this), until]() mutable { return self->pump(until); });
    }
    std::vector<const journal::raw_event*> chosen;
    for (const auto& r : *raw) {
      if (r.seq > until)
        break;
      next = r.seq + 1;
      if (!filter.empty()) {
        auto e = journal::decode(r.seq, r.bytes);
        if (!e || !filter.matches(*e))
          continue;
      }
      chosen.push_back(&r);
    }
    if (chosen.empty())
      return kj::evalLater([self = kj::addRef(*this), until]() mutable { return self->pump(until); });
    auto req = sink.pushRequest();
    auto list = req.initEvents(static_cast<unsigned>(chosen.size()));
    for (unsigned i = 0; i < chosen.size(); ++i) {
      list[i].setSeq(chosen[i]->seq);
      list[i].setEvent(
        kj::arrayPtr(reinterpret_cast<const capnp::byte*>(chosen[i]->bytes.data()), chosen[i]->bytes.size()));
    }
    return req.send().then([self = kj::addRef(*this), until](auto&&) mutable { return self->pump(until); });
  }
};

class follow_handle;

struct event_streams::impl {
  impl(daemon_context& c, kj::Timer& t) : ctx(c), timer(t) {}
  daemon_context& ctx;
  kj::Timer& timer;
  commit_waker waker;
  std::set<follow_handle*> followers;
};

/// Server side of a `Handle` for a followed event stream: owns the live pump; dropping the
/// handle (or the connection) cancels it.
class follow_handle final : public rpc::Handle::Server {
public:
  follow_handle(event_streams::impl& srv, kj::Own<event_pump> pump);
  ~follow_handle();
  /// Delivers what is journaled up to `last_seq`, then ends the sink with `reason`.
  kj::Promise<void> finish(std::uint64_t last_seq, std::string reason) {
    pump_->stop_at = last_seq;
    pump_->end_reason = std::move(reason);
    return done_.addBranch();
  }

private:
  event_streams::impl& srv_;
  kj::Own<event_pump> pump_;
  kj::ForkedPromise<void> done_;
};

follow_handle::follow_handle(event_streams::impl& srv, kj::Own<event_pump> pump)
  : srv_(srv), pump_(kj::mv(pump)), done_(nullptr) {
  // The chain may outlive this handle (stop() holds branches of done_): it owns a reference to
  // the pump and captures nothing of `this`.
  done_ = pump_->pump(UINT64_MAX)
            .then([p = kj::addRef(*pump_)]() mutable {
              auto req = p->sink.endRequest();
              req.setReason(p->end_reason);
              return req.send().ignoreResult().attach(kj::mv(p));
            })
            .catch_([log = srv_.ctx.log, op = pump_->op](kj::Exception&& e) {
              log.info(op, "event stream ended: {}", e.getDescription().cStr());
            })
            .fork();
  srv_.followers.insert(this);
}

follow_handle::~follow_handle() { srv_.followers.erase(this); }

event_streams::event_streams(daemon_context& ctx, kj::Timer& timer) : impl_(std::make_unique<impl>(ctx, timer)) {}

event_streams::~event_streams() = default;

void event_streams::notify_commit() { impl_->waker.wake(); }

kj::Promise<void> event_streams::serve(capnp::CallContext<rpc::Daemon::EventsParams, rpc::Daemon::EventsResults> c,
                                       const std::string& op) {
  auto& ctx = impl_->ctx;
  auto p = c.getParams();
  event_filter filter;
  for (auto s : p.getFilter().getStreams())
    filter.streams.insert(s);
  for (auto k : p.getFilter().getKinds())
    filter.kinds.insert(k);
  std::uint64_t since = p.getSince();
  bool follow = p.getFollow();
  std::uint64_t until = ctx.journal->last_seq();
  ctx.log.info(op, "events since {} until {}{}", since, until, follow ? " then follow" : "");
  auto pump = kj::refcounted<event_pump>(ctx, impl_->waker, std::move(filter), p.getSink(), since + 1, op);
  auto& pump_ref = *pump;
  return pump_ref.pump(until).then([this, c, follow, pump = kj::mv(pump)]() mutable -> kj::Promise<void> {
    if (follow) {
      c.getResults().setHandle(kj::heap<follow_handle>(*impl_, kj::mv(pump)));
      return kj::READY_NOW;
    }
    return pump->sink.endRequest().send().ignoreResult();
  });
}

kj::Promise<void> event_streams::stop(std::string reason) {
  kj::Vector<kj::Promise<void>> ends;
  auto last = impl_->ctx.journal->last_seq();
  for (auto* f : impl_->followers)
    ends.add(f->finish(last, reason));
  impl_->waker.wake();
  return kj::joinPromises(ends.releaseAsArray()).exclusiveJoin(impl_->timer.afterDelay(2 * kj::SECONDS));
}

} // namespace banger::daemon
