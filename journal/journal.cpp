// The RocksDB event journal (journal.hpp draws the column families and keys).
//
// Appends (group commit): an appender queues a `pending` under `mu`. If no leader is active it
// becomes the leader, takes every queued request, and — outside `mu` — checks expected
// versions against the per-stream version cache (plus the tentative versions of earlier
// requests in the same batch), assigns seqs and writes one WriteBatch with sync=true. Then,
// under `mu`, it publishes the new versions and `last_seq`, completes every request, wakes
// everyone, calls the commit listener and gives up leadership. A failed write completes the
// batch with errors and publishes nothing.
//
// Invariants: only the leader changes `versions` and `last_seq`, and only under `mu`; only
// one leader exists at a time. Every seq <= `last_seq` is durable and readable; readers bound
// every scan by `last_seq`, so they never see a batch that is written but not yet published.
// In read-only mode `last_seq` is fixed at open (RocksDB's read-only view does not move).
//
// Threads: any thread calls any method. Each subscription runs on its own thread, reading
// like read_all and waiting on `commit_cv`; the journal's destructor stops and joins them.
#include "journal/journal.hpp"

#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <deque>
#include <fmt/format.h>
#include <mutex>
#include <thread>
#include <unordered_map>

namespace banger::journal {

namespace {

constexpr std::string_view cf_events = "events";
constexpr std::string_view cf_streams = "streams";
constexpr std::string_view cf_snapshots = "snapshots";
constexpr std::string_view cf_meta = "meta";
constexpr std::string_view meta_schema_version = "schema_version";

/// Scans longer than this many events read ahead and bypass the block cache (replays).
constexpr std::uint64_t long_scan = 4096;
/// Events a subscription reads per round.
constexpr std::size_t subscription_chunk = 1024;

void put_be64(char* out, std::uint64_t v) {
  for (int i = 7; i >= 0; --i, v >>= 8)
    out[i] = static_cast<char>(v & 0xff);
}

std::string be64(std::uint64_t v) {
  std::string s(8, '\0');
  put_be64(s.data(), v);
  return s;
}

std::uint64_t get_be64(const char* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

std::string be32(std::uint32_t v) {
  std::string s(4, '\0');
  for (int i = 3; i >= 0; --i, v >>= 8)
    s[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xff);
  return s;
}

std::uint32_t get_be32(const char* p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

/// `stream` + '\0': every key of the stream starts with it.
std::string stream_prefix(std::string_view stream) {
  std::string k(stream);
  k += '\0';
  return k;
}

/// Exclusive upper bound of a stream's keys (no stream id contains '\0', so nothing else
/// sorts between the prefix and this).
std::string stream_end(std::string_view stream) {
  std::string k(stream);
  k += '\x01';
  return k;
}

std::string stream_key(std::string_view stream, std::uint64_t version) {
  std::string k = stream_prefix(stream);
  k.resize(k.size() + 8);
  put_be64(k.data() + k.size() - 8, version);
  return k;
}

rocksdb::Slice slice(std::string_view s) { return rocksdb::Slice(s.data(), s.size()); }

std::int64_t realtime_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
    .count();
}

std::optional<error> check_stream_id(std::string_view stream) {
  if (stream.empty())
    return make_error(errc::bad_request, "journal: empty stream id; name the entity, e.g. \"vm/web-1\"");
  if (stream.find('\0') != std::string_view::npos)
    return make_error(errc::bad_request, "journal: stream id contains a NUL byte; stream ids are text");
  return std::nullopt;
}

/// One append_batch call waiting for a leader to commit it.
struct pending {
  std::vector<append_request> reqs;
  std::vector<expected<append_result>> results; ///< filled by the leader, read after `done`
  bool done = false;                            ///< guarded by journal::impl::mu
};

} // namespace

struct subscription::state {
  std::mutex join_mu;             ///< serialises joining and detaching from the journal
  std::thread thread;             ///< guarded by join_mu
  journal::impl* owner = nullptr; ///< guarded by join_mu; null once stopped or the journal is gone
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> position{1};
  mutable std::mutex failure_mu;
  std::optional<error> failed; ///< guarded by failure_mu
};

struct journal::impl {
  std::filesystem::path dir;
  options opts;
  bool read_only = false;
  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::ColumnFamilyHandle* events = nullptr;
  rocksdb::ColumnFamilyHandle* streams_cf = nullptr;
  rocksdb::ColumnFamilyHandle* snapshots = nullptr;
  rocksdb::ColumnFamilyHandle* meta = nullptr;

  mutable std::mutex mu;
  mutable std::condition_variable commit_cv; ///< last_seq moved, or closing
  std::condition_variable turn_cv;           ///< a pending completed, or leadership is free
  std::deque<pending*> queue;                ///< guarded by mu
  bool leader_active = false;                ///< guarded by mu
  bool closing = false;                      ///< guarded by mu
  std::atomic<std::uint64_t> last_seq{0};    ///< published; stored under mu by the leader
  /// Committed version of every stream touched since open. Written by the leader under mu;
  /// the leader reads it without mu (nobody else writes it), others read it under mu.
  std::unordered_map<std::string, std::uint64_t> versions;

  std::mutex listener_mu;
  std::shared_ptr<const std::function<void(std::uint64_t)>> listener; ///< guarded by listener_mu

  std::mutex subs_mu;
  std::vector<std::shared_ptr<subscription::state>> subs; ///< guarded by subs_mu

  ~impl();

  error db_error(std::string_view what, const rocksdb::Status& s) const {
    return make_error(errc::operation_failed, fmt::format("journal at {}: {} failed: {}; check the disk and the "
                                                          "directory's permissions, then retry",
                                                          dir.string(), what, s.ToString()));
  }
  error read_only_error(std::string_view what) const {
    return make_error(errc::bad_request, fmt::format("journal at {} is open read-only and cannot {}; only the "
                                                     "writer (bangerd) changes it",
                                                     dir.string(), what));
  }

  std::uint64_t bound() const { return last_seq.load(std::memory_order_acquire); }

  expected<void> open_db();
  expected<void> check_schema_version();
  expected<std::uint64_t> find_last_seq() const;

  std::vector<expected<append_result>> append_all(std::vector<append_request> reqs);
  void lead(std::vector<pending*> batch);
  expected<std::uint64_t> db_stream_version(std::string_view stream, std::uint64_t max_seq) const;

  template <class on_value>
  expected<std::uint64_t> scan(std::uint64_t start, std::size_t limit, on_value&& fn) const;
  /// Reads into `out` and stops at the first failure, leaving what preceded it in `out` and
  /// `out.next_seq` at the seq that failed.
  expected<void> read_into(std::uint64_t from_seq, std::size_t limit, read_result& out) const;
  expected<read_result> read_all(std::uint64_t from_seq, std::size_t limit) const;
  expected<std::vector<stored_event>> read_stream(std::string_view stream, std::uint64_t from_version,
                                                  std::size_t limit) const;
  expected<std::uint64_t> stream_version(std::string_view stream) const;
  expected<std::vector<std::string>> list_streams() const;

  static void run_subscription(const std::shared_ptr<subscription::state>& s, impl& j,
                               const std::function<bool(const stored_event&)>& fn);
};

// ---------------------------------------------------------------------------------------------
// Opening and closing

expected<void> journal::impl::open_db() {
  const std::string path = dir.string();
  rocksdb::Options o;
  o.create_if_missing = !read_only;
  o.create_missing_column_families = !read_only;
  o.keep_log_file_num = 4;

  std::error_code ec;
  bool exists = std::filesystem::exists(dir / "CURRENT", ec);
  if (read_only && !exists)
    return make_error(errc::not_found, fmt::format("no journal at {}: nothing has been recorded there yet; check the "
                                                   "state directory, or start bangerd once to create it",
                                                   path));
  if (!read_only) {
    std::filesystem::create_directories(dir, ec);
    if (ec)
      return make_error(errc::operation_failed,
                        fmt::format("journal: cannot create directory {}: {}; check the permissions of its parent",
                                    path, ec.message()));
  }

  std::vector<std::string> names;
  if (exists) {
    auto s = rocksdb::DB::ListColumnFamilies(o, path, &names);
    if (!s.ok())
      return db_error("listing column families", s);
  }
  if (std::find(names.begin(), names.end(), rocksdb::kDefaultColumnFamilyName) == names.end())
    names.insert(names.begin(), rocksdb::kDefaultColumnFamilyName);
  for (auto want : {cf_events, cf_streams, cf_snapshots, cf_meta}) {
    if (std::find(names.begin(), names.end(), want) != names.end())
      continue;
    if (read_only)
      return make_error(errc::operation_failed,
                        fmt::format("journal at {} has no column family \"{}\": it was not written by banger or is "
                                    "damaged",
                                    path, want));
    names.emplace_back(want);
  }

  std::vector<rocksdb::ColumnFamilyDescriptor> descs;
  for (auto& n : names)
    descs.emplace_back(n, rocksdb::ColumnFamilyOptions(o));
  rocksdb::Status s = read_only ? rocksdb::DB::OpenForReadOnly(o, path, descs, &handles, &db)
                                : rocksdb::DB::Open(o, path, descs, &handles, &db);
  if (!s.ok()) {
    std::string what = s.ToString();
    std::string lower = what;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    if (s.IsIOError() && lower.find("lock") != std::string::npos)
      return make_error(errc::unavailable,
                        fmt::format("journal at {} is in use by another process (is bangerd already running?); "
                                    "stop it, or open the journal read-only ({})",
                                    path, what));
    return make_error(
      errc::operation_failed,
      fmt::format("journal at {} cannot be opened: {}; check the disk and the directory's permissions", path, what));
  }
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names[i] == cf_events)
      events = handles[i];
    else if (names[i] == cf_streams)
      streams_cf = handles[i];
    else if (names[i] == cf_snapshots)
      snapshots = handles[i];
    else if (names[i] == cf_meta)
      meta = handles[i];
  }
  return {};
}

expected<void> journal::impl::check_schema_version() {
  std::string value;
  auto s = db->Get(rocksdb::ReadOptions(), meta, slice(meta_schema_version), &value);
  if (s.IsNotFound()) {
    if (read_only)
      return {}; // created by a writer that has not finished its first open; nothing to misread
    rocksdb::WriteOptions w;
    w.sync = true;
    s = db->Put(w, meta, slice(meta_schema_version), be32(schema_version));
    if (!s.ok())
      return db_error("recording the schema version", s);
    return {};
  }
  if (!s.ok())
    return db_error("reading the schema version", s);
  if (value.size() != 4)
    return make_error(errc::operation_failed,
                      fmt::format("journal at {} has a damaged schema_version ({} bytes, expected 4); restore the "
                                  "journal from a backup",
                                  dir.string(), value.size()));
  std::uint32_t found = get_be32(value.data());
  if (found > schema_version)
    return make_error(errc::operation_failed,
                      fmt::format("journal at {} was written by schema version {}; this banger understands up to {} "
                                  "— upgrade banger or use a newer banger-replay",
                                  dir.string(), found, schema_version));
  return {};
}

expected<std::uint64_t> journal::impl::find_last_seq() const {
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), events));
  it->SeekToLast();
  if (!it->status().ok())
    return db_error("finding the last event", it->status());
  if (!it->Valid())
    return std::uint64_t{0};
  if (it->key().size() != 8)
    return make_error(errc::operation_failed,
                      fmt::format("journal at {} has an events key of {} bytes (expected 8): the journal is damaged; "
                                  "restore it from a backup",
                                  dir.string(), it->key().size()));
  return get_be64(it->key().data());
}

journal::impl::~impl() {
  {
    std::lock_guard lk(mu);
    closing = true;
  }
  commit_cv.notify_all();
  turn_cv.notify_all();
  std::vector<std::shared_ptr<subscription::state>> live;
  {
    std::lock_guard lk(subs_mu);
    live.swap(subs);
  }
  for (auto& s : live) {
    std::lock_guard lk(s->join_mu);
    s->stop = true;
    if (s->thread.joinable()) {
      if (s->thread.get_id() == std::this_thread::get_id())
        s->thread.detach(); // destroyed from its own callback: it exits when the callback returns
      else
        s->thread.join();
    }
    s->owner = nullptr;
  }
  if (db) {
    for (auto* h : handles)
      db->DestroyColumnFamilyHandle(h);
    db->Close();
    delete db;
  }
}

expected<std::unique_ptr<journal>> journal::open(const std::filesystem::path& dir, options opts) {
  auto p = std::make_unique<impl>();
  p->dir = dir;
  p->read_only = opts.read_only;
  p->opts = std::move(opts);
  if (!p->opts.clock)
    p->opts.clock = realtime_ns;
  if (auto r = p->open_db(); !r)
    return std::move(r).err();
  if (auto r = p->check_schema_version(); !r)
    return std::move(r).err();
  auto last = p->find_last_seq();
  if (!last)
    return std::move(last).err();
  p->last_seq.store(*last, std::memory_order_release);
  return std::unique_ptr<journal>(new journal(std::move(p)));
}

journal::journal(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
journal::~journal() = default;

const std::filesystem::path& journal::dir() const { return impl_->dir; }
bool journal::read_only() const { return impl_->read_only; }

// ---------------------------------------------------------------------------------------------
// Appending

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

void journal::set_commit_listener(std::function<void(std::uint64_t last_seq)> fn) {
  auto p = std::make_shared<const std::function<void(std::uint64_t)>>(std::move(fn));
  std::lock_guard lk(impl_->listener_mu);
  impl_->listener = std::move(p);
}

// ---------------------------------------------------------------------------------------------
// Reading

/// Highest version of `stream` whose event has seq <= max_seq (0: none).
expected<std::uint64_t> journal::impl::db_stream_version(std::string_view stream, std::uint64_t max_seq) const {
  std::string lo = stream_prefix(stream), hi = stream_end(stream);
  rocksdb::Slice lo_s(lo), hi_s(hi);
  rocksdb::ReadOptions ro;
  ro.iterate_lower_bound = &lo_s;
  ro.iterate_upper_bound = &hi_s;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, streams_cf));
  for (it->SeekToLast(); it->Valid(); it->Prev()) {
    if (it->key().size() != lo.size() + 8 || it->value().size() != 8)
      return make_error(errc::operation_failed,
                        fmt::format("journal at {}: the index of stream \"{}\" has a malformed entry; the journal "
                                    "is damaged, restore it from a backup",
                                    dir.string(), stream));
    if (get_be64(it->value().data()) <= max_seq)
      return get_be64(it->key().data() + lo.size());
  }
  if (!it->status().ok())
    return db_error(fmt::format("reading the version of stream \"{}\"", stream), it->status());
  return std::uint64_t{0};
}

/// Calls fn(seq, value) for each event with seq in [start, last_seq], at most `limit`, and
/// returns the seq after the last one visited. A missing seq is reported as damage.
template <class on_value>
expected<std::uint64_t> journal::impl::scan(std::uint64_t start, std::size_t limit, on_value&& fn) const {
  const std::uint64_t hi = bound();
  if (start > hi || limit == 0)
    return start;
  const std::uint64_t want = std::min<std::uint64_t>(limit, hi - start + 1);
  char lo_buf[8], hi_buf[8];
  put_be64(lo_buf, start);
  put_be64(hi_buf, hi + 1);
  rocksdb::Slice hi_s(hi_buf, 8);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &hi_s;
  if (want > long_scan) {
    ro.readahead_size = 2 << 20;
    ro.fill_cache = false;
  }
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, events));
  std::uint64_t expect = start;
  auto missing = [&](std::uint64_t found) {
    return make_error(errc::operation_failed,
                      fmt::format("journal at {}: event seq {} is missing ({}); the journal is damaged at that seq, "
                                  "restore it from a backup",
                                  dir.string(), expect,
                                  found ? fmt::format("the next one is {}", found) : std::string("none follows")));
  };
  for (it->Seek(rocksdb::Slice(lo_buf, 8)); it->Valid() && expect - start < want; it->Next()) {
    auto key = it->key();
    if (key.size() != 8)
      return make_error(errc::operation_failed,
                        fmt::format("journal at {}: an events key after seq {} has {} bytes (expected 8); the "
                                    "journal is damaged there, restore it from a backup",
                                    dir.string(), expect - 1, key.size()));
    std::uint64_t seq = get_be64(key.data());
    if (seq != expect)
      return missing(seq);
    auto value = it->value();
    if (auto r = fn(seq, std::string_view(value.data(), value.size())); !r)
      return std::move(r).err();
    ++expect;
  }
  if (!it->status().ok())
    return db_error(fmt::format("reading events from seq {}", expect), it->status());
  if (expect - start < want)
    return missing(0);
  return expect;
}

expected<void> journal::impl::read_into(std::uint64_t from_seq, std::size_t limit, read_result& out) const {
  const std::uint64_t start = std::max<std::uint64_t>(from_seq, 1);
  const std::uint64_t hi = bound();
  out.next_seq = start;
  if (start <= hi)
    out.events.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(limit, hi - start + 1)));
  auto next = scan(start, limit, [&](std::uint64_t seq, std::string_view bytes) -> expected<void> {
    auto e = decode(seq, bytes);
    if (!e)
      return error{e.err().code, fmt::format("journal at {}: {}", dir.string(), e.err().message), {}};
    if (!std::holds_alternative<unknown_event>(e->body))
      out.events.push_back(std::move(*e));
    out.next_seq = seq + 1;
    return {};
  });
  if (!next)
    return std::move(next).err();
  out.next_seq = *next;
  return {};
}

expected<read_result> journal::impl::read_all(std::uint64_t from_seq, std::size_t limit) const {
  read_result out;
  if (auto r = read_into(from_seq, limit, out); !r)
    return std::move(r).err();
  return out;
}

expected<read_result> journal::read_all(std::uint64_t from_seq, std::size_t limit) const {
  return impl_->read_all(from_seq, limit);
}

expected<std::vector<raw_event>> journal::read_raw(std::uint64_t from_seq, std::size_t limit) const {
  std::vector<raw_event> out;
  auto next = impl_->scan(std::max<std::uint64_t>(from_seq, 1), limit,
                          [&](std::uint64_t seq, std::string_view bytes) -> expected<void> {
                            out.push_back(raw_event{seq, std::string(bytes)});
                            return {};
                          });
  if (!next)
    return std::move(next).err();
  return out;
}

expected<std::vector<stored_event>> journal::impl::read_stream(std::string_view stream, std::uint64_t from_version,
                                                               std::size_t limit) const {
  if (auto bad = check_stream_id(stream))
    return *bad;
  std::vector<stored_event> out;
  if (limit == 0)
    return out;
  const std::uint64_t hi = bound();
  std::string lo = stream_key(stream, std::max<std::uint64_t>(from_version, 1));
  std::string end = stream_end(stream);
  rocksdb::Slice end_s(end);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &end_s;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, streams_cf));
  const std::size_t prefix = stream.size() + 1;
  std::uint64_t expect = std::max<std::uint64_t>(from_version, 1);
  rocksdb::PinnableSlice value;
  auto damaged = [&](std::string why) {
    return make_error(errc::operation_failed,
                      fmt::format("journal at {}: stream \"{}\" version {}: {}; the journal is damaged, restore it "
                                  "from a backup",
                                  dir.string(), stream, expect, why));
  };
  for (it->Seek(lo); it->Valid() && out.size() < limit; it->Next()) {
    if (it->key().size() != prefix + 8 || it->value().size() != 8)
      return damaged("malformed index entry");
    std::uint64_t version = get_be64(it->key().data() + prefix);
    std::uint64_t seq = get_be64(it->value().data());
    if (seq > hi)
      break; // written by a batch that is not yet published
    if (version != expect)
      return damaged(fmt::format("missing from the index (found version {} next)", version));
    value.Reset();
    auto s = db->Get(rocksdb::ReadOptions(), events, slice(be64(seq)), &value);
    if (s.IsNotFound())
      return damaged(fmt::format("the index points at seq {}, which does not exist", seq));
    if (!s.ok())
      return db_error(fmt::format("reading event seq {}", seq), s);
    auto e = decode(seq, std::string_view(value.data(), value.size()));
    if (!e)
      return error{e.err().code, fmt::format("journal at {}: {}", dir.string(), e.err().message), {}};
    if (e->stream != stream || e->version != version)
      return damaged(fmt::format("the index points at seq {}, which holds {}@{}", seq, e->stream, e->version));
    if (!std::holds_alternative<unknown_event>(e->body))
      out.push_back(std::move(*e));
    ++expect;
  }
  if (!it->status().ok())
    return db_error(fmt::format("reading stream \"{}\"", stream), it->status());
  return out;
}

expected<std::vector<stored_event>> journal::read_stream(std::string_view stream, std::uint64_t from_version,
                                                         std::size_t limit) const {
  return impl_->read_stream(stream, from_version, limit);
}

std::uint64_t journal::last_seq() const { return impl_->bound(); }

expected<std::uint64_t> journal::impl::stream_version(std::string_view stream) const {
  if (auto bad = check_stream_id(stream))
    return *bad;
  {
    std::lock_guard lk(mu);
    if (auto it = versions.find(std::string(stream)); it != versions.end())
      return it->second;
  }
  return db_stream_version(stream, bound());
}

expected<std::uint64_t> journal::stream_version(std::string_view stream) const { return impl_->stream_version(stream); }

expected<std::vector<std::string>> journal::impl::list_streams() const {
  const std::uint64_t hi = bound();
  std::vector<std::string> out;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), streams_cf));
  it->SeekToFirst();
  while (it->Valid()) {
    auto key = it->key();
    if (key.size() < 9 || key[key.size() - 9] != '\0' || it->value().size() != 8)
      return make_error(errc::operation_failed,
                        fmt::format("journal at {}: the stream index has a malformed key; the journal is damaged, "
                                    "restore it from a backup",
                                    dir.string()));
    std::string stream(key.data(), key.size() - 9);
    if (get_be64(it->value().data()) <= hi) // its first event is published
      out.push_back(stream);
    it->Seek(stream_end(stream));
  }
  if (!it->status().ok())
    return db_error("listing streams", it->status());
  return out;
}

expected<std::vector<std::string>> journal::streams() const { return impl_->list_streams(); }

bool journal::wait_beyond(std::uint64_t seq, std::chrono::milliseconds timeout) const {
  std::unique_lock lk(impl_->mu);
  impl_->commit_cv.wait_for(lk, timeout, [&] { return impl_->closing || impl_->bound() > seq; });
  return impl_->bound() > seq;
}

// ---------------------------------------------------------------------------------------------
// Snapshots

expected<void> journal::put_snapshot(std::string_view stream, const snapshot& s) const {
  if (impl_->read_only)
    return impl_->read_only_error("store a snapshot");
  auto version = impl_->stream_version(stream);
  if (!version)
    return std::move(version).err();
  if (s.version > *version)
    return make_error(errc::bad_request,
                      fmt::format("journal: a snapshot of stream \"{}\" claims version {}, but the stream is at "
                                  "version {}; snapshot only what has been appended",
                                  stream, s.version, *version));
  rocksdb::WriteOptions w; // no sync: a cache (see journal.hpp)
  auto st = impl_->db->Put(w, impl_->snapshots, slice(stream), encode_snapshot(s));
  if (!st.ok())
    return impl_->db_error(fmt::format("storing the snapshot of stream \"{}\"", stream), st);
  return {};
}

expected<std::optional<snapshot>> journal::get_snapshot(std::string_view stream) const {
  if (auto bad = check_stream_id(stream))
    return *bad;
  std::string value;
  auto st = impl_->db->Get(rocksdb::ReadOptions(), impl_->snapshots, slice(stream), &value);
  if (st.IsNotFound())
    return std::optional<snapshot>{};
  if (!st.ok())
    return impl_->db_error(fmt::format("reading the snapshot of stream \"{}\"", stream), st);
  auto s = decode_snapshot(value);
  if (!s)
    return make_error(s.err().code, fmt::format("journal at {}: the snapshot of stream \"{}\": {}", impl_->dir.string(),
                                                stream, s.err().message));
  return std::optional<snapshot>(std::move(*s));
}

std::optional<snapshot> detail::usable_snapshot(const journal& j, std::string_view stream) {
  auto s = j.get_snapshot(stream);
  if (!s || !*s || (*s)->version == 0)
    return std::nullopt;
  auto version = j.stream_version(stream);
  if (!version || (*s)->version > *version) // a snapshot ahead of its stream vouches for nothing
    return std::nullopt;
  return std::move(**s);
}

void detail::refresh_snapshot(const journal& j, std::string_view stream, std::uint64_t version, std::string state) {
  if (!j.read_only())
    (void)j.put_snapshot(stream, snapshot{version, std::move(state)});
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
