// Your host setup in the guest (docs/workspaces.md): the `[[file_sync]]` files of the owner's
// home, and the host's git identity, read by the CLI as that user and sent to the daemon, which
// writes them into a running guest through its agent. Reading follows no symlink out of the
// home and none inside a synced directory; what cannot be synced is a warning, not a failure,
// except a file the user cannot read or a set over the limits. Blocking; any thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/config.hpp"
#include "common/error.hpp"

namespace banger::workspace {

/// One file to write in the guest, as root.
struct synced_file {
  std::string guest_path; ///< validate_guest_path (strictly below /root)
  std::string data;
  std::uint32_t mode = 0644;  ///< permission bits, at most 0777
  bool keep_existing = false; ///< written only when absent, or when banger wrote it (identity_marker)
};

/// What one sync sends: the files, in the order of the rules, and what was skipped and why.
struct home_sync {
  std::vector<synced_file> files;
  std::vector<std::string> warnings;
  std::uint64_t bytes = 0;
};

/// What one sync may send: the daemon holds it whole while the agent writes it.
constexpr std::uint64_t max_sync_bytes = 16u << 20;
constexpr std::size_t max_sync_files = 1024;
constexpr std::size_t max_sync_depth = 32;

/// The first line of a .gitconfig banger writes from the host's identity. A guest file that
/// starts with it is banger's, replaced at the next sync; one that does not is the user's.
constexpr std::string_view identity_marker =
  "# Written by banger from the host's git identity; delete this line to keep your own edits.";

/// Reads the rules' sources from `home` (absolute). A host path is `~`, `~/...` or an absolute
/// path inside `home`; it may pass through symlinks that stay in the home, never one out of it.
/// Inside a synced directory symlinks and special files are skipped, never followed. Warnings
/// (the entry skipped): a missing source, a source outside the home or through a symlink out of
/// it, a symlink, a special file or a name with control characters inside a directory, a
/// directory deeper than max_sync_depth. Errors (errc::bad_request / unauthorized, naming the
/// file): a guest path validate_guest_path refuses, a file the caller cannot read, more than
/// max_sync_files or max_sync_bytes in all.
expected<home_sync> collect_file_sync(const std::vector<file_sync_rule>& rules, const std::filesystem::path& home);

/// The host's git identity as a guest /root/.gitconfig (keep_existing, identity_marker first),
/// or nothing when `name` and `email` are both empty. A value with a control character is not
/// written (`warning` says why).
std::optional<synced_file> git_identity_file(std::string_view name, std::string_view email, std::string* warning);

/// user.name and user.email as git sees them in `dir` (repository settings first, then the
/// user's); empty when unset or when git is missing.
std::pair<std::string, std::string> host_git_identity(const std::filesystem::path& dir);

/// Everything a sync sends: the rules' files and, when none of them is /root/.gitconfig, the
/// git identity from `git_dir` (a checkout, or the home).
expected<home_sync> plan_home_sync(const std::vector<file_sync_rule>& rules, const std::filesystem::path& home,
                                   const std::filesystem::path& git_dir);

} // namespace banger::workspace
