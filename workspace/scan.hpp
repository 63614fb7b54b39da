// What a workspace ships, read from a git checkout by the user who owns it (the CLI): the
// repository's top, its HEAD, and every file to ship with its mode and size, as the working
// tree has them now (docs/workspaces.md). Runs git (ls-files, rev-parse), then looks at each
// path from the checkout's top with openat2 following no symlink: links are read, never
// followed, and a file is opened only to prove it can be read. Blocking; any thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace banger::workspace {

enum class entry_kind : std::uint8_t { file, symlink };

/// One shipped path. `path` is relative to the repository's top, '/'-separated, the bytes git
/// holds (no quoting, any byte but NUL and '/' in a component).
struct entry {
  std::string path;
  entry_kind kind = entry_kind::file;
  std::uint32_t mode = 0644; ///< 0644 or 0755 for files (git keeps only the executable bit); 0777 for links
  std::uint64_t size = 0;    ///< bytes, or the link target's length
  std::string target;        ///< symlinks: the target as stored, never resolved
  bool untracked = false;    ///< shipped because of include_untracked
};

struct scan_options {
  bool include_untracked = false; ///< also untracked files that are not ignored
};

/// A checkout as it would be shipped.
struct source {
  std::filesystem::path top;        ///< the working tree's top (absolute)
  std::string prefix;               ///< the path asked for, relative to `top` ("" or "dir/sub/")
  std::string head;                 ///< HEAD's commit id; "" before the first commit
  std::string branch;               ///< "main" for refs/heads/main; "" when HEAD is detached
  std::vector<entry> entries;       ///< sorted by path (bytewise), no duplicates
  std::vector<std::string> skipped; ///< paths git lists that are not shipped, each with why
  std::uint64_t bytes = 0;          ///< sum of the entries' sizes
};

/// Reads what `path` (a git working tree or a directory inside one) would ship. Refuses, with
/// errc::bad_request saying so: a path that does not exist or is not a directory, a directory
/// in no git working tree, a bare repository, a repository whose objects are not SHA-1. A file
/// the caller cannot read is errc::unauthorized naming it. Tracked files deleted in the working
/// tree, and paths that are now something git cannot ship (a directory, a fifo), are not
/// shipped and are listed in `skipped`.
expected<source> scan(const std::filesystem::path& path, const scan_options& opts = {});

} // namespace banger::workspace
