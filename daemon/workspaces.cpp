// See workspaces.hpp.
#include "daemon/workspaces.hpp"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <variant>

#include <fmt/core.h>
#include <kj/debug.h>

#include "actors/vm/vm_actor.hpp"
#include "daemon/artifacts.hpp"
#include "daemon/vms.hpp"
#include "workspace/pieces_capnp.hpp"

namespace banger::daemon {

namespace {

using namespace std::chrono_literals;
using actors::vm_state;

/// How long the worker waits for the CLI's next record before it gives the stream up.
constexpr auto idle_limit = std::chrono::minutes(2);

using record_body =
  std::variant<workspace::stream_begin, workspace::stream_entry, std::string, std::vector<workspace::index_record>>;

/// An exception whose description is `why` as it is (the CLI prints it).
kj::Exception failure(const std::string& why) {
  return kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__, kj::str(why.c_str()));
}

/// What may wait in the queue before the CLI's streaming calls are held back: a few of its
/// 1 MiB data records, so the worker never waits for the next one and the daemon never holds
/// more than this of a workspace.
constexpr std::size_t queue_limit = 8u << 20;

std::size_t size_of(const record_body& b) {
  if (const auto* d = std::get_if<std::string>(&b))
    return d->size() + 64;
  if (const auto* e = std::get_if<workspace::stream_entry>(&b))
    return e->path.size() + e->target.size() + 64;
  return 64;
}

/// The records between the KJ thread (push, end) and the VM's worker (pump). A streaming call
/// resolves at once while less than queue_limit waits, and otherwise once the worker has drained
/// half of it: one cross-thread wake-up per few MiB, not one per record (a 10,000-file
/// workspace is 20,000 records). An error ends the queue: the next call, or finish, says why.
class feed_queue final : public actors::workspace_feed {
public:
  kj::Promise<void> push(record_body body) {
    std::size_t size = size_of(body);
    bool wake = false;
    {
      std::lock_guard lock(mu_);
      if (ended_)
        return failure(ended_why_);
      queue_.push_back({std::move(body), size});
      queued_ += size;
      wake = worker_waiting_;
      if (queued_ > queue_limit) {
        auto paf = kj::newPromiseAndCrossThreadFulfiller<void>();
        held_.push_back(kj::mv(paf.fulfiller));
        if (wake)
          cv_.notify_one();
        return kj::mv(paf.promise);
      }
    }
    if (wake)
      cv_.notify_one();
    return kj::READY_NOW;
  }

  /// No record will be taken any more (the CLI is gone, or the command ended): the queued ones
  /// are dropped, held calls and every later push fail with `why`.
  void end(const std::string& why) {
    std::vector<kj::Own<kj::CrossThreadPromiseFulfiller<void>>> held;
    {
      std::lock_guard lock(mu_);
      if (ended_)
        return;
      ended_ = true;
      ended_why_ = why;
      queue_.clear();
      queued_ = 0;
      held.swap(held_);
    }
    cv_.notify_all();
    for (auto& h : held)
      h->reject(failure(why));
  }

  expected<workspace::landed> pump(workspace::receiver& to) override {
    std::deque<queued> batch;
    while (true) {
      {
        std::unique_lock lock(mu_);
        worker_waiting_ = true;
        bool woke = cv_.wait_for(lock, idle_limit, [&] { return !queue_.empty() || ended_; });
        worker_waiting_ = false;
        if (!woke || queue_.empty()) {
          std::string why = woke ? ended_why_ : "the CLI sent nothing for two minutes";
          lock.unlock();
          end(why);
          to.abort();
          return make_error(errc::unavailable, why);
        }
        batch.swap(queue_); // everything that came, at once
      }
      std::size_t taken = 0;
      for (auto& r : batch) {
        expected<void> ok;
        std::optional<workspace::landed> landed;
        std::visit(
          [&](auto& b) {
            using T = std::decay_t<decltype(b)>;
            if constexpr (std::is_same_v<T, workspace::stream_begin>)
              ok = to.begin(b);
            else if constexpr (std::is_same_v<T, workspace::stream_entry>)
              ok = to.entry(b);
            else if constexpr (std::is_same_v<T, std::string>)
              ok = to.data(b);
            else {
              auto l = to.finish(b);
              if (l)
                landed = std::move(*l);
              else
                ok = l.err();
            }
          },
          r.body);
        if (!ok) {
          to.abort();
          end(ok.err().message);
          return ok.err();
        }
        if (landed) {
          end("the workspace is complete");
          return std::move(*landed);
        }
        taken += r.size;
      }
      batch.clear();
      release(taken);
    }
  }

private:
  struct queued {
    record_body body;
    std::size_t size = 0;
  };

  /// `bytes` were landed: held calls resolve once half the limit is free again.
  void release(std::size_t bytes) {
    std::vector<kj::Own<kj::CrossThreadPromiseFulfiller<void>>> ready;
    {
      std::lock_guard lock(mu_);
      queued_ -= std::min(queued_, bytes);
      if (queued_ <= queue_limit / 2)
        ready.swap(held_);
    }
    for (auto& h : ready)
      h->fulfill();
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<queued> queue_;
  std::size_t queued_ = 0; ///< bytes queued or being landed in the worker's batch
  std::vector<kj::Own<kj::CrossThreadPromiseFulfiller<void>>> held_;
  bool ended_ = false, worker_waiting_ = false;
  std::string ended_why_;
};

std::string bytes_of(capnp::Data::Reader d) { return std::string(d.asChars().begin(), d.size()); }

class sink_impl final : public rpc::WorkspaceSink::Server {
public:
  sink_impl(daemon_context& ctx, std::string name, std::string op, std::shared_ptr<feed_queue> feed,
            kj::Promise<expected<vm_state>> done)
    : ctx_(ctx), name_(std::move(name)), op_(std::move(op)), feed_(std::move(feed)), done_(done.fork()) {}
  ~sink_impl() { feed_->end("the CLI closed the workspace stream before it was whole"); }

  kj::Promise<void> begin(BeginContext c) override {
    auto p = c.getParams();
    return feed_->push(workspace::stream_begin{p.getGuestPath(), p.getBytes(), p.getFiles()});
  }

  kj::Promise<void> entry(EntryContext c) override {
    return feed_->push(workspace::entry_of(c.getParams().getEntry()));
  }

  kj::Promise<void> data(DataContext c) override { return feed_->push(bytes_of(c.getParams().getBytes())); }

  kj::Promise<void> records(RecordsContext c) override {
    auto list = c.getParams().getRecords();
    auto pushed = kj::heapArrayBuilder<kj::Promise<void>>(list.size());
    for (auto r : list)
      pushed.add(r.isEntry() ? feed_->push(workspace::entry_of(r.getEntry())) : feed_->push(bytes_of(r.getData())));
    return kj::joinPromises(pushed.finish());
  }

  kj::Promise<void> finish(FinishContext c) override {
    std::vector<workspace::index_record> index;
    auto list = c.getParams().getIndex();
    index.reserve(list.size());
    for (auto r : list) {
      workspace::index_record x;
      x.path = bytes_of(r.getPath());
      x.mode = r.getMode();
      x.stage = r.getStage();
      x.worktree_matches = r.getWorktreeMatches();
      auto oid = r.getOid();
      if (oid.size() != x.oid.size()) {
        feed_->end("an index record's object id is not 20 bytes");
        break;
      }
      std::copy(oid.begin(), oid.end(), x.oid.begin());
      index.push_back(std::move(x));
    }
    // The landing's own error, if any, is the command's: finish answers with the command.
    return feed_->push(std::move(index))
      .then([] {}, [](kj::Exception&&) {})
      .then([this]() { return done_.addBranch(); })
      .then([this, c](expected<vm_state> r) mutable { outcome(c.getResults(), std::move(r)); });
  }

  kj::Promise<void> abort(AbortContext c) override {
    std::string why = c.getParams().getReason();
    feed_->end(why.empty() ? std::string("the CLI gave the stream up") : why);
    return done_.addBranch().then([this, c](expected<vm_state> r) mutable { outcome(c.getResults(), std::move(r)); });
  }

private:
  template <class Results>
  void outcome(Results res, expected<vm_state> r) {
    if (!r) {
      auto e = std::move(r).err();
      e.op_id = op_;
      ctx_.log.warn(op_, "vm {}: workspace: {}", name_, e.message);
      return set_error(res.initError(), e);
    }
    ctx_.log.info(op_, "vm {}: workspace at {}: {} files, {} bytes", name_, r->workspace.guest_path, r->workspace.files,
                  r->workspace.bytes);
    fill_vm_info(res.initInfo(), ctx_, *r);
  }

  daemon_context& ctx_;
  std::string name_, op_;
  std::shared_ptr<feed_queue> feed_;
  kj::ForkedPromise<expected<vm_state>> done_;
};

} // namespace

kj::Promise<void> vm_workspace_prepare(
  daemon_context& ctx, const std::string& op,
  capnp::CallContext<rpc::Daemon::VmWorkspacePrepareParams, rpc::Daemon::VmWorkspacePrepareResults> c) {
  auto p = c.getParams();
  std::string name = p.getName();
  auto fail = [&](error e) {
    e.op_id = op;
    set_error(c.getResults().initError(), e);
    return kj::READY_NOW;
  };
  if (auto ok = actors::validate_vm_name(name); !ok)
    return fail(ok.err());
  auto spec = p.getSpec();
  actors::vm_cmd::prepare_workspace cmd{spec.getHostPath(), spec.getGuestPath(), spec.getHead(), spec.getBranch(),
                                        spec.getIncludeUntracked()};
  ctx.log.info(op, "vm {}: workspace from {} to {}", name, cmd.host_path, cmd.guest_path);
  auto feed = std::make_shared<feed_queue>();
  actors::vm_request rq{cmd, op, {}, {feed}};
  auto done = vm_request_to(ctx, name, std::move(rq)).then([feed](expected<vm_state> r) {
    // A refusal (or the end of the work) ends the stream: the CLI's next call says why.
    feed->end(r ? std::string("the workspace is complete") : r.err().message);
    return r;
  });
  c.getResults().setSink(kj::heap<sink_impl>(ctx, name, op, feed, kj::mv(done)));
  return kj::READY_NOW;
}

} // namespace banger::daemon
