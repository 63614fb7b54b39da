// `kernel pull` as a library: fetch a catalog, then download one listed bundle (capped at its
// listed size, hashed on the way in) into a temp file beside the destination and extract it
// into place only when the size and sha256 match. Either the destination directory appears
// complete, or nothing new is left beside it. Blocking; any thread. The caller (the kernel
// actor) decides where kernels live and verifies the extracted manifest's file hashes.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "fetch/bundle.hpp"
#include "fetch/catalog.hpp"
#include "fetch/http.hpp"

namespace banger::fetch {

struct pull_options {
  std::uint64_t max_bundle_bytes = fetch::max_bundle_bytes; ///< cap on the download
  std::uint64_t max_extracted_bytes = 2ull << 30;           ///< cap on the bundle's contents
  std::chrono::seconds timeout{30};                         ///< connect / stall timeout
  progress_fn progress;                                     ///< download progress, optional
};

/// GETs and parses the catalog at `url` (at most max_catalog_bytes). Errors as fetch_text()
/// and parse_catalog().
expected<catalog> fetch_catalog(const std::string& url, std::chrono::seconds timeout = std::chrono::seconds(30));

struct pulled_bundle {
  std::string sha256; ///< of the bundle, equal to the entry's
  std::uint64_t size = 0;
  std::vector<bundle_member> members;
};

/// Downloads `entry`'s bundle into a temp file in dest_dir's parent (which must exist) and
/// extracts it as the new directory `dest_dir`. errc::already_exists when dest_dir exists;
/// errc::operation_failed when the entry's size is over opts.max_bundle_bytes; otherwise the
/// errors of download() and extract_bundle(). The temp file is gone when this returns.
expected<pulled_bundle> pull_bundle(const catalog_entry& entry, const std::filesystem::path& dest_dir,
                                    const pull_options& opts = {});

} // namespace banger::fetch
