// The journal's reads (journal.hpp): read_stream, read_all, read_raw, last_seq, stream_version and
// streams, and the snapshots stored beside the events (put_snapshot, get_snapshot, fold_stream's
// helpers). Every scan is bounded by `last_seq`, so a reader never sees a batch that is written
// but not yet published (journal_impl.hpp); db_stream_version also serves the leader's version
// checks (journal_writer.cpp).
//
// Threads: any thread reads, concurrently with appends and with other reads.
#include "journal/journal_impl.hpp"

#include <rocksdb/iterator.h>
#include <rocksdb/options.h>

#include <algorithm>

namespace banger::journal {

namespace {

using detail::be64;
using detail::check_stream_id;
using detail::get_be64;
using detail::put_be64;
using detail::slice;
using detail::stream_end;
using detail::stream_key;
using detail::stream_prefix;

/// Scans longer than this many events read ahead and bypass the block cache (replays).
constexpr std::uint64_t long_scan = 4096;

} // namespace

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

} // namespace banger::journal
