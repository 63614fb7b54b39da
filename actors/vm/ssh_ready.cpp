// See ssh_ready.hpp.
#include "actors/vm/ssh_ready.hpp"

#include <thread>

#include <fmt/core.h>

#include "actors/vm/known_hosts.hpp"
#include "common/process.hpp"

namespace banger::actors {

expected<void> wait_ssh_ready(const agent_access& agent, const ssh_ready_config& cfg, const std::string& vm,
                              const std::filesystem::path& host_key_pub, const std::filesystem::path& agent_socket) {
  if (cfg.known_hosts.empty())
    return {};
  std::error_code ec;
  if (!std::filesystem::exists(host_key_pub, ec))
    return {}; // no sshd in this image: `vm ssh` will say so
  auto pub = read_file(host_key_pub);
  if (!pub)
    return pub.err();
  // The daemon's own copy of the key it gave the guest: nothing the guest says reaches the file.
  auto key = host_key_of(*pub);
  if (key.empty())
    return make_error(
      errc::internal,
      fmt::format("{} does not hold an ssh public key; delete the VM and create it again", host_key_pub.string()));
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
