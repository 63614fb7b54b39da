// A workspace as a stream (docs/workspaces.md, "How it lands"): what the CLI sends and a
// receiver (the daemon's ext4 writer, or land_remote.hpp's through the guest agent) checks and
// lands. In order: begin, then the repository's own files (git = true, paths relative to .git/), then the shipped
// entries in strictly increasing path order, each file followed by data() calls that add up to
// its size, then finish() with the host's index. A receiver validates every record where it
// uses it; the first error ends the stream and the receiver removes what it wrote.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "common/sha256.hpp"
#include "workspace/git_index.hpp"
#include "workspace/git_meta.hpp"
#include "workspace/scan.hpp"

namespace banger::workspace {

struct stream_begin {
  std::string guest_path;  ///< validate_guest_path
  std::uint64_t bytes = 0; ///< announced: what the entries and the repository's files add up to
  std::uint64_t files = 0; ///< announced: how many entries follow (exactly: finish() refuses fewer)
};

struct stream_entry {
  bool git = false; ///< a file of the workspace's repository (allowed_git_file), not a shipped one
  std::string path; ///< validate_entry_path, or relative to .git/
  entry_kind kind = entry_kind::file;
  std::uint32_t mode = 0644;
  std::uint64_t size = 0; ///< files: the bytes data() brings
  std::int64_t mtime = 0; ///< seconds
  std::string target;     ///< symlinks
};

/// What a landed workspace is.
struct landed {
  std::string guest_path;
  std::uint64_t files = 0, bytes = 0; ///< shipped entries (the repository's files not counted)
  std::string digest;                 ///< stream_digest of the shipped entries
};

class receiver {
public:
  virtual ~receiver() = default;
  virtual expected<void> begin(const stream_begin& b) = 0;
  virtual expected<void> entry(const stream_entry& e) = 0;
  virtual expected<void> data(std::string_view bytes) = 0;
  virtual expected<landed> finish(const std::vector<index_record>& index) = 0;
  /// Ends a stream that will not finish (the sender went away): what was written goes.
  virtual void abort() = 0;
};

/// The digest of a workspace's shipped entries: SHA-256 over each entry's kind, mode, path,
/// size and content (or link target), in stream order. Both ends compute it the same way.
class stream_digest {
public:
  void entry(const stream_entry& e);
  void data(std::string_view bytes) { h_.update(bytes); }
  std::string hex() { return h_.hex_digest(); }

private:
  sha256_hasher h_;
};

/// The checks every receiver makes of the stream as it comes, and what it counts; a receiver
/// calls each before it acts on the record, and stops at the first error. begin: the guest
/// path (validate_guest_path, and the one the command named when `required` is not empty).
/// entry: within the announced entries and bytes; the previous file complete; a repository
/// file one banger writes (allowed_git_file; not the index, which finish brings), before the
/// shipped entries; a shipped path valid, in strictly increasing order, a file 0644 or 0755.
/// data: within the current file's size. finish: the last file complete, every announced
/// entry come. Pure; one stream's thread.
class stream_checker {
public:
  explicit stream_checker(std::string required_guest_path = {}) : required_(std::move(required_guest_path)) {}
  expected<void> begin(const stream_begin& b);
  expected<void> entry(const stream_entry& e);
  expected<void> data(std::string_view bytes);
  expected<void> finish();
  /// What the shipped entries add up to (the repository's files not counted).
  landed result() { return {guest_, files_, bytes_, digest_.hex()}; }
  bool begun() const { return begun_; }

private:
  std::string required_, guest_, last_, cur_path_;
  std::uint64_t announced_bytes_ = 0, announced_files_ = 0, records_ = 0, received_ = 0, cur_left_ = 0;
  std::uint64_t files_ = 0, bytes_ = 0;
  bool begun_ = false, shipping_ = false, cur_git_ = false, in_file_ = false;
  stream_digest digest_;
};

/// Progress while sending: records and bytes sent so far.
using send_progress = std::function<void(std::uint64_t files, std::uint64_t bytes)>;

/// Sends `src` (a scan) and its repository material to `to`, reading each file from the
/// checkout as the caller (openat2 beneath the top, no symlink followed; a file that changed
/// type since the scan fails the send). Calls `to.abort()` on any failure.
expected<landed> send(const source& src, const git_material& git, const std::string& guest_path, receiver& to,
                      const send_progress& progress = {});

/// The digest a landing of `src` would record (stream_digest), reading the files as send()
/// does: what `vm exec` compares with the recorded one to tell that the checkout moved on.
expected<std::string> digest_of(const source& src);

} // namespace banger::workspace
