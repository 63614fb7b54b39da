// A workspace as a stream (docs/workspaces.md, "How it lands"): what the CLI sends and a
// receiver (the daemon's ext4 writer, later the guest agent) checks and lands. In order: begin,
// then the repository's own files (git = true, paths relative to .git/), then the shipped
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
