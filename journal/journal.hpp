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
#include <concepts>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
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
  std::uint64_t stream_version = 0;        ///< the stream's version after the append
  std::vector<std::int64_t> wall_times_ns; ///< the time stored with each event, in order
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

  /// Stores `s` as the stream's snapshot, replacing any. Snapshots are a cache beside the events
  /// (storing one changes no event), hence const; written without a sync, since a snapshot lost
  /// in a crash costs only a longer fold. bad_request when s.version is beyond the stream;
  /// fails on a read-only journal.
  expected<void> put_snapshot(std::string_view stream, const snapshot& s) const;
  expected<std::optional<snapshot>> get_snapshot(std::string_view stream) const;

  const std::filesystem::path& dir() const;
  bool read_only() const;

  struct impl;

private:
  explicit journal(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

/// A State whose owner can snapshot it: both functions are found by argument-dependent lookup.
/// `snapshot_encode` encodes every field; `snapshot_decode(seed, version, bytes)` returns the state
/// folded up to and including `version` that `bytes` encode, or nullopt when it cannot vouch for
/// them (another format, corrupt, another version). The owner bumps its format whenever the
/// encoding or the meaning of its apply() changes. See docs/journal.md, "Snapshots".
template <class State>
concept snapshotted_state = requires(const State& s, std::uint64_t version, std::string_view bytes) {
  { snapshot_encode(s) } -> std::same_as<std::string>;
  { snapshot_decode(s, version, bytes) } -> std::same_as<std::optional<State>>;
};

/// fold_stream refreshes a stream's snapshot once it folded at least this many events past it.
inline constexpr std::uint64_t snapshot_refresh_after = 8;

namespace detail {
/// The stream's snapshot when one is stored, decodes and covers no more than the stream holds;
/// nothing otherwise (a snapshot is a cache: any doubt means a full fold).
std::optional<snapshot> usable_snapshot(const journal& j, std::string_view stream);
/// Stores a snapshot if the journal is writable; a failure is ignored (the next fold retries).
void refresh_snapshot(const journal& j, std::string_view stream, std::uint64_t version, std::string state);
} // namespace detail

/// Folds `stream` into `state` with the stream owner's pure `apply(state, event)` (found by
/// argument-dependent lookup): how an entity's state is rebuilt from the journal. Blocking (one
/// bounded read); a stream that cannot be read leaves `state` as given.
///
/// For a snapshotted_state it starts from the stream's snapshot (which replaces `state`: a seed
/// may only carry what the stream itself determines, such as the entity's name) and folds the
/// events after it; when that tail held snapshot_refresh_after events or more, all known to this
/// build, it stores a new snapshot (writable journals only). The result equals the plain fold.
template <class State>
State fold_stream(const journal& j, std::string_view stream, State state) {
  if constexpr (snapshotted_state<State>) {
    std::optional<State> folded;
    std::uint64_t version = 0;
    if (auto snap = detail::usable_snapshot(j, stream)) {
      folded = snapshot_decode(std::as_const(state), snap->version, std::string_view(snap->state));
      if (folded)
        version = snap->version;
    }
    auto evs = j.read_stream(stream, version + 1);
    if (!evs)
      return state;
    if (!folded)
      folded.emplace(std::move(state));
    bool contiguous = true; // read_stream skips kinds this build does not know
    for (const auto& e : *evs) {
      contiguous = contiguous && e.version == version + 1;
      version = e.version;
      folded = apply(std::move(*folded), e);
    }
    if (contiguous && evs->size() >= snapshot_refresh_after)
      detail::refresh_snapshot(j, stream, version, snapshot_encode(std::as_const(*folded)));
    return std::move(*folded);
  } else {
    if (auto evs = j.read_stream(stream))
      for (const auto& e : *evs)
        state = apply(std::move(state), e);
    return state;
  }
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
