// Internal to banger_journal: the state the journal's pieces share (struct journal::impl, a
// subscription's state, a pending append) and the key and value encodings of the column
// families journal.hpp draws. Not installed; included only by journal/journal*.cpp, which (with
// this header) are the only files that include RocksDB.
//   journal.cpp                opening and closing
//   journal_writer.cpp         appends: the group commit (leader and followers)
//   journal_reads.cpp          reads, stream versions and snapshots
//   journal_subscriptions.cpp  subscriptions, wait_beyond and the commit listener
//
// Invariants: only the leader changes `versions` and `last_seq`, and only under `mu`; only
// one leader exists at a time. Every seq <= `last_seq` is durable and readable; readers bound
// every scan by `last_seq`, so they never see a batch that is written but not yet published.
// In read-only mode `last_seq` is fixed at open (RocksDB's read-only view does not move).
//
// Threads: any thread calls any method. Each subscription runs on its own thread, reading
// like read_all and waiting on `commit_cv`; the journal's destructor stops and joins them.
#pragma once

#include <rocksdb/db.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <fmt/format.h>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "journal/journal.hpp"

namespace banger::journal {

namespace detail {

inline void put_be64(char* out, std::uint64_t v) {
  for (int i = 7; i >= 0; --i, v >>= 8)
    out[i] = static_cast<char>(v & 0xff);
}

inline std::string be64(std::uint64_t v) {
  std::string s(8, '\0');
  put_be64(s.data(), v);
  return s;
}

inline std::uint64_t get_be64(const char* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

inline std::string be32(std::uint32_t v) {
  std::string s(4, '\0');
  for (int i = 3; i >= 0; --i, v >>= 8)
    s[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xff);
  return s;
}

inline std::uint32_t get_be32(const char* p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

/// `stream` + '\0': every key of the stream starts with it.
inline std::string stream_prefix(std::string_view stream) {
  std::string k(stream);
  k += '\0';
  return k;
}

/// Exclusive upper bound of a stream's keys (no stream id contains '\0', so nothing else
/// sorts between the prefix and this).
inline std::string stream_end(std::string_view stream) {
  std::string k(stream);
  k += '\x01';
  return k;
}

inline std::string stream_key(std::string_view stream, std::uint64_t version) {
  std::string k = stream_prefix(stream);
  k.resize(k.size() + 8);
  put_be64(k.data() + k.size() - 8, version);
  return k;
}

inline rocksdb::Slice slice(std::string_view s) { return rocksdb::Slice(s.data(), s.size()); }

inline std::optional<error> check_stream_id(std::string_view stream) {
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

} // namespace detail

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
  std::deque<detail::pending*> queue;        ///< guarded by mu
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
  void lead(std::vector<detail::pending*> batch);
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

} // namespace banger::journal
