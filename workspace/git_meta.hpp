// The repository a workspace carries (docs/workspaces.md, "The repository in the guest"), made
// on the host from the user's checkout by the CLI: the host's index entries (mode, object id,
// stage, and whether the working tree's content is the object's), a pack of HEAD's commit,
// trees and blobs, of the index's staged blobs and of the shipped state's tree (`git
// pack-objects`, no deltas), and the
// small files of a one-commit shallow repository whose HEAD is the host's. Blocking (runs
// git); any thread.
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "workspace/git_index.hpp"
#include "workspace/scan.hpp"

namespace banger::workspace {

struct git_material {
  std::vector<index_record> index; ///< the top repository's index, in git's order
  /// Files below .git/, by path relative to it, with their content: HEAD, config, shallow,
  /// refs/heads/BRANCH. Small; the pack is apart.
  std::vector<std::pair<std::string, std::string>> files;
  std::filesystem::path pack, pack_index; ///< in the scratch directory; empty when no object is needed
  std::string pack_name;                  ///< "pack-<id>" (objects/pack/<name>.pack and .idx)
  /// The tree of what is shipped (HEAD plus the working tree's changes, and the untracked files
  /// when they are shipped), in the pack; .git/banger-shipped names it in the guest.
  std::string shipped_tree;
};

/// The file below .git/ that names the shipped tree: what `vm workspace export` diffs against.
inline constexpr std::string_view shipped_tree_file = "banger-shipped";

/// Makes the repository material of `src` (a scan of the same checkout), writing the pack into
/// `scratch` (a directory the caller owns and removes).
expected<git_material> make_git_material(const source& src, const std::filesystem::path& scratch);

/// Whether `name` is a branch name banger writes as refs/heads/NAME: 1-200 bytes of
/// [A-Za-z0-9._/-], no "..", no "//", not starting or ending with '/' or '.', no component
/// starting with '.' or ending with ".lock". Others (valid in git but unusual) leave HEAD detached.
bool plain_branch_name(std::string_view name);

/// Whether `rel` (relative to .git/) is one of the files git_material carries: HEAD, config,
/// shallow, index, banger-shipped, refs/heads/<plain branch>, objects/pack/pack-<40 hex>.pack or .idx.
/// The receiver refuses any other.
bool allowed_git_file(std::string_view rel);

} // namespace banger::workspace
