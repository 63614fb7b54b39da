// bench-workspace: what shipping a checkout costs, printed, never asserted (STYLE: tests never
// assert on wall time). In one run, in bench-vm-run's private world (bench/vm_run/world.hpp: a
// temporary XDG sandbox, a network namespace with no route out, the daemon autostarted in it),
// for two checkouts: a generated repository (10,000 files in 1,000 directories, 100 MB of text,
// one commit, packed) and this project's own checkout (BANGER_SOURCE_DIR, as it is now):
//   1. the host-native floor: `git ls-files -z | tar --null -T - -cf - | wc -c` in the checkout;
//   2. `vm run --rm REPO -- true` against `vm run --rm -- true`, alternating (--runs times each):
//      the difference is what the workspace adds to a `vm run` (target: at most 1.5x the floor);
//   3. `vm workspace prepare` into a running busybox VM and a running debootstrap VM (the agent
//      path), against what a user would do by hand: `git archive HEAD | banger vm exec VM -- tar
//      -x` (busybox VM) and a tar of the tracked files (`git ls-files -z | tar --null -T - -c`;
//      `tar -c .` would take a build tree along) piped to `ssh root@VM tar -x` (the real OpenSSH
//      client through `banger vm ssh`, debootstrap VM; target: prepare at least 5x faster);
//   4. the drift check `vm exec` makes on a VM with a workspace: `vm exec VM -- true` there
//      against the same on a VM without one;
//   5. the daemon's peak RSS (VmHWM) before and after the workspaces moved through it.
// Setup: the kernel, the busybox image and a debootstrap image `deb` (built by a daemon outside
// the namespace, which needs Debian's mirror; the debootstrap tree is cached in
// $BANGER_TEST_CACHE/xdg-cache as the e2e tests cache it).
//
// Usage: bench-workspace [--runs N]. Needs root and QEMU (exit 77 otherwise). At most three
// guests at once. Everything is removed on exit (world.hpp).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <string>
#include <vector>

#include "bench/vm_run/figures.hpp"
#include "bench/vm_run/world.hpp"
#include "common/subprocess.hpp"
#include "tests/support/kernel_cache.hpp"
#include "tests/support/proc.hpp"

namespace {

using namespace banger::bench;

struct config {
  int runs = 3;
};

config parse(int argc, char** argv) { return {parse_runs(argc, argv, 3, "usage: bench-workspace [--runs N]")}; }

std::string q(const std::string& s) { return "'" + s + "'"; }

/// `script` with /bin/sh in the world's environment, timed; fails the bench on a non-zero exit.
timed_run sh(const world& w, const std::string& script, std::chrono::milliseconds timeout = 1200s) {
  auto t = run_timed({"/bin/sh", "-c", script}, w.env, timeout);
  if (t.r.exit_code != 0)
    fail(
      fmt::format("`{}` exited {}{}:\n{}", script, t.r.exit_code, t.r.timed_out ? " (timed out)" : "", tail(t.r.out)));
  return t;
}

/// The banger CLI inside the namespace, as a shell command line.
std::string banger_sh(const world& w, const std::vector<std::string>& args) {
  std::string out;
  for (const auto& a : w.command(args))
    out += q(a) + " ";
  return out;
}

/// 10,000 files of 10,000 bytes of text in 1,000 directories, committed and packed (as a clone
/// is: loose objects would make the workspace's pack re-compress every blob, docs/bench-workspace.md).
void generate(const fs::path& repo) {
  fs::create_directories(repo);
  std::uint64_t x = 0x9e3779b97f4a7c15ull;
  std::string body;
  for (int d = 0; d < 1000; ++d) {
    auto dir = repo / fmt::format("d{:03}/sub{}", d, d % 7);
    fs::create_directories(dir);
    for (int f = 0; f < 10; ++f) {
      body.clear();
      while (body.size() < 10000) { // lines of hex: text that compresses about as source does
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        body += fmt::format("{:016x} {:08x}\n", x, static_cast<std::uint32_t>(x >> 20) % 4096);
      }
      body.resize(10000);
      std::ofstream(dir / fmt::format("f{}.txt", f), std::ios::binary) << body;
    }
  }
  auto r = banger::test::run({"/bin/sh", "-c",
                              "cd " + q(repo.string()) +
                                " && git init -q -b main . && git add -A && git -c user.name=b -c "
                                "user.email=b@example.invalid -c gc.auto=0 commit -q -m generated && git gc -q"},
                             {}, 600s);
  if (r.exit_code != 0)
    fail("generating the repository: " + r.err);
}

/// VmHWM / VmRSS of the daemon, "peak X MiB, now Y MiB".
std::string daemon_memory(const world& w) {
  int pid = w.daemon_pid();
  auto status = banger::test::slurp(fmt::format("/proc/{}/status", pid));
  auto field = [&](const std::string& key) -> double {
    auto at = status.find(key + ":");
    return at == std::string::npos ? -1 : std::atof(status.c_str() + at + key.size() + 1) / 1024.0;
  };
  return fmt::format("peak {:.1f} MiB, now {:.1f} MiB", field("VmHWM"), field("VmRSS"));
}

struct repo_figures {
  std::string name;
  std::uint64_t files = 0, bytes = 0;
  double floor = 0;
  std::vector<double> run_plain, run_ws, ship;
  double prepare_bb = 0, prepare_deb = 0, archive = 0, ssh = 0;
  std::vector<double> exec_ws, exec_plain;
  std::string memory_after;
};

repo_figures measure(const world& w, const config& cfg, const std::string& name, const fs::path& repo) {
  repo_figures f;
  f.name = name;
  fmt::print("{}: {}\n", name, repo.string());
  auto count = sh(w, "cd " + q(repo.string()) + " && git ls-files -z | tr -cd '\\0' | wc -c");
  f.files = std::stoull(count.r.out);
  // 1. The floor: reading and archiving what git tracks, natively.
  auto floor = sh(w, "cd " + q(repo.string()) + " && git ls-files -z | tar --null -T - -cf - | wc -c");
  f.floor = floor.secs;
  f.bytes = std::stoull(floor.r.out);
  fmt::print("  floor (git ls-files | tar | wc): {:.2f} s, {} files, {:.1f} MB\n", f.floor, f.files,
             static_cast<double>(f.bytes) / 1e6);
  // 2. vm run with and without the workspace, alternating.
  for (int i = 1; i <= cfg.runs; ++i) {
    auto plain = w.must({"vm", "run", "--rm", "-q", "--", "true"}, 600s);
    auto ws = w.must({"vm", "run", "--rm", repo.string(), "--", "true"}, 1200s);
    f.run_plain.push_back(plain.secs);
    f.run_ws.push_back(ws.secs);
    // "[vm run] workspace: N files, X at P in S.Ss": the shipping, from the scan's end to landed.
    double ship = -1;
    for (const auto& [at, line] : ws.lines)
      if (auto k = line.find("[vm run] workspace: ");
          k != std::string::npos && line.find(" files, ") != std::string::npos)
        if (auto in = line.rfind(" in "); in != std::string::npos)
          ship = std::atof(line.c_str() + in + 4);
    f.ship.push_back(ship);
    fmt::print("  vm run {}/{}: {:.2f} s plain, {:.2f} s with the workspace (shipping {:.1f} s of it)\n", i, cfg.runs,
               plain.secs, ws.secs, ship);
    std::fflush(stdout);
  }
  // 3. Into running VMs (the lent work disk, docs/workspaces.md), then the by-hand ways. Each
  // starts from a quiet guest: what an earlier step left to write back is synced first, so no
  // figure pays for the one before it.
  auto quiet = [&](const std::string& vm) { w.must({"vm", "exec", vm, "--", "sync"}, 600s); };
  quiet("bb-ws");
  auto prep_bb = w.must({"vm", "workspace", "prepare", "bb-ws", repo.string(), "--guest-path", "/root/" + name}, 1200s);
  f.prepare_bb = prep_bb.secs;
  quiet("deb-ws");
  auto prep_deb =
    w.must({"vm", "workspace", "prepare", "deb-ws", repo.string(), "--guest-path", "/root/" + name}, 1200s);
  f.prepare_deb = prep_deb.secs;
  quiet("bb-ws");
  auto archive = sh(w, "git -C " + q(repo.string()) + " archive HEAD | " +
                         banger_sh(w, {"vm", "exec", "bb-ws", "--", "sh", "-c",
                                       "mkdir -p /root/archive-" + name + " && tar -xf - -C /root/archive-" + name}));
  f.archive = archive.secs;
  quiet("deb-ws");
  // The tracked files (a checkout's `.` may hold a build tree), as the floor reads them.
  auto ssh = sh(w, "cd " + q(repo.string()) + " && git ls-files -z | tar --null -T - -cf - | " +
                     banger_sh(w, {"vm", "ssh", "deb-ws", "--", "sh", "-c",
                                   "mkdir -p /root/ssh-" + name + " && tar -xf - -C /root/ssh-" + name}));
  f.ssh = ssh.secs;
  fmt::print("  into running VMs: prepare {:.2f} s (busybox), {:.2f} s (debootstrap); git archive | vm exec tar "
             "{:.2f} s; tar | ssh tar {:.2f} s\n",
             f.prepare_bb, f.prepare_deb, f.archive, f.ssh);
  // 4. The drift check: exec on the VM whose workspace this is, and on one without any.
  w.must({"vm", "workspace", "prepare", "bb-ws", repo.string()}, 1200s);
  for (int i = 0; i < cfg.runs; ++i) {
    auto with = w.must({"vm", "exec", "bb-ws", "--", "true"});
    auto without = w.must({"vm", "exec", "bb-plain", "--", "true"});
    if (with.r.out.find("moved on") != std::string::npos)
      fail("the drift check found a difference in an unchanged checkout:\n" + with.r.out);
    f.exec_ws.push_back(with.secs);
    f.exec_plain.push_back(without.secs);
  }
  f.memory_after = daemon_memory(w);
  fmt::print("  vm exec -- true: {} with the workspace's drift check, {} without; daemon {}\n", samples(f.exec_ws),
             samples(f.exec_plain), f.memory_after);
  std::fflush(stdout);
  return f;
}

void report(const repo_figures& f) {
  double plain = median(f.run_plain), ws = median(f.run_ws), cost = ws - plain;
  fmt::print("\n  {} ({} files, {:.1f} MB)\n", f.name, f.files, static_cast<double>(f.bytes) / 1e6);
  fmt::print("    host-native floor                     {:7.2f} s\n", f.floor);
  fmt::print("    vm run -- true                 median {:7.2f} s   ({})\n", plain, samples(f.run_plain));
  fmt::print("    vm run REPO -- true            median {:7.2f} s   ({})\n", ws, samples(f.run_ws));
  fmt::print("    the workspace's cost                  {:7.2f} s = {:.2f}x the floor (target <= 1.5x){}\n", cost,
             cost / f.floor, cost / f.floor <= 1.5 ? "" : "  ABOVE TARGET");
  fmt::print("      of which shipping (repository made, streamed, landed) median {:.2f} s\n", median(f.ship));
  fmt::print("    prepare into a running VM             {:7.2f} s busybox, {:.2f} s debootstrap\n", f.prepare_bb,
             f.prepare_deb);
  fmt::print("    git archive | vm exec tar -x          {:7.2f} s   ({:.1f}x prepare, busybox)\n", f.archive,
             f.archive / f.prepare_bb);
  fmt::print("    tar of the files | ssh tar -x         {:7.2f} s   ({:.1f}x prepare, debootstrap; target >= 5x){}\n",
             f.ssh, f.ssh / f.prepare_deb, f.ssh / f.prepare_deb >= 5 ? "" : "  BELOW TARGET");
  fmt::print("    vm exec -- true, drift check   median {:7.2f} s   vs {:.2f} s without a workspace (+{:.2f} s)\n",
             median(f.exec_ws), median(f.exec_plain), median(f.exec_ws) - median(f.exec_plain));
  fmt::print("    daemon memory after it                {}\n", f.memory_after);
}

int bench(const config& cfg, const fs::path& bin) {
  world w(bin);
  fmt::print("bench-workspace: {} runs; sandbox {}, netns {}; load {}\n", cfg.runs, w.root.path.string(), w.ns.name,
             loadavg());
  std::fflush(stdout);

  auto deb = banger::test::cloud_kernel_deb(); // for the results line
  auto debootstrap_secs = build_default_artifacts(w);
  fmt::print("  setup: debootstrap image in {:.1f} s\n", debootstrap_secs);
  w.must({"vm", "run", "--rm", "--", "true"}, 600s); // the shape's boot snapshot
  w.must({"vm", "create", "--name", "bb-ws"}, 600s);
  w.must({"vm", "create", "--name", "bb-plain"}, 600s);
  w.must({"vm", "create", "--name", "deb-ws", "--image", "deb"}, 900s);
  auto memory_before = daemon_memory(w);
  fmt::print("  daemon before any workspace: {}\n", memory_before);
  std::fflush(stdout);

  auto generated = w.root.path / "generated";
  generate(generated);
  std::vector<repo_figures> all;
  all.push_back(measure(w, cfg, "generated", generated));
  all.push_back(measure(w, cfg, "banger", BANGER_SOURCE_DIR));

  for (const char* vm : {"bb-ws", "bb-plain", "deb-ws"})
    w.must({"vm", "delete", "--force", vm}, 300s);
  w.stop_daemon();
  auto leaks = w.leaks();
  fmt::print("\nbench-workspace results ({} {}, busybox and debootstrap guests, 1 vCPU, 512 MiB; load at the end "
             "{})\n",
             deb.package, deb.version, loadavg());
  fmt::print("  daemon memory: {} before any workspace\n", memory_before);
  for (const auto& f : all)
    report(f);
  fmt::print("  leaks: {}\n", leaks.empty() ? std::string("none") : fmt::format("{}", fmt::join(leaks, "; ")));
  std::fflush(stdout);
  return leaks.empty() ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
  try {
    auto cfg = parse(argc, argv);
    if (::geteuid() != 0) {
      std::fprintf(stderr, "bench-workspace: skipped: needs root (a network namespace, the root helper's bridge)\n");
      return 77;
    }
    if (!banger::find_program("qemu-system-x86_64") || !banger::find_program("ip") || !banger::find_program("git")) {
      std::fprintf(stderr, "bench-workspace: skipped: needs qemu-system-x86_64, ip and git\n");
      return 77;
    }
    return bench(cfg, binaries());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench-workspace: %s\n", e.what());
    return 1;
  }
}
