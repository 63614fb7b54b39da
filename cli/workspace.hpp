// The CLI's side of workspaces (docs/workspaces.md): the CLI reads the checkout as the user who
// runs it; the daemon never opens it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "cli/commands.hpp"
#include "workspace/file_sync.hpp"

namespace banger::cli {

struct workspace_opts {
  std::string path;       ///< the checkout (or a directory in one)
  std::string guest_path; ///< "" for /root/<checkout name>
  bool include_untracked = false;
};

/// `vm run --dry-run PATH`: lists what would be shipped (size, path; symlinks with their
/// target) and the totals, and what git tracks but is not shipped, with why. No daemon, no VM.
int cmd_workspace_dry_run(const workspace_opts& w, const output_opts& o);

class client;

/// What a shipped workspace is, as the daemon recorded it.
struct shipped_workspace {
  std::string guest_path;
  std::string start_dir; ///< where commands start: the guest path and the directory PATH named in it
  std::uint64_t files = 0, bytes = 0;
  double seconds = 0;
};

/// A checkout read, ready to ship: scanning first, before any VM is made, so a path that is not
/// a checkout fails before anything exists. Defined in workspace_ship.cpp.
struct workspace_plan;
expected<std::shared_ptr<workspace_plan>> plan_workspace(const workspace_opts& w);
/// The checkout's top a plan ships.
const std::filesystem::path& plan_checkout(const workspace_plan& plan);
/// Ships `plan` into VM `vm` (its work disk when stopped, its agent when running), printing
/// progress as "[label] ..." on stderr unless `quiet`.
expected<shipped_workspace> ship_workspace(client& c, const std::string& vm, const workspace_plan& plan,
                                           const std::string& label, bool quiet);

/// `vm workspace prepare NAME PATH`: ships the checkout into VM `name`, replacing the workspace
/// at that guest path: into its work disk when it is stopped, through its agent when running.
int cmd_workspace_prepare(const dirs& d, const output_opts& o, const std::string& name, const workspace_opts& w);
/// Why VM `vm`'s workspace no longer matches the checkout it came from ("HEAD 1a2b3c → 4d5e6f",
/// "its files changed"), or nothing when it matches, when the VM has none, or when the
/// checkout cannot be read here (another user's, or gone): what `vm exec` warns about. Reads
/// the whole checkout to compare the digest. On a difference, `resync` (when given) gets the
/// plan that re-ships it as it was shipped (`vm exec --auto-prepare`), from the same scan.
std::optional<std::string> workspace_drift(client& c, const std::string& vm,
                                           std::shared_ptr<workspace_plan>* resync = nullptr);

/// `vm workspace export NAME [-o FILE] [--commits]`: what the guest changed in its workspace
/// since it was shipped, as a patch for `git apply` (or, with `commits`, the guest's commits as
/// a mailbox for `git am`), on stdout or written whole to `out`. The VM must be running (git in
/// the guest makes it). Defined in workspace_export.cpp.
int cmd_workspace_export(const dirs& d, const std::string& name, const std::string& out, bool commits);

/// Your host setup in the guest (docs/workspaces.md): config.toml's `[[file_sync]]` files and
/// the git identity of `git_dir` (a checkout; the home when it is not a directory), read now as
/// the user, warnings printed as "[label] ..." on stderr. Defined in file_sync.cpp.
expected<workspace::home_sync> plan_home_files(const dirs& d, const std::filesystem::path& git_dir,
                                               const std::string& label);
/// Writes `h` into VM `vm` through its agent. A stopped VM is left as it is: the CLI syncs at
/// every start it makes. Prints the keep_existing files the guest kept unless `quiet`.
expected<void> sync_home_files(client& c, const std::string& vm, const workspace::home_sync& h,
                               const std::string& label, bool quiet);
/// Both, for a VM that already exists.
expected<void> sync_home(client& c, const dirs& d, const std::string& vm, const std::filesystem::path& git_dir,
                         const std::string& label, bool quiet);

/// `vm workspace show NAME`: the VM's workspace as the journal has it.
int cmd_workspace_show(const dirs& d, const output_opts& o, const std::string& name);

} // namespace banger::cli
