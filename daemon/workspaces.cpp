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

struct record {
  record_body body;
  kj::Own<kj::CrossThreadPromiseFulfiller<void>> taken; ///< the streaming call waits on it
};

/// The records between the KJ thread (push, end) and the VM's worker (pump).
class feed_queue final : public actors::workspace_feed {
public:
  /// Queues a record; resolves once the worker has taken it, rejects with why it was not.
  kj::Promise<void> push(record_body body) {
    auto paf = kj::newPromiseAndCrossThreadFulfiller<void>();
    {
      std::lock_guard lock(mu_);
      if (ended_)
        return failure(ended_why_);
      queue_.push_back({std::move(body), kj::mv(paf.fulfiller)});
    }
    cv_.notify_one();
    return kj::mv(paf.promise);
  }

  /// No record will be taken any more (the CLI is gone, or the command ended): the queued ones
  /// fail with `why`, and so does every later push.
  void end(const std::string& why) {
    std::deque<record> left;
    {
      std::lock_guard lock(mu_);
      if (ended_)
        return;
      ended_ = true;
      ended_why_ = why;
      left.swap(queue_);
    }
    cv_.notify_all();
    for (auto& r : left)
      r.taken->reject(failure(why));
  }

  expected<workspace::landed> pump(workspace::receiver& to) override {
    while (true) {
      record r;
      {
        std::unique_lock lock(mu_);
        bool woke = cv_.wait_for(lock, idle_limit, [&] { return !queue_.empty() || ended_; });
        if (!woke || queue_.empty()) {
          std::string why = woke ? ended_why_ : "the CLI sent nothing for two minutes";
          lock.unlock();
          end(why);
          to.abort();
          return make_error(errc::unavailable, why);
        }
        r = std::move(queue_.front());
        queue_.pop_front();
      }
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
        r.taken->reject(failure(ok.err().message));
        to.abort();
        end(ok.err().message);
        return ok.err();
      }
      r.taken->fulfill();
      if (landed) {
        end("the workspace is complete");
        return std::move(*landed);
      }
    }
  }

private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<record> queue_;
  bool ended_ = false;
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
    auto e = c.getParams().getEntry();
    workspace::stream_entry out{e.getGit(),
                                bytes_of(e.getPath()),
                                e.getSymlink() ? workspace::entry_kind::symlink : workspace::entry_kind::file,
                                e.getMode(),
                                e.getSize(),
                                e.getMtime(),
                                bytes_of(e.getTarget())};
    return feed_->push(std::move(out));
  }

  kj::Promise<void> data(DataContext c) override { return feed_->push(bytes_of(c.getParams().getBytes())); }

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
