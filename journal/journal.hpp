// The event journal (DESIGN §3): one RocksDB database, column families
//   events    key: seq (u64 big-endian)                  value: codec::encode(event)
//   streams   key: stream id + '\0' + version (u64 BE)    value: seq (u64 BE)
//   snapshots key: stream id                              value: codec::encode_snapshot
//   meta      key: name                                   value: e.g. "schema_version" -> u32 BE
// Invariants: seq is gapless from 1; each stream's versions are gapless from 1; an append is
// one WriteBatch written with sync=true, so after a crash a batch is wholly present or absent.
// Thread-safety: every method may be called from any thread. Concurrent appenders are
// group-committed: one leader writes every pending request in one synced batch.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "journal/codec.hpp"
#include "journal/events.hpp"

namespace banger::journal {

/// Bumped only when an older reader could misread new data (see schema/events.capnp).
inline constexpr std::uint32_t schema_version = 1;
/// `expected_version` that accepts any current version.
inline constexpr std::uint64_t any_version = UINT64_MAX;

struct options {
  bool read_only = false; ///< OpenForReadOnly: works beside a running writer; a point-in-time view
  /// Wall clock for event timestamps, ns since the epoch; CLOCK_REALTIME when empty.
  std::function<std::int64_t()> clock;
};

struct append_request {
  std::string stream;
  /// Current version the caller believes the stream has (0: new stream), or any_version.
  std::uint64_t expected_version = 0;
  std::vector<event> events; ///< at least one
  /// Empty: every event gets the journal's clock. Else one wall time per event, kept as given
  /// (banger-replay's import keeps a recording's times); another size is bad_request.
  std::vector<std::int64_t> wall_times_ns = {};
};

struct append_result {
  std::uint64_t first_seq = 0;
  std::uint64_t last_seq = 0;
  std::uint64_t stream_version = 0; ///< the stream's version after the append
};

struct read_result {
  std::vector<stored_event> events; ///< unknown kinds already skipped
  std::uint64_t next_seq = 0;       ///< where to continue reading
};

struct raw_event {
  std::uint64_t seq = 0;
  std::string bytes;
};

class subscription;

class journal {
public:
  /// Opens or creates the journal in `dir`. Refuses a journal whose schema version is newer
  /// than this build's, and (writer mode) a directory another process holds open.
  static expected<std::unique_ptr<journal>> open(const std::filesystem::path& dir, options opts = {});
  ~journal();
  journal(const journal&) = delete;
  journal& operator=(const journal&) = delete;

  /// Appends atomically and durably. A stale expected_version fails with errc::conflict and
  /// writes nothing. Blocks until the batch is synced.
  expected<append_result> append(append_request req);
  /// Appends several requests in one synced batch; each succeeds or fails (conflict) alone.
  std::vector<expected<append_result>> append_batch(std::vector<append_request> reqs);

  /// Events of `stream` with version >= from_version, at most `limit`.
  expected<std::vector<stored_event>> read_stream(std::string_view stream, std::uint64_t from_version = 1,
                                                  std::size_t limit = SIZE_MAX) const;
  /// Events with seq >= from_seq, at most `limit` scanned.
  expected<read_result> read_all(std::uint64_t from_seq, std::size_t limit = SIZE_MAX) const;
  /// Undecoded values with seq >= from_seq (verification, forwarding over RPC).
  expected<std::vector<raw_event>> read_raw(std::uint64_t from_seq, std::size_t limit = SIZE_MAX) const;

  /// Sequence number of the newest durable event (0: empty).
  std::uint64_t last_seq() const;
  /// Current version of a stream (0: no such stream).
  expected<std::uint64_t> stream_version(std::string_view stream) const;
  /// Every stream id, sorted.
  expected<std::vector<std::string>> streams() const;

  /// Blocks until last_seq() > seq, the timeout passes, or the journal is closing.
  /// Returns whether last_seq() > seq.
  bool wait_beyond(std::uint64_t seq, std::chrono::milliseconds timeout) const;
  /// Called on the committing thread after each durable batch with the new last_seq.
  /// Must not block or call back into the journal's append. One listener; replaces the last.
  void set_commit_listener(std::function<void(std::uint64_t last_seq)> fn);

  /// Delivers every event with seq >= from_seq in order, then live appends, with no gap and no
  /// duplicate, on a thread the subscription owns. `fn` returning false ends it.
  subscription subscribe(std::uint64_t from_seq, std::function<bool(const stored_event&)> fn);

  expected<void> put_snapshot(std::string_view stream, const snapshot& s);
  expected<std::optional<snapshot>> get_snapshot(std::string_view stream) const;

  const std::filesystem::path& dir() const;

  struct impl;

private:
  explicit journal(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

/// Folds `stream` into `state` with the stream owner's pure `apply(state, event)` (found by
/// argument-dependent lookup): how an entity's state is rebuilt from the journal. Blocking (one
/// bounded read); a stream that cannot be read leaves `state` as given.
template <class State>
State fold_stream(const journal& j, std::string_view stream, State state) {
  if (auto evs = j.read_stream(stream))
    for (const auto& e : *evs)
      state = apply(std::move(state), e);
  return state;
}

/// Owns a subscription thread; destroying it (or cancel()) stops delivery and joins.
class subscription {
public:
  subscription() = default;
  subscription(subscription&&) noexcept;
  subscription& operator=(subscription&&) noexcept;
  ~subscription();
  void cancel();
  /// Next seq the subscription will deliver.
  std::uint64_t position() const;
  /// Set when reading failed (e.g. a value that does not decode); delivery has stopped.
  std::optional<error> failure() const;

  struct state;
  explicit subscription(std::shared_ptr<state> s);

private:
  std::shared_ptr<state> s_;
};

} // namespace banger::journal
