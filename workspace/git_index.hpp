// A git index file (version 2: "DIRC", entries, SHA-1 trailer) written from what the receiver
// of a workspace knows: each entry's mode, object id and stage from the host's index, and the
// stat data of the file it wrote. With stat data that matches the file, git in the guest trusts
// the entry without reading the file (no re-hashing under TCG); an entry whose working-tree
// content differs from its object gets zeroed stat data, so git looks at it. Pure; any thread.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace banger::workspace {

/// What the host's index says of one path.
struct index_record {
  std::string path;             ///< relative to the top, as git holds it
  std::uint32_t mode = 0100644; ///< 0100644, 0100755, 0120000 (link) or 0160000 (submodule)
  std::array<std::uint8_t, 20> oid{};
  std::uint8_t stage = 0;        ///< 0, or 1-3 for a conflict
  bool worktree_matches = false; ///< the shipped content is the object's
};

/// The stat data git compares; zero means "look at the file".
struct index_stat {
  std::uint32_t ctime = 0, mtime = 0, dev = 0, ino = 0, uid = 0, gid = 0, size = 0;
  std::uint32_t ctime_ns = 0, mtime_ns = 0; ///< git compares these too when built with USE_NSEC
};

/// The mode git's index gives a landed file: 0120000 for a link, else 0100755 or 0100644 by
/// the owner's executable bit of `st_mode`. A receiver gives an entry its stat data only when
/// this is the host index's mode (else git is to see the change of mode itself).
inline std::uint32_t index_mode(bool link, std::uint32_t st_mode) {
  return link ? 0120000 : (st_mode & 0100) ? 0100755 : 0100644;
}

/// "78981922..." (40 hex digits) as 20 bytes; errc::bad_request otherwise.
expected<std::array<std::uint8_t, 20>> parse_oid(std::string_view hex);

/// What a receiver knows of one file it landed: a link or not, its permission bits, and its
/// stat data as the index keeps it.
struct landed_file {
  bool link = false;
  std::uint32_t mode = 0;
  index_stat stat;
};

/// The stat data for `index`'s records, parallel to it: a record whose content git found equal
/// on the host (worktree_matches), whose file `find(path)` gives (nothing: not landed) and whose
/// mode is that file's (index_mode) gets the file's stat data; the others get zeros, so git in
/// the guest looks at them. Every path is checked with validate_entry_path first.
expected<std::vector<index_stat>>
index_stats(const std::vector<index_record>& index,
            const std::function<expected<std::optional<landed_file>>(const std::string& path)>& find);

/// The index file's bytes. `records` must be sorted by path then stage (git's order, what
/// `ls-files --stage` prints) and `stats` parallel to it. A path over 4095 bytes is stored with
/// git's 0xFFF length marker. errc::bad_request for an unsorted list or a mode git does not know.
expected<std::string> encode_index(const std::vector<index_record>& records, const std::vector<index_stat>& stats);

} // namespace banger::workspace
