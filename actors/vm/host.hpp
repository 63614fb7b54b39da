// The real vm_host: a VM's resources on this machine. Disks are files in the VM's state dir
// (qcow2 overlay on the image's immutable rootfs, a raw ext4 work disk grown from the image's
// work seed), the network comes from the netpriv actor, the VMM from a vmm::driver, and the
// guest agent is reached through functions the daemon supplies (its connections live on the
// RPC thread). Blocking: runs on a VM's worker thread. host.cpp dispatches each resource kind
// to its handler (host_internal.hpp: host_disks.cpp, host_network.cpp, host_vmm.cpp); boot
// snapshots, known_hosts and ssh readiness have files of their own.
//
//   STATE/vms/<name>/    overlay.qcow2  work.ext4  console.log
//   RUNTIME/vms/<name>/  qmp.sock  agent.sock  qemu.stderr
//   STATE/cache/vm-templates/  the disks' templates, copied per VM (disks.hpp), and boot
//                              snapshots (boot-<key>/: ram, state, overlay.qcow2, console.log)
//   STATE/vms/<name>/fresh     its overlay has never been booted: the first start may restore
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "actors/netpriv/netpriv.hpp"
#include "actors/vm/pipeline.hpp"
#include "vmm/vmm.hpp"
#include "workspace/land_remote.hpp"

namespace banger::actors {

/// The guest agent as the host sees it. Each function blocks the calling (worker) thread and
/// connects through `socket` (the VM's virtio-serial socket) when there is no connection yet.
struct agent_access {
  /// Until the agent behind `socket` answers, or `limit` passes.
  std::function<expected<void>(const std::string& vm, const std::filesystem::path& socket,
                               std::chrono::milliseconds limit)>
    wait_ready;
  /// Asks the guest to sync and power off (returns before the power goes).
  std::function<expected<void>(const std::string& vm, const std::filesystem::path& socket)> poweroff;
  /// Whether something in the guest listens on TCP `port`.
  std::function<expected<bool>(const std::string& vm, const std::filesystem::path& socket, std::uint16_t port)>
    listening;
  /// A guest restored from a boot snapshot: its settings (banger-init's command-line syntax),
  /// the host's wall clock (ns since the epoch) and entropy, through the agent's configure.
  std::function<expected<void>(const std::string& vm, const std::filesystem::path& socket, const std::string& settings,
                               std::int64_t realtime_ns, const std::string& entropy)>
    configure;
  /// Starts landing a workspace in the running guest (workspace/land_remote.hpp).
  std::function<expected<std::unique_ptr<workspace::remote_landing>>(
    const std::string& vm, const std::filesystem::path& socket, const workspace::stream_begin& b)>
    land_workspace;
  /// Has the guest let go of its work disk / mount it again (agent.capnp releaseWorkDisk,
  /// attachWorkDisk).
  std::function<expected<void>(const std::string& vm, const std::filesystem::path& socket)> release_work_disk;
  std::function<expected<void>(const std::string& vm, const std::filesystem::path& socket)> attach_work_disk;
  /// Drops the daemon's connection to the VM's agent (the VMM is going away).
  std::function<void(const std::string& vm)> forget;
};

struct host_config {
  std::filesystem::path state, runtime;  ///< the daemon's dirs
  std::filesystem::path images, kernels; ///< STATE/images, STATE/kernels
  std::filesystem::path templates;       ///< STATE/cache/vm-templates (disks.hpp); empty: that default
  std::filesystem::path ssh_public_key;  ///< put into /root/.ssh/authorized_keys of every VM
  std::filesystem::path known_hosts;     ///< banger's known_hosts: "<name>.vm <host key>"
  std::string bridge;
  subnet net;
  bool nat = false;
  bool network = true; ///< false: VMs get no network device (no helper needed)
  /// A VM's first start resumes a booted guest of its shape (docs/boot-snapshots.md) instead
  /// of booting one; false: every start boots.
  bool boot_snapshots = true;
  std::string boot_id; ///< this boot's id, recorded with every VMM (its adoption needs the same)
  std::chrono::milliseconds agent_timeout{90000};
  std::chrono::milliseconds stop_timeout{20000};
};

/// Asks the netpriv actor (blocking).
using net_call = std::function<net_reply(net_request)>;

struct vm_paths {
  std::filesystem::path state_dir, runtime_dir;
  std::filesystem::path overlay() const { return state_dir / "overlay.qcow2"; }
  std::filesystem::path work_disk() const { return state_dir / "work.ext4"; }
  std::filesystem::path console_log() const { return state_dir / "console.log"; }
  /// The public half of the host key written into the work disk (guest_protocol.hpp), the
  /// daemon's own copy for known_hosts; absent when the image has no sshd.
  std::filesystem::path host_key_pub() const { return state_dir / "ssh_host_ed25519_key.pub"; }
  std::filesystem::path qmp_socket() const { return runtime_dir / "qmp.sock"; }
  std::filesystem::path agent_socket() const { return runtime_dir / "agent.sock"; }
};

vm_paths paths_of(const host_config& c, const std::string& vm);

/// "bgt" + the VM's id.
std::string tap_of(const vm_state& s);

/// The VMM process the journal says runs the VM (from its "vmm" resource), if any.
std::optional<vmm::vmm_process> vmm_of(const host_config& c, const vm_state& s);

std::unique_ptr<vm_host> make_host(host_config cfg, std::shared_ptr<vmm::driver> driver, net_call net,
                                   agent_access agent);

} // namespace banger::actors
