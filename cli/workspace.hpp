// The CLI's side of workspaces (docs/workspaces.md): the CLI reads the checkout as the user who
// runs it; the daemon never opens it.
#pragma once

#include <string>

#include "cli/commands.hpp"

namespace banger::cli {

struct workspace_opts {
  std::string path;       ///< the checkout (or a directory in one)
  std::string guest_path; ///< "" for /root/<checkout name>
  bool include_untracked = false;
};

/// `vm run --dry-run PATH`: lists what would be shipped (size, path; symlinks with their
/// target) and the totals, and what git tracks but is not shipped, with why. No daemon, no VM.
int cmd_workspace_dry_run(const workspace_opts& w, const output_opts& o);

} // namespace banger::cli
