// Test fakes of the real host's collaborators (host_internal.hpp): a vmm::driver that launches
// nothing (it records what it was asked and can write a console script to the spec's console
// log, as banger-init would), and the agent and network functions as recorders. Header-only;
// the host's unit tests include it.
#pragma once

#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "actors/vm/host_internal.hpp"

namespace banger::actors::fakes {

struct fake_driver final : vmm::driver {
  std::vector<vmm::vm_spec> launched;
  std::vector<std::string> calls; ///< "save PATH", "restore PATH", "quit PID", "kill PID SIG", "powerdown PID"
  std::set<int> alive, paused;
  int next_pid = 4000;
  std::string console_script;  ///< appended to a launched spec's console log
  bool exit_at_launch = false; ///< the launched VMM dies at once (alive stays without it)
  bool fail_restore = false;
  bool quit_exits = true;

  std::string_view name() const override { return "fake"; }
  expected<vmm::vmm_process> launch(const vmm::vm_spec& s) override {
    launched.push_back(s);
    if (!console_script.empty())
      std::ofstream(s.console_log, std::ios::app) << console_script;
    vmm::vmm_process p;
    p.pid = next_pid++;
    p.start_time = 77;
    p.cmdline_sha256 = "abc";
    p.qmp_socket = s.dir / "qmp.sock";
    p.agent_socket = s.dir / "agent.sock";
    if (!exit_at_launch)
      alive.insert(p.pid);
    return p;
  }
  bool matches(const vmm::vmm_process& p) const override { return alive.count(p.pid) > 0; }
  expected<std::string> status(const vmm::vmm_process& p) override {
    return std::string(paused.count(p.pid) ? "paused" : "running");
  }
  expected<void> powerdown(const vmm::vmm_process& p) override {
    calls.push_back("powerdown " + std::to_string(p.pid));
    return {};
  }
  expected<void> quit(const vmm::vmm_process& p) override {
    calls.push_back("quit " + std::to_string(p.pid));
    if (quit_exits)
      alive.erase(p.pid);
    return {};
  }
  expected<void> pause(const vmm::vmm_process& p) override {
    calls.push_back("pause " + std::to_string(p.pid));
    paused.insert(p.pid);
    return {};
  }
  expected<void> resume(const vmm::vmm_process& p) override {
    calls.push_back("resume " + std::to_string(p.pid));
    paused.erase(p.pid);
    return {};
  }
  bool wait_exit(const vmm::vmm_process& p, std::chrono::milliseconds) override { return !alive.count(p.pid); }
  std::string guest_shape(const vmm::vm_spec& s) const override {
    return "shape " + std::to_string(s.vcpus) + " " + std::to_string(s.memory_mib) + " " + s.kernel.string();
  }
  expected<void> save(const vmm::vmm_process& p, const std::filesystem::path& state) override {
    calls.push_back("save " + state.string());
    std::ofstream(state) << "device state of " << p.pid;
    return {};
  }
  expected<void> restore(const vmm::vmm_process&, const std::filesystem::path& state) override {
    calls.push_back("restore " + state.string());
    if (fail_restore)
      return make_error(errc::operation_failed, "fake: cannot load the state");
    return {};
  }
  expected<void> kill(const vmm::vmm_process& p, int signo) override {
    calls.push_back("kill " + std::to_string(p.pid) + " " + std::to_string(signo));
    alive.erase(p.pid);
    return {};
  }
};

/// The agent as a recorder: configure and poweroff calls and listening answers.
struct fake_agent {
  std::vector<std::string> calls;
  int listening_after = 0; ///< listening() answers true from this call on
  int listening_calls = 0;
  std::string settings, entropy;
  std::int64_t clock_ns = 0;
  bool poweroff_works = true;

  agent_access access() {
    agent_access a;
    a.wait_ready = [this](const std::string& vm, const std::filesystem::path&, std::chrono::milliseconds) {
      calls.push_back("wait_ready " + vm);
      return expected<void>{};
    };
    a.poweroff = [this](const std::string& vm, const std::filesystem::path&) -> expected<void> {
      calls.push_back("poweroff " + vm);
      if (!poweroff_works)
        return make_error(errc::unavailable, "fake agent: no");
      return {};
    };
    a.listening = [this](const std::string&, const std::filesystem::path&, std::uint16_t port) -> expected<bool> {
      calls.push_back("listening " + std::to_string(port));
      return ++listening_calls > listening_after;
    };
    a.configure = [this](const std::string& vm, const std::filesystem::path&, const std::string& s, std::int64_t ns,
                         const std::string& e) {
      calls.push_back("configure " + vm);
      settings = s;
      clock_ns = ns;
      entropy = e;
      return expected<void>{};
    };
    a.forget = [this](const std::string& vm) { calls.push_back("forget " + vm); };
    return a;
  }
};

/// The netpriv actor as a recorder that grants every request.
struct fake_net {
  std::vector<net_request> requests;
  net_call call() {
    return [this](net_request rq) -> net_reply {
      requests.push_back(rq);
      if (std::holds_alternative<net_cmd::lease>(rq.command))
        return std::string("172.30.0.9");
      return std::string();
    };
  }
};

} // namespace banger::actors::fakes
