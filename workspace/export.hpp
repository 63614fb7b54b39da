// `vm workspace export` (docs/workspaces.md, "Export"): the guest's edits as a patch against
// what was shipped, made by the guest's own git through a shell command the CLI runs with
// `vm exec`. Pure: builds the command; any thread.
#pragma once

#include <string>
#include <vector>

namespace banger::workspace {

enum class export_form {
  diff,    ///< one patch (git's binary format): the shipped tree against the guest's working tree
  commits, ///< a mailbox series of the commits made in the guest (`git format-patch`), for `git am`
};

/// The argv that prints the export of the workspace at `guest_path` on stdout. `head` is the
/// shipped HEAD commit ("" before a first commit). The command reads the guest's working tree
/// through a scratch index and object directory: the guest's own index and objects are not
/// written. It fails (exit 1, one line on stderr) when the guest has no git or the path holds
/// no workspace.
std::vector<std::string> export_command(const std::string& guest_path, const std::string& head, export_form form);

} // namespace banger::workspace
