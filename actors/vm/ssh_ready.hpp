// After a start, before a VM is called running: its ssh host key into banger's known_hosts and,
// when its image runs sshd, sshd listening, so that `vm ssh` works the moment `vm create` returns.
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
  std::chrono::milliseconds poll{200};
};

/// Reads the guest's /etc/ssh/ssh_host_ed25519_key.pub through the agent; when there is none
/// (no sshd in the image: `vm ssh` says so later) that is success. Otherwise the key goes into
/// known_hosts as "<vm>.vm <type> <key>" (only a well-formed key line: a guest cannot write other
/// text into the file; a malformed one is left out) and this waits until something in the guest
/// listens on port 22.
/// unavailable when sshd does not listen within `limit`; the agent's errors otherwise.
expected<void> wait_ssh_ready(const agent_access& agent, const ssh_ready_config& cfg, const std::string& vm,
                              const std::filesystem::path& agent_socket);

} // namespace banger::actors
