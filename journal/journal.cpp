// The RocksDB event journal (journal.hpp draws the column families and keys): opening (the
// column families, the schema version, the last seq) and closing. The state the pieces share,
// and its invariants, are in journal_impl.hpp; appends are in journal_writer.cpp, reads and
// snapshots in journal_reads.cpp, subscriptions in journal_subscriptions.cpp.
//
// Threads: open() runs on the caller's thread. The destructor, on whichever thread drops the
// journal, wakes every waiter, then stops and joins every subscription thread (detaching the one
// it runs on, when a subscription's callback drops the journal) before RocksDB closes.
#include "journal/journal_impl.hpp"

#include <rocksdb/iterator.h>
#include <rocksdb/options.h>

#include <algorithm>
#include <cctype>
#include <chrono>

namespace banger::journal {

namespace {

using detail::be32;
using detail::get_be32;
using detail::get_be64;
using detail::slice;

constexpr std::string_view cf_events = "events";
constexpr std::string_view cf_streams = "streams";
constexpr std::string_view cf_snapshots = "snapshots";
constexpr std::string_view cf_meta = "meta";
constexpr std::string_view meta_schema_version = "schema_version";

std::int64_t realtime_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
    .count();
}

} // namespace

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

} // namespace banger::journal
