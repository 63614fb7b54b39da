// The journal's writer (journal.hpp): append and append_batch, group-committed.
//
// Appends (group commit): an appender queues a `pending` under `mu`. If no leader is active it
// becomes the leader, takes every queued request, and — outside `mu` — checks expected
// versions against the per-stream version cache (plus the tentative versions of earlier
// requests in the same batch), assigns seqs and writes one WriteBatch with sync=true. Then,
// under `mu`, it publishes the new versions and `last_seq`, completes every request, wakes
// everyone, calls the commit listener and gives up leadership. A failed write completes the
// batch with errors and publishes nothing.
//
// Threads: any thread appends. Whichever appender finds no leader active commits the whole queue
// on its own thread and calls the commit listener there; the others wait on `turn_cv`. The
// state this shares with reads and subscriptions, and its invariants: journal_impl.hpp.
#include "journal/journal_impl.hpp"

#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <exception>

namespace banger::journal {

namespace {

using detail::check_stream_id;
using detail::pending;
using detail::put_be64;
using detail::stream_key;

} // namespace

std::vector<expected<append_result>> journal::impl::append_all(std::vector<append_request> reqs) {
  if (reqs.empty())
    return {};
  if (read_only) {
    std::vector<expected<append_result>> out;
    for (std::size_t i = 0; i < reqs.size(); ++i)
      out.emplace_back(read_only_error("append"));
    return out;
  }
  pending me;
  me.reqs = std::move(reqs);
  std::unique_lock lk(mu);
  queue.push_back(&me);
  while (!me.done) {
    if (leader_active) {
      turn_cv.wait(lk);
      continue;
    }
    // No leader: nobody has taken `me`, so it is in the batch this thread now commits.
    leader_active = true;
    std::vector<pending*> batch(queue.begin(), queue.end());
    queue.clear();
    lk.unlock();
    lead(std::move(batch));
    lk.lock();
    leader_active = false;
    if (!queue.empty())
      turn_cv.notify_all(); // a waiting appender becomes the next leader
  }
  return std::move(me.results);
}

void journal::impl::lead(std::vector<pending*> batch) {
  const std::int64_t now = opts.clock();
  const std::uint64_t first = last_seq.load(std::memory_order_relaxed) + 1;
  std::uint64_t next = first;
  // Stream versions as this batch leaves them, including versions loaded from disk.
  std::unordered_map<std::string, std::uint64_t> tentative;
  rocksdb::WriteBatch wb;
  char seq_buf[8];
  bool abandoned = false;

  auto current_version = [&](const std::string& stream) -> expected<std::uint64_t> {
    if (auto it = tentative.find(stream); it != tentative.end())
      return it->second;
    if (auto it = versions.find(stream); it != versions.end())
      return it->second;
    auto v = db_stream_version(stream, UINT64_MAX); // the leader is the only writer: no bound needed
    if (v)
      tentative.emplace(stream, *v);
    return v;
  };

  auto stage = [&](append_request& req) -> expected<append_result> {
    std::string op = req.events.empty() ? std::string() : req.events.front().op_id;
    auto fail = [&](errc code, std::string msg) { return error{code, std::move(msg), op}; };
    if (auto bad = check_stream_id(req.stream))
      return fail(bad->code, bad->message);
    if (req.events.empty())
      return fail(errc::bad_request,
                  fmt::format("journal: append to stream \"{}\" has no events; send at least one", req.stream));
    for (std::size_t i = 0; i < req.events.size(); ++i)
      if (std::holds_alternative<unknown_event>(req.events[i].body))
        return fail(errc::bad_request, fmt::format("journal: event {} of an append to stream \"{}\" has no known kind; "
                                                   "unknown events are only ever read, never written",
                                                   i, req.stream));
    if (!req.wall_times_ns.empty() && req.wall_times_ns.size() != req.events.size())
      return fail(errc::bad_request, fmt::format("journal: append to stream \"{}\" has {} wall times for {} events; "
                                                 "give one per event, or none",
                                                 req.stream, req.wall_times_ns.size(), req.events.size()));
    auto cur = current_version(req.stream);
    if (!cur)
      return fail(cur.err().code, cur.err().message);
    if (req.expected_version != any_version && req.expected_version != *cur)
      return fail(errc::conflict, fmt::format("journal: stream \"{}\" is at version {}, expected {}; read the "
                                              "stream again and retry",
                                              req.stream, *cur, req.expected_version));
    append_result r;
    r.first_seq = next;
    std::uint64_t version = *cur;
    stored_event se;
    se.stream = req.stream;
    for (std::size_t i = 0; i < req.events.size(); ++i) {
      auto& ev = req.events[i];
      se.version = ++version;
      se.wall_time_ns = req.wall_times_ns.empty() ? now : req.wall_times_ns[i];
      r.wall_times_ns.push_back(se.wall_time_ns);
      se.op_id = ev.op_id; // kept in the request: a failed write reports it
      se.body = std::move(ev.body);
      put_be64(seq_buf, next);
      wb.Put(events, rocksdb::Slice(seq_buf, 8), encode(se));
      wb.Put(streams_cf, stream_key(req.stream, version), rocksdb::Slice(seq_buf, 8));
      ++next;
    }
    r.last_seq = next - 1;
    r.stream_version = version;
    tentative[req.stream] = version;
    return r;
  };

  for (auto* p : batch) {
    p->results.reserve(p->reqs.size());
    for (auto& req : p->reqs) {
      // Nothing here should throw (short of running out of memory), but an exception escaping
      // the leader would strand every appender waiting on it. Fail the request instead; it may
      // have left part of its events in `wb`, so the whole batch is abandoned below.
      try {
        p->results.push_back(stage(req));
      } catch (const std::exception& ex) {
        p->results.push_back(
          error{errc::internal,
                fmt::format("journal: staging an append to stream \"{}\" threw: {}", req.stream, ex.what()),
                {}});
        abandoned = true;
      } catch (...) {
        p->results.push_back(error{errc::internal,
                                   fmt::format("journal: staging an append to stream \"{}\" threw a non-standard "
                                               "exception",
                                               req.stream),
                                   {}});
        abandoned = true;
      }
    }
  }

  bool wrote = next != first;
  if (abandoned) { // a request may have left part of its events in `wb`: write nothing
    for (auto* p : batch)
      for (std::size_t i = 0; i < p->results.size(); ++i)
        if (p->results[i])
          p->results[i] = error{errc::internal,
                                "journal: another request in the same batch failed to stage; nothing was "
                                "recorded, retry",
                                p->reqs[i].events.front().op_id};
    wrote = false;
    tentative.clear();
  }
  if (wrote) {
    rocksdb::WriteOptions w;
    w.sync = true;
    auto s = db->Write(w, &wb);
    if (!s.ok()) {
      auto err = db_error(fmt::format("writing seqs {}..{}", first, next - 1), s);
      err.message += " (nothing in this batch was recorded)";
      for (auto* p : batch)
        for (std::size_t i = 0; i < p->results.size(); ++i)
          if (p->results[i])
            p->results[i] = error{err.code, err.message, p->reqs[i].events.front().op_id};
      wrote = false;
      tentative.clear();
    }
  }

  {
    std::lock_guard lk(mu);
    for (auto& [stream, version] : tentative)
      versions[stream] = version;
    if (wrote)
      last_seq.store(next - 1, std::memory_order_release);
    for (auto* p : batch)
      p->done = true;
  }
  turn_cv.notify_all();
  if (!wrote)
    return;
  commit_cv.notify_all();
  std::shared_ptr<const std::function<void(std::uint64_t)>> fn;
  {
    std::lock_guard lk(listener_mu);
    fn = listener;
  }
  if (fn && *fn)
    (*fn)(next - 1);
}

expected<append_result> journal::append(append_request req) {
  std::vector<append_request> one;
  one.push_back(std::move(req));
  return std::move(impl_->append_all(std::move(one)).front());
}

std::vector<expected<append_result>> journal::append_batch(std::vector<append_request> reqs) {
  return impl_->append_all(std::move(reqs));
}

} // namespace banger::journal
