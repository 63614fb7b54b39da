// See world.hpp.
#include "bench/vm_run/world.hpp"

#include <csignal>
#include <cstdlib>
#include <sstream>
#include <thread>

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "tests/support/kernel_cache.hpp"

namespace banger::bench {

void fail(const std::string& what) { throw bench_failure(what); }

double seconds_since(steady::time_point t) { return std::chrono::duration<double>(steady::now() - t).count(); }

std::string tail(const std::string& s, std::size_t n) { return s.size() > n ? s.substr(s.size() - n) : s; }

timed_run run_timed(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
                    std::chrono::milliseconds timeout) {
  timed_run t;
  banger::process_options o;
  o.env = env;
  o.timeout = timeout;
  o.merge_stderr = true;
  auto t0 = steady::now();
  o.on_line = [&](std::string_view line) { t.lines.emplace_back(seconds_since(t0), std::string(line)); };
  t.r = banger::run_process(argv, o);
  t.secs = seconds_since(t0);
  return t;
}

netns::netns() {
  banger::test::run({"ip", "netns", "del", name});
  auto r = banger::test::run({"ip", "netns", "add", name});
  if (r.exit_code != 0)
    fail("ip netns add " + name + " failed: " + r.err);
  r = banger::test::run({"ip", "-n", name, "link", "set", "lo", "up"});
  if (r.exit_code != 0) {
    banger::test::run({"ip", "netns", "del", name});
    fail("ip -n " + name + " link set lo up failed: " + r.err);
  }
}

netns::~netns() { banger::test::run({"ip", "netns", "del", name}); }

std::vector<std::string> netns::links() const {
  auto r = banger::test::run({"ip", "-n", name, "-br", "link"});
  std::vector<std::string> out;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);)
    if (!line.empty())
      out.push_back(line.substr(0, line.find_first_of(" @")));
  return out;
}

fs::path binaries() {
  fs::path dir;
  if (const char* d = std::getenv("BANGER_BIN_DIR"); d && *d) {
    dir = d;
  } else {
    std::error_code ec;
    auto self = fs::read_symlink("/proc/self/exe", ec);
    if (ec)
      fail("readlink /proc/self/exe: " + ec.message());
    dir = self.parent_path();
  }
  for (const char* b : {"banger", "bangerd", "banger-helper", "banger-agent", "banger-init"})
    if (!fs::exists(dir / b))
      fail(fmt::format("{} is not built in {} (ninja {})", b, dir.string(), b));
  return dir;
}

world::world(fs::path bin_dir) : bin(std::move(bin_dir)) {
  env = {{"XDG_STATE_HOME", (root.path / "state").string()},
         {"XDG_RUNTIME_DIR", (root.path / "run").string()},
         {"XDG_CONFIG_HOME", (root.path / "config").string()},
         {"XDG_CACHE_HOME", (root.path / "cache").string()},
         {"NO_COLOR", "1"}};
}

std::vector<std::string> world::command(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {"ip", "netns", "exec", ns.name, (bin / "banger").string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

timed_run world::cli(const std::vector<std::string>& args, std::chrono::milliseconds timeout) const {
  return run_timed(command(args), env, timeout);
}

timed_run world::must(const std::vector<std::string>& args, std::chrono::milliseconds timeout) const {
  auto t = cli(args, timeout);
  if (t.r.exit_code != 0)
    fail(fmt::format("`banger {}` exited {}{}:\n{}", fmt::join(args, " "), t.r.exit_code,
                     t.r.timed_out ? " (timed out)" : "", tail(t.r.out)));
  return t;
}

int world::daemon_pid() const {
  auto s = banger::test::slurp(runtime() / "bangerd.pid");
  return s.empty() ? -1 : std::atoi(s.c_str());
}

void world::stop_daemon() {
  int pid = daemon_pid();
  cli({"daemon", "stop"}, 60s);
  if (pid > 0 && ::kill(pid, 0) == 0) {
    auto deadline = steady::now() + 5s;
    while (::kill(pid, 0) == 0 && steady::now() < deadline)
      std::this_thread::sleep_for(50ms);
    if (::kill(pid, 0) == 0)
      ::kill(pid, SIGKILL);
  }
}

std::vector<std::string> world::our_qemus() const {
  auto q = banger::test::run({"pgrep", "-af", "qemu-system"});
  std::vector<std::string> out;
  std::istringstream in(q.out);
  for (std::string line; std::getline(in, line);)
    if (line.find(root.path.string()) != std::string::npos)
      out.push_back(line);
  return out;
}

std::vector<std::string> world::leaks() const {
  std::vector<std::string> out;
  for (const auto& l : ns.links())
    if (l.rfind("bgt", 0) == 0)
      out.push_back("tap " + l);
  for (const auto& q : our_qemus())
    out.push_back("qemu " + q);
  std::error_code ec;
  for (const auto& dir : {state() / "vms", runtime() / "vms"})
    if (fs::exists(dir, ec))
      for (const auto& e : fs::directory_iterator(dir, ec))
        out.push_back("dir " + e.path().string());
  return out;
}

void world::teardown() {
  if (int pid = daemon_pid(); pid > 0 && ::kill(pid, 0) == 0) {
    // Only after a failure is anything left; a clean run has deleted every VM already.
    banger::process_options o;
    o.env = env;
    o.timeout = 30s;
    auto l = banger::run_process(command({"vm", "list", "-a", "--json"}), o);
    auto vms = nlohmann::json::parse(l.out, nullptr, false);
    if (vms.is_array())
      for (const auto& v : vms)
        if (v.contains("name") && v["name"].is_string())
          cli({"vm", "delete", "--force", v["name"].get<std::string>()}, 60s);
    stop_daemon();
  }
  for (const auto& q : our_qemus()) // Defense in depth: never leave a guest running.
    ::kill(std::atoi(q.c_str()), SIGKILL);
}

int parse_runs(int argc, char** argv, int runs, const char* usage) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--runs" && i + 1 < argc)
      runs = std::stoi(argv[++i]);
    else
      fail(usage);
  }
  if (runs <= 0)
    fail("--runs must be positive");
  return runs;
}

double build_default_artifacts(world& w) {
  const char* cache = std::getenv("BANGER_TEST_CACHE");
  w.env["XDG_CACHE_HOME"] = std::string(cache && *cache ? cache : "/var/cache/banger-test") + "/xdg-cache";
  auto deb = banger::test::cloud_kernel_deb();
  auto direct = [&](const std::vector<std::string>& args) {
    std::vector<std::string> argv{(w.bin / "banger").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    auto t = run_timed(argv, w.env, 1800s);
    if (t.r.exit_code != 0)
      fail(fmt::format("`banger {}` exited {}:\n{}", fmt::join(args, " "), t.r.exit_code, tail(t.r.out)));
    return t;
  };
  direct({"kernel", "import", "default", "--deb", deb.path.string()});
  direct({"image", "build", "default", "--busybox"});
  auto debimg = direct({"image", "build", "deb", "--debootstrap"});
  direct({"daemon", "stop"});
  return debimg.secs;
}

} // namespace banger::bench
