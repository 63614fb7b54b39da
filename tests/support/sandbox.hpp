// Test support: one user's banger world (its own XDG state/runtime/config/cache dirs under
// /tmp) and helpers to drive the real binaries in it. Header-only; tests include it.
#pragma once

#include <csignal>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/process.hpp"
#include "tests/support/proc.hpp"

namespace banger::test {

inline std::vector<nlohmann::json> json_lines(const std::string& s) {
  std::vector<nlohmann::json> out;
  std::istringstream in(s);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty())
      out.push_back(nlohmann::json::parse(line));
  return out;
}

template <class F>
bool eventually(F&& f, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (f())
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return f();
}

/// One user's banger world: its own state/runtime/config/cache dirs. Stops its daemon on exit.
struct sandbox {
  temp_dir root{"banger-it"};
  std::map<std::string, std::string> env;
  std::filesystem::path bin = bin_dir();

  explicit sandbox(const std::filesystem::path& base = {}) {
    std::filesystem::path b = base.empty() ? root.path : base;
    env = {{"XDG_STATE_HOME", (b / "state").string()},
           {"XDG_RUNTIME_DIR", (b / "run").string()},
           {"XDG_CONFIG_HOME", (b / "config").string()},
           {"XDG_CACHE_HOME", (b / "cache").string()},
           {"NO_COLOR", "1"}};
  }
  ~sandbox() { stop_all(); }

  std::filesystem::path state() const { return std::filesystem::path(env.at("XDG_STATE_HOME")) / "banger"; }
  std::filesystem::path runtime() const { return std::filesystem::path(env.at("XDG_RUNTIME_DIR")) / "banger"; }
  std::filesystem::path socket() const { return runtime() / "bangerd.sock"; }

  run_result banger(std::vector<std::string> args, std::vector<std::string> prefix = {},
                    std::chrono::milliseconds timeout = std::chrono::seconds(120)) {
    std::vector<std::string> argv = std::move(prefix);
    argv.push_back((bin / "banger").string());
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, env, timeout);
  }
  run_result replay(std::vector<std::string> args) {
    args.insert(args.begin(), (bin / "banger-replay").string());
    return run(args, env);
  }
  int daemon_pid() {
    auto s = read_file(runtime() / "bangerd.pid");
    return s ? std::stoi(*s) : -1;
  }
  void stop_all() {
    int pid = daemon_pid();
    banger({"daemon", "stop"});
    if (pid > 0 && process_alive(pid)) {
      ::kill(pid, SIGKILL);
      eventually([&] { return !process_alive(pid); });
    }
  }
};

} // namespace banger::test
