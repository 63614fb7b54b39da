// The journal's subscriptions (journal.hpp): subscribe and the subscription handle, plus
// wait_beyond and the commit listener, the other ways to hear of a commit. A subscription reads
// like read_all, then waits on `commit_cv` for the leader's next publish.
//
// Threads: each subscription runs on a thread of its own, owned by its handle; cancel() or
// destroying the handle stops and joins it (detaches it when called from its own callback), and
// the journal's destructor stops and joins the ones left (journal.cpp). wait_beyond blocks its
// caller; the commit listener is called on the leader's thread (journal_writer.cpp). The state
// this shares with appends and reads, and its invariants: journal_impl.hpp.
#include "journal/journal_impl.hpp"

#include <algorithm>

namespace banger::journal {

namespace {

/// Events a subscription reads per round.
constexpr std::size_t subscription_chunk = 1024;

} // namespace

// ---------------------------------------------------------------------------------------------
// Hearing of commits

void journal::set_commit_listener(std::function<void(std::uint64_t last_seq)> fn) {
  auto p = std::make_shared<const std::function<void(std::uint64_t)>>(std::move(fn));
  std::lock_guard lk(impl_->listener_mu);
  impl_->listener = std::move(p);
}

bool journal::wait_beyond(std::uint64_t seq, std::chrono::milliseconds timeout) const {
  std::unique_lock lk(impl_->mu);
  impl_->commit_cv.wait_for(lk, timeout, [&] { return impl_->closing || impl_->bound() > seq; });
  return impl_->bound() > seq;
}

// ---------------------------------------------------------------------------------------------
// Subscriptions

void journal::impl::run_subscription(const std::shared_ptr<subscription::state>& s, impl& j,
                                     const std::function<bool(const stored_event&)>& fn) {
  std::uint64_t cursor = s->position.load();
  read_result r;
  while (!s->stop.load()) {
    r.events.clear();
    auto status = j.read_into(cursor, subscription_chunk, r);
    for (auto& e : r.events) {
      if (s->stop.load()) {
        s->position = e.seq;
        return;
      }
      if (!fn(e)) {
        s->position = e.seq + 1;
        s->stop = true;
        return;
      }
      s->position = e.seq + 1;
    }
    cursor = r.next_seq;
    s->position = cursor;
    if (!status) { // delivered everything before the failure; stop at the seq that failed
      std::lock_guard lk(s->failure_mu);
      s->failed = std::move(status).err();
      return;
    }
    if (cursor <= j.bound())
      continue;
    std::unique_lock lk(j.mu);
    j.commit_cv.wait(lk, [&] { return s->stop.load() || j.closing || j.bound() >= cursor; });
    if (j.closing)
      return;
  }
}

subscription journal::subscribe(std::uint64_t from_seq, std::function<bool(const stored_event&)> fn) {
  auto s = std::make_shared<subscription::state>();
  s->position = std::max<std::uint64_t>(from_seq, 1);
  s->owner = impl_.get();
  {
    std::lock_guard lk(impl_->subs_mu);
    impl_->subs.push_back(s);
  }
  std::lock_guard lk(s->join_mu);
  s->thread = std::thread([s, j = impl_.get(), fn = std::move(fn)] { impl::run_subscription(s, *j, fn); });
  return subscription(s);
}

subscription::subscription(std::shared_ptr<state> s) : s_(std::move(s)) {}
subscription::subscription(subscription&&) noexcept = default;

subscription& subscription::operator=(subscription&& other) noexcept {
  if (this != &other) {
    cancel();
    s_ = std::move(other.s_);
  }
  return *this;
}

subscription::~subscription() { cancel(); }

void subscription::cancel() {
  if (!s_)
    return;
  s_->stop = true;
  std::lock_guard lk(s_->join_mu);
  if (auto* j = s_->owner) {
    {
      std::lock_guard jl(j->mu); // the thread is either before its predicate check or waiting
    }
    j->commit_cv.notify_all();
    std::lock_guard sl(j->subs_mu);
    std::erase(j->subs, s_);
  }
  if (s_->thread.joinable()) {
    if (s_->thread.get_id() == std::this_thread::get_id())
      s_->thread.detach(); // cancelled from its own callback: it stops when the callback returns
    else
      s_->thread.join();
  }
  s_->owner = nullptr;
}

std::uint64_t subscription::position() const { return s_ ? s_->position.load() : 0; }

std::optional<error> subscription::failure() const {
  if (!s_)
    return std::nullopt;
  std::lock_guard lk(s_->failure_mu);
  return s_->failed;
}

} // namespace banger::journal
