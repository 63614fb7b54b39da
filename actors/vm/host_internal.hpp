// What the pieces of the real vm_host share (private to actors/vm/): the host's environment
// and one set of handlers per resource kind. host.cpp builds its dispatch table from the
// resource_handler specialisations, one per resource_kind (resources.hpp); a kind without one
// does not compile. Each handler lives with its job: host_disks.cpp (overlay, work_disk),
// host_network.cpp (ip, tap, nat), host_vmm.cpp (sockets, vmm). Blocking; VM worker threads.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "actors/vm/disks.hpp"
#include "actors/vm/host.hpp"

namespace banger::actors {

/// The real host's configuration and collaborators. Shared by the workers of every VM: nothing
/// in it changes after make_host.
struct host_env {
  host_config cfg;
  std::shared_ptr<vmm::driver> driver;
  net_call net;
  agent_access agent;

  vm_paths paths(const vm_state& s) const { return paths_of(cfg, s.name); }
  std::filesystem::path image_dir(const vm_state& s) const { return cfg.images / s.image / s.image_version; }
  std::filesystem::path kernel_dir(const vm_state& s) const { return cfg.kernels / s.kernel / s.kernel_version; }
  disk_templates templates() const {
    return {cfg.templates.empty() ? cfg.state / "cache" / "vm-templates" : cfg.templates, cfg.images};
  }
  /// Drops the daemon's connection to the VM's agent (its VMM is going away).
  void forget_agent(const std::string& vm) const {
    if (agent.forget)
      agent.forget(vm);
  }
};

/// One kind's handlers. `wants`: whether a start makes it at all. `planned_id`: its id when known
/// before it is made ("" otherwise). `make`: makes it (id and detail as journaled). `release`:
/// undoes it; idempotent (gone already is success), and given the journaled resource, whose id
/// is empty when only an intent without one is on record.
template <resource_kind K>
struct resource_handler;

#define BANGER_RESOURCE_HANDLER(K)                                                                                     \
  template <>                                                                                                          \
  struct resource_handler<resource_kind::K> {                                                                          \
    static bool wants(const host_env& h);                                                                              \
    static std::string planned_id(const host_env& h, const vm_state& s);                                               \
    static expected<step_result> make(const host_env& h, const vm_state& s, const std::string& op);                    \
    static expected<void> release(const host_env& h, const vm_state& s, const vm_resource& r, const std::string& op);  \
  }

BANGER_RESOURCE_HANDLER(overlay);
BANGER_RESOURCE_HANDLER(work_disk);
BANGER_RESOURCE_HANDLER(ip);
BANGER_RESOURCE_HANDLER(tap);
BANGER_RESOURCE_HANDLER(sockets);
BANGER_RESOURCE_HANDLER(nat);
BANGER_RESOURCE_HANDLER(vmm);

/// The work disk's side of workspaces (host_disks.cpp): landing a stream in it (the VM stopped,
/// its work disk made), and e2fsck and the landing's leftovers removed after one that was cut
/// short.
expected<workspace::landed> land_workspace_on_disk(const host_env& h, const vm_state& s, const std::string& guest_path,
                                                   workspace_feed& feed);
expected<void> repair_work_disk(const host_env& h, const vm_state& s);
/// A running VM's side (host_vmm.cpp): the stream landed by its guest agent.
expected<workspace::landed> land_workspace_in_guest(const host_env& h, const vm_state& s, const std::string& guest_path,
                                                    workspace_feed& feed);

#undef BANGER_RESOURCE_HANDLER

/// make/release of a directory the daemon owns (0700).
expected<void> make_private_dir(const std::filesystem::path& p);

/// The VM's overlay has never been booted: its first start may restore a boot snapshot.
inline std::filesystem::path fresh_marker(const vm_paths& p) { return p.state_dir / "fresh"; }

/// A line of banger's own in the VM's console log (`vm logs` shows it).
void console_note(const vm_paths& p, const std::string& line);

/// A VMM of a start that is being abandoned: SIGKILL, then reaped.
void kill_vmm(const host_env& h, const vmm::vmm_process& proc);

} // namespace banger::actors
