// Your host setup in the guest (workspace.hpp, docs/workspaces.md): config.toml's
// `[[file_sync]]` files and the git identity, read here as the user and written into the running
// guest by the daemon through its agent.
#include <pwd.h>
#include <stdlib.h>
#include <unistd.h>

#include <iostream>

#include <fmt/format.h>

#include "cli/client.hpp"
#include "cli/connection.hpp"
#include "cli/vm_rpc.hpp"
#include "cli/workspace.hpp"
#include "common/config.hpp"
#include "workspace/pieces_capnp.hpp"

namespace banger::cli {

namespace fs = std::filesystem;

namespace {

fs::path home_dir() {
  if (const char* h = std::getenv("HOME"); h && *h == '/')
    return h;
  if (const passwd* pw = ::getpwuid(::getuid()); pw && pw->pw_dir)
    return pw->pw_dir;
  return {};
}

} // namespace

expected<workspace::home_sync> plan_home_files(const dirs& d, const fs::path& git_dir, const std::string& label) {
  auto cfg = load_config(d.config / "config.toml");
  if (!cfg)
    return cfg.err();
  auto home = home_dir();
  if (home.empty()) {
    std::cerr << fmt::format("[{}] file_sync: no home directory (HOME is unset); nothing synced\n", label);
    return workspace::home_sync{};
  }
  std::error_code ec;
  auto plan = workspace::plan_home_sync(cfg->file_sync, home, fs::is_directory(git_dir, ec) ? git_dir : home);
  if (!plan)
    return plan.err();
  for (const auto& w : plan->warnings)
    std::cerr << fmt::format("[{}] {}\n", label, w);
  return plan;
}

expected<void> sync_home_files(client& c, const std::string& vm, const workspace::home_sync& h,
                               const std::string& label, bool quiet) {
  if (h.files.empty())
    return {};
  auto req = c.conn().daemon.vmSyncFilesRequest();
  req.setName(vm);
  auto list = req.initFiles(static_cast<unsigned>(h.files.size()));
  for (unsigned i = 0; i < h.files.size(); ++i) {
    const auto& f = h.files[i];
    list[i].setGuestPath(f.guest_path);
    list[i].setData(workspace::capnp_bytes(f.data));
    list[i].setMode(f.mode);
    list[i].setKeepExisting(f.keep_existing);
  }
  auto r = req.send().wait(c.conn().io.waitScope);
  if (failed(r.getError())) {
    auto e = from_rpc(r.getError());
    if (e.code == errc::not_running) // a stopped VM: its next start through the CLI syncs
      return {};
    e.message = "syncing your files into the guest: " + e.message;
    return e;
  }
  if (!quiet)
    for (auto k : r.getKept())
      std::cerr << fmt::format("[{}] {} is the guest's own (no banger line at its top); left as it is\n", label,
                               k.cStr());
  return {};
}

expected<void> sync_home(client& c, const dirs& d, const std::string& vm, const fs::path& git_dir,
                         const std::string& label, bool quiet) {
  auto h = plan_home_files(d, git_dir, label);
  if (!h)
    return h.err();
  return sync_home_files(c, vm, *h, label, quiet);
}

} // namespace banger::cli
