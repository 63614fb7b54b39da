// The content-addressed cache of registry blobs (issue #13), shared by every pull:
//
//   <dir>/sha256/<hex>        verified blobs only, mode 0444, named by their digest
//   <dir>/partial/<hex>       a download in progress or broken off; resumed with a Range request
//   <dir>/partial/<hex>.lock  flock'd exclusively by the one pull downloading <hex>
//
// One download per digest: a pull that needs a blob another pull is downloading waits on the
// lock and then finds the verified blob. (The lock is a file rather than an actor because the
// waiters are blocking job threads, and because a file lock also holds across processes that
// share the cache.) A partial download is never visible under its final name: it is verified,
// fsynced and renamed. A pull holds a shared flock on each blob it uses until it closes it;
// prune skips blobs held so, and a pull that opened a blob keeps reading it even if a prune
// unlinks the name, so a pull running during a prune completes. Blocking; any thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>

#include "common/error.hpp"
#include "common/process.hpp"
#include "fetch/registry.hpp"

namespace banger::fetch {

struct cached_blob {
  unique_fd fd; ///< read-only, at offset 0, shared flock held
  std::filesystem::path path;
  bool downloaded = false;        ///< this call fetched it (false: it was in the cache)
  std::uint64_t resumed_from = 0; ///< bytes a broken-off download had left, when one was resumed
};

struct prune_report {
  std::uint64_t blobs = 0, bytes = 0; ///< removed (or, with dry_run, that would be)
  std::uint64_t partials = 0;         ///< broken-off downloads removed, their bytes in `bytes`
  std::uint64_t busy = 0;             ///< in use by a running pull, kept
};

class blob_cache {
public:
  explicit blob_cache(std::filesystem::path dir) : dir_(std::move(dir)) {}
  const std::filesystem::path& dir() const { return dir_; }

  /// Fills `fd` (holding `have` bytes of a partial download) with the rest of the blob, verified.
  using fetch_fn = std::function<expected<void>(int fd, std::uint64_t have)>;

  /// Blob `d`, verified, open: from the cache, or fetched with `fetch` (at most one fetch per
  /// digest at a time, here or in another process). A fetch that breaks off (errc::unavailable)
  /// leaves its partial file to be resumed; a resumed fetch whose whole does not verify
  /// (errc::operation_failed) is run once more from nothing; any other failure removes it.
  expected<cached_blob> get(const blob_descriptor& d, const fetch_fn& fetch);

  /// Removes every blob and partial download no pull is using; with `dry_run`, only counts them.
  expected<prune_report> prune(bool dry_run);

private:
  std::filesystem::path dir_;
};

} // namespace banger::fetch
