// See ssh_ready.hpp.
#include "actors/vm/ssh_ready.hpp"

#include <thread>

#include <fmt/core.h>

#include "actors/vm/known_hosts.hpp"

namespace banger::actors {

expected<void> wait_ssh_ready(const agent_access& agent, const ssh_ready_config& cfg, const std::string& vm,
                              const std::filesystem::path& agent_socket) {
  if (!agent.read_file || cfg.known_hosts.empty())
    return {};
  auto pub = agent.read_file(vm, agent_socket, "/etc/ssh/ssh_host_ed25519_key.pub");
  if (!pub)
    return {}; // no sshd in this image: `vm ssh` will say so
  // Only a well-formed key line reaches known_hosts; anything else is left out (then `vm ssh`
  // says the VM has no host key on record).
  if (auto key = host_key_of(*pub); !key.empty())
    if (auto ok = update_known_hosts(cfg.known_hosts, vm + ".vm", key); !ok)
      return ok;
  // The image has sshd: ready means `vm ssh` works, so wait for it to listen (it starts beside
  // the agent and takes a few seconds under TCG).
  if (!agent.listening)
    return {};
  auto deadline = std::chrono::steady_clock::now() + cfg.limit;
  for (;;) {
    auto l = agent.listening(vm, agent_socket, 22);
    if (!l)
      return make_error(l.err().code, "waiting for sshd: " + l.err().message);
    if (*l)
      return {};
    if (std::chrono::steady_clock::now() >= deadline)
      return make_error(
        errc::unavailable,
        fmt::format("sshd in VM {} did not start listening on port 22; see `banger vm logs {}`", vm, vm));
    std::this_thread::sleep_for(cfg.poll);
  }
}

} // namespace banger::actors
