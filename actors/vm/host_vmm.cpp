// The process kinds on the host (host_internal.hpp): the runtime dir that holds the VMM's sockets
// and the VMM itself, launched by the driver (booting, or resuming the shape's boot snapshot on
// a VM's first start: boot_snapshot.hpp) and brought down by it. Blocking; VM worker threads.
#include <csignal>
#include <fstream>
#include <thread>

#include <fmt/core.h>

#include "actors/vm/boot_snapshot.hpp"
#include "actors/vm/host_internal.hpp"
#include "common/process.hpp"
#include "vmm/proc_scan.hpp"

namespace banger::actors {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

void console_note(const vm_paths& p, const std::string& line) {
  std::ofstream(p.console_log(), std::ios::app) << "banger: " << line << "\n";
}

void kill_vmm(const host_env& h, const vmm::vmm_process& proc) {
  (void)h.driver->kill(proc, SIGKILL);
  h.driver->wait_exit(proc, 10s);
}

bool resource_handler<resource_kind::sockets>::wants(const host_env&) { return true; }

std::string resource_handler<resource_kind::sockets>::planned_id(const host_env& h, const vm_state& s) {
  return h.paths(s).runtime_dir.string();
}

expected<step_result> resource_handler<resource_kind::sockets>::make(const host_env& h, const vm_state& s,
                                                                     const std::string&) {
  auto p = h.paths(s);
  std::error_code ec;
  fs::remove_all(p.runtime_dir, ec); // stale sockets of a VMM that is gone
  if (auto ok = make_private_dir(p.runtime_dir); !ok)
    return ok.err();
  return step_result{p.runtime_dir.string(), {}};
}

expected<void> resource_handler<resource_kind::sockets>::release(const host_env& h, const vm_state& s,
                                                                 const vm_resource&, const std::string&) {
  auto dir = h.paths(s).runtime_dir;
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (ec)
    return make_error(errc::operation_failed, fmt::format("remove {}: {}", dir.string(), ec.message()));
  return {};
}

bool resource_handler<resource_kind::vmm>::wants(const host_env&) { return true; }

std::string resource_handler<resource_kind::vmm>::planned_id(const host_env&, const vm_state&) {
  return {}; // the pid, known once launched
}

expected<step_result> resource_handler<resource_kind::vmm>::make(const host_env& h, const vm_state& s,
                                                                 const std::string&) {
  auto p = h.paths(s);
  vmm::vm_spec spec;
  spec.name = s.name;
  spec.dir = p.runtime_dir;
  spec.console_log = p.console_log();
  auto kdir = h.kernel_dir(s);
  spec.kernel = fs::exists(kdir / "vmlinux") ? kdir / "vmlinux" : kdir / "bzImage";
  if (fs::exists(kdir / "initrd.img"))
    spec.initrd = kdir / "initrd.img";
  if (!fs::exists(spec.kernel))
    return make_error(errc::not_found,
                      fmt::format("kernel {} version {} has no vmlinux or bzImage in {}: it was removed; import "
                                  "it again",
                                  s.kernel, s.kernel_version, kdir.string()));
  spec.root_disk = p.overlay();
  spec.work_disk = p.work_disk();
  spec.vcpus = s.vcpus;
  spec.memory_mib = s.memory_mib;
  if (h.cfg.network) {
    spec.tap = tap_of(s);
    spec.ip_cidr = fmt::format("{}/{}", s.ip(), h.cfg.net.prefix);
    spec.gateway = format_ipv4(h.cfg.net.gateway());
  }
  auto made = [&](const vmm::vmm_process& proc) {
    return step_result{std::to_string(proc.pid),
                       format_vmm_detail({proc.start_time, proc.cmdline_sha256, h.cfg.boot_id})};
  };
  // A VM's first start resumes a booted guest of its shape when it can; the marker goes
  // first, so that whatever happens next, later starts boot.
  std::error_code ec;
  if (fs::remove(fresh_marker(p), ec) && h.cfg.boot_snapshots && h.agent.configure &&
      spec.init.ends_with("/banger-init")) {
    auto restored = launch_restored(h, s, p, spec);
    if (restored)
      return made(*restored);
    console_note(p, fmt::format("boot snapshot not used: {}; booting instead", restored.err().message));
    // The overlay may be the snapshot's, run for a moment: boot from a clean one.
    if (auto ok = make_overlay(h.templates(), s.image, s.image_version, p.overlay()); !ok)
      return ok.err();
  }
  auto proc = h.driver->launch(spec);
  if (!proc)
    return proc.err();
  return made(*proc);
}

expected<void> resource_handler<resource_kind::vmm>::release(const host_env& h, const vm_state& s, const vm_resource&,
                                                             const std::string&) {
  h.forget_agent(s.name);
  auto proc = vmm_of(h.cfg, s);
  if (!proc) {
    // Intended, never recorded as launched: a failed launch cleans up after itself, but a
    // daemon that died between the launch and its record left the VMM running. It is the
    // one naming this VM's QMP socket.
    for (int pid : vmm::vmm_pids_naming(h.paths(s).qmp_socket())) {
      ::kill(pid, SIGKILL);
      for (int i = 0; i < 100 && process_alive(pid); ++i)
        std::this_thread::sleep_for(50ms);
    }
    return {};
  }
  if (h.driver->matches(*proc)) {
    (void)h.driver->kill(*proc, SIGKILL);
    if (!h.driver->wait_exit(*proc, 10s))
      return make_error(errc::operation_failed, fmt::format("VMM pid {} did not exit after SIGKILL", proc->pid));
  }
  return {};
}

expected<workspace::landed> land_workspace_in_guest(const host_env& h, const vm_state& s, const std::string& guest_path,
                                                    workspace_feed& feed) {
  if (!h.agent.land_workspace)
    return make_error(errc::internal, "no guest agent access to land a workspace with (a bug in bangerd)");
  auto socket = h.paths(s).agent_socket();
  auto to = workspace::remote_receiver(
    [&](const workspace::stream_begin& b) { return h.agent.land_workspace(s.name, socket, b); }, guest_path);
  return feed.pump(*to);
}

} // namespace banger::actors
