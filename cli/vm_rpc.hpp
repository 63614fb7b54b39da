// What vm.cpp and vm_exec.cpp share at the RPC edge: conversions from the generated types, the
// stage printer for long VM operations, and running a command body against the daemon.
// Include only from cli/*.cpp (generated capnp headers).
#pragma once

#include <chrono>
#include <iostream>

#include <fmt/core.h>

#include "cli/client.hpp"
#include "cli/connection.hpp"
#include "cli/vm.hpp"

namespace banger::cli::vm_detail {

inline vm_info to_vm_info(rpc::VmInfo::Reader r) {
  vm_info v;
  v.name = r.getName();
  v.id = r.getId();
  v.state = r.getState();
  v.image = r.getImage();
  v.image_version = r.getImageVersion();
  v.kernel = r.getKernel();
  v.kernel_version = r.getKernelVersion();
  v.vcpus = r.getVcpus();
  v.memory_mib = r.getMemoryMib();
  v.disk_mib = r.getDiskMib();
  v.ip = r.getIp();
  v.created_ns = r.getCreatedNs();
  v.state_since_ns = r.getStateSinceNs();
  v.last_error = r.getLastError();
  v.pid = r.getPid();
  v.console_log = r.getConsoleLog();
  for (auto s : r.getResources())
    v.resources.emplace_back(s);
  if (r.hasWorkspace()) {
    auto w = r.getWorkspace();
    v.workspace = {w.getHostPath(), w.getGuestPath(), w.getHead(),       w.getBranch(),  w.getDigest(),
                   w.getFiles(),    w.getBytes(),     w.getPreparedNs(), w.getPending(), w.getIncludeUntracked()};
  }
  return v;
}

inline ssh_target to_ssh_target(rpc::SshTarget::Reader r) {
  return {r.getIp(), r.getUser(), r.getIdentityFile(), r.getKnownHostsFile(), r.getHostKeyAlias(), r.getWorkspace()};
}

/// `cmd` on VM `name` over an open connection, its stages printed under `label` unless `quiet`;
/// the error, or the VM as the command left it (none once deleted). Defined in vm.cpp.
expected<std::optional<vm_info>> command_on(client& c, const std::string& name, const actors::vm_command& cmd,
                                            const std::string& label, bool quiet);

/// VM `name` as the daemon shows it, over an open connection. Defined in vm.cpp.
expected<vm_info> show_on(client& c, const std::string& name);

inline std::int64_t wall_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
    .count();
}

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// Prints each finished stage of a VM operation as "[label] stage 0.03s" on stderr (the daemon
/// sends the stage's elapsed milliseconds in `done`). Silent when `quiet`.
class stage_printer final : public rpc::Progress::Server {
public:
  stage_printer(std::string label, bool quiet) : label_(std::move(label)), quiet_(quiet) {}

  kj::Promise<void> update(UpdateContext c) override {
    if (!quiet_) {
      auto p = c.getParams();
      std::cerr << fmt::format("[{}] {} {:.2f}s\n", label_, p.getStage().cStr(), static_cast<double>(p.getDone()) / 1e3)
                << std::flush;
    }
    return kj::READY_NOW;
  }

private:
  std::string label_;
  bool quiet_;
};

} // namespace banger::cli::vm_detail
