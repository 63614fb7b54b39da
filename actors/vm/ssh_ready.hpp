// After a start, before a VM is called running: its ssh host key (the daemon's own copy) into
// banger's known_hosts and, when its image runs sshd, sshd listening, so that `vm ssh` works the
// moment `vm create` returns.
// Blocking (agent round trips); runs on the VM's worker.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>

#include "actors/vm/host.hpp"

namespace banger::actors {

struct ssh_ready_config {
  std::filesystem::path known_hosts;      ///< empty: no ssh integration (nothing is done)
  std::chrono::milliseconds limit{90000}; ///< how long sshd may take to listen
  std::chrono::milliseconds poll{50};     ///< one agent `ports` call each: cheap, and sshd is seen soon
};

/// When `host_key_pub` (the public half of the host key the daemon gave the VM, host_disks.cpp)
/// exists, its key goes into known_hosts as "<vm>.vm <type> <key>" and this waits until
/// something in the guest listens on port 22; when it does not (no sshd in the image: `vm ssh`
/// says so later) that is success. The guest supplies no text for known_hosts.
/// unavailable when sshd does not listen within `limit`; internal when the file holds no key;
/// the agent's errors otherwise.
expected<void> wait_ssh_ready(const agent_access& agent, const ssh_ready_config& cfg, const std::string& vm,
                              const std::filesystem::path& host_key_pub, const std::filesystem::path& agent_socket);

} // namespace banger::actors
