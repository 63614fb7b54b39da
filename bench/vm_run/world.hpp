// bench-vm-run's private banger world (vm_run.bench.cpp describes the whole bench): a network
// namespace with only lo up, XDG directories under a temporary directory, and the banger CLI run
// inside both, each output line timed. Also how the bench runs programs (run_timed) and fails
// (bench_failure, which main() reports). The world's destructor tears everything down, after a
// failure too. The bench's main thread owns the world; cli() is also called from step 4's
// threads, one per CLI process.
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <fmt/format.h>
#include <map>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <utility>
#include <vector>

#include "common/subprocess.hpp"
#include "tests/support/proc.hpp"

namespace banger::bench {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

struct bench_failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] void fail(const std::string& what);

/// The directory holding banger's binaries: BANGER_BIN_DIR, else this executable's own; fails
/// unless banger, bangerd, the helper, the agent and init are all built there.
fs::path binaries();

double seconds_since(steady::time_point t);

/// The end of `s` (its last `n` bytes) for an error message.
std::string tail(const std::string& s, std::size_t n = 1500);

/// One program run to completion: stdout and stderr interleaved, each line with the time it
/// arrived (seconds after the start), and the wall time until the process exited.
struct timed_run {
  banger::process_result r;
  double secs = 0;
  std::vector<std::pair<double, std::string>> lines;
};

timed_run run_timed(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
                    std::chrono::milliseconds timeout);

/// A network namespace with only `lo` up, deleted on destruction.
struct netns {
  std::string name = fmt::format("banger-bench-{}", ::getpid());
  netns();
  ~netns();
  netns(const netns&) = delete;
  netns& operator=(const netns&) = delete;

  std::vector<std::string> links() const;
};

/// The private banger world: XDG dirs under a temporary directory, every CLI call inside the
/// namespace. The destructor (also on failure) deletes any VM left, stops the daemon, kills any
/// QEMU still naming the sandbox, then the namespace goes and the directory is removed.
struct world {
  netns ns;                                    // destroyed last
  banger::test::temp_dir root{"banger-bench"}; // short: VM socket paths must fit sockaddr_un
  fs::path bin;
  std::map<std::string, std::string> env;

  explicit world(fs::path bin_dir);
  ~world() { teardown(); }
  world(const world&) = delete;
  world& operator=(const world&) = delete;

  fs::path state() const { return root.path / "state" / "banger"; }
  fs::path runtime() const { return root.path / "run" / "banger"; }

  std::vector<std::string> command(const std::vector<std::string>& args) const;
  timed_run cli(const std::vector<std::string>& args, std::chrono::milliseconds timeout = 300s) const;
  timed_run must(const std::vector<std::string>& args, std::chrono::milliseconds timeout = 300s) const;

  int daemon_pid() const;
  void stop_daemon();

  /// QEMU processes whose command line names the sandbox: "pid cmdline" lines.
  std::vector<std::string> our_qemus() const;

  /// Everything a VM can leave behind, as text; empty when nothing is.
  std::vector<std::string> leaks() const;

  void teardown();
};

/// `--runs N` as the only argument (default `runs`); fails with `usage` on anything else.
int parse_runs(int argc, char** argv, int runs, const char* usage);

/// What the guest benches set up first, in `w`'s state with its cache dir set to the test
/// cache ($BANGER_TEST_CACHE/xdg-cache, where the debootstrap tree is kept across runs): kernel
/// "default" (the cached Debian cloud kernel), image "default" (busybox) and image "deb"
/// (debootstrap), built by a daemon outside the namespace (debootstrap needs Debian's mirror),
/// which is stopped after. Returns the seconds the debootstrap build took.
double build_default_artifacts(world& w);

} // namespace banger::bench
