// bench-image-pull: what pulling an image from a registry costs, printed, never asserted (STYLE:
// tests never assert on wall time). In one run, in bench-vm-run's private world (a temporary
// XDG sandbox, a network namespace with no route out, the daemon autostarted in it), with a
// real registry (Debian's docker-registry, tests/support/registry.hpp) on 127.0.0.1 in the
// namespace serving a 3-layer debootstrap image:
//   layer 1  the debootstrap tree of image `deb` (Debian bookworm, banger's default packages)
//   layer 2  the host's /usr/share/doc (thousands of small files)
//   layer 3  /srv/app and a whiteout of /usr/share/man from layer 1
// alternating, --runs times each:
//   1. the baseline: `skopeo copy` to an OCI layout + `umoci unpack` + `mkfs.ext4 -d` of the
//      unpacked rootfs (what a script without banger does);
//   2. `banger image pull` with a cold blob cache (pruned first) and a freshly started daemon,
//      whose peak RSS (VmHWM) after the pull is its memory figure (target: at most 0.4x the
//      baseline's time, peak RSS under 64 MiB);
// then once: a warm-cache pull (every blob cached), and `vm run --rm --image REF -- true` of
// the freshly pulled image (no boot snapshot of it yet) and again (with one).
// Setup: the kernel, the busybox image and the debootstrap image `deb` (built by a daemon
// outside the namespace, which needs Debian's mirror; its tree is cached in
// $BANGER_TEST_CACHE/xdg-cache as the e2e tests cache it).
//
// Usage: bench-image-pull [--runs N]. Needs root, QEMU, docker-registry, skopeo and umoci (exit
// 77 otherwise). Everything is removed on exit (world.hpp).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <fstream>
#include <string>
#include <vector>

#include "bench/vm_run/figures.hpp"
#include "bench/vm_run/world.hpp"
#include "common/subprocess.hpp"
#include "tests/support/kernel_cache.hpp"
#include "tests/support/proc.hpp"
#include "tests/support/registry.hpp"

namespace {

using namespace banger::bench;

struct config {
  int runs = 3;
};

config parse(int argc, char** argv) { return {parse_runs(argc, argv, 3, "usage: bench-image-pull [--runs N]")}; }

/// The daemon's VmHWM in MiB.
double daemon_peak_mib(const world& w) {
  auto status = banger::test::slurp(fmt::format("/proc/{}/status", w.daemon_pid()));
  auto at = status.find("VmHWM:");
  return at == std::string::npos ? -1 : std::atof(status.c_str() + at + 6) / 1024.0;
}

timed_run must_run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout = 900s) {
  auto t = run_timed(argv, {}, timeout);
  if (t.r.exit_code != 0)
    fail(fmt::format("`{}` exited {}:\n{}", fmt::join(argv, " "), t.r.exit_code, tail(t.r.out)));
  return t;
}

/// The 3-layer image, pushed to `reg` as bench/deb:1; its uncompressed size in bytes.
std::uint64_t build_and_push(banger::test::test_registry& reg, banger::test::oci_layout& layout,
                             const fs::path& tree_tar) {
  layout.new_image("deb");
  layout.add_layer("deb", "deb", [&](const fs::path& root) {
    must_run({"/usr/bin/tar", "--zstd", "-xpf", tree_tar.string(), "-C", root.string()});
  });
  layout.add_layer("deb", "deb", [](const fs::path& root) {
    must_run({"/bin/cp", "-a", "/usr/share/doc/.", (root / "usr/share/doc").string()});
  });
  layout.add_layer("deb", "deb", [](const fs::path& root) {
    fs::create_directories(root / "srv/app");
    std::ofstream(root / "srv/app/run.sh") << "#!/bin/sh\necho app\n";
    fs::remove_all(root / "usr/share/man");
  });
  layout.configure("deb", {"--config.workingdir", "/srv/app", "--config.cmd", "/bin/sh"});
  reg.push(layout, "deb", "bench/deb:1");
  std::uint64_t compressed = 0;
  for (const auto& l : layout.layers_of("deb"))
    compressed += l["size"].get<std::uint64_t>();
  return compressed;
}

int bench(const config& cfg, const fs::path& bin) {
  world w(bin);
  fmt::print("bench-image-pull: {} runs; sandbox {}, netns {}; load {}\n", cfg.runs, w.root.path.string(), w.ns.name,
             loadavg());
  std::fflush(stdout);

  auto debootstrap_secs = build_default_artifacts(w);
  fmt::print("  setup: debootstrap image in {:.1f} s\n", debootstrap_secs);
  fs::path tree_tar;
  for (const auto& e : fs::directory_iterator(fs::path(w.env["XDG_CACHE_HOME"]) / "banger" / "debootstrap"))
    if (e.path().extension() == ".zst")
      tree_tar = e.path();
  if (tree_tar.empty())
    fail("no debootstrap tree in the cache after `image build deb --debootstrap`");

  std::vector<std::string> ns_exec = {"/usr/bin/env", "ip", "netns", "exec", w.ns.name};
  banger::test::test_registry reg(ns_exec, 5000);
  banger::test::oci_layout layout;
  auto compressed = build_and_push(reg, layout, tree_tar);
  std::string ref = reg.host() + "/bench/deb:1";
  fmt::print("  setup: image {} pushed, 3 layers, {:.1f} MiB compressed\n", ref, compressed / 1048576.0);
  std::fflush(stdout);

  std::vector<double> base, cold, peaks, fresh;
  auto scratch = w.root.path / "baseline";
  for (int i = 0; i < cfg.runs; ++i) {
    // 1. skopeo copy + umoci unpack + mkfs.ext4 -d
    fs::remove_all(scratch);
    fs::create_directories(scratch);
    auto t0 = steady::now();
    auto copy = ns_exec;
    copy.insert(copy.end(), {"/usr/bin/skopeo", "copy", "-q", "--src-tls-verify=false", "docker://" + ref,
                             "oci:" + (scratch / "layout").string() + ":1"});
    must_run(copy);
    must_run(
      {"/usr/bin/umoci", "unpack", "--image", (scratch / "layout").string() + ":1", (scratch / "bundle").string()});
    auto du = must_run({"/usr/bin/du", "-sb", (scratch / "bundle/rootfs").string()});
    auto bytes = std::strtoull(du.r.out.c_str(), nullptr, 10);
    auto size_mib = bytes * 3 / 2 / 1048576 + 128;
    must_run({"/sbin/mkfs.ext4", "-q", "-F", "-d", (scratch / "bundle/rootfs").string(),
              (scratch / "rootfs.ext4").string(), fmt::format("{}M", size_mib)});
    base.push_back(seconds_since(t0));
    fs::remove_all(scratch);

    // 2. banger image pull, cold cache, fresh daemon
    w.must({"image", "cache", "prune"});
    w.cli({"image", "rm", "pulled"});
    w.stop_daemon();
    w.must({"daemon", "start"});
    fresh.push_back(daemon_peak_mib(w));
    auto p = w.must({"image", "pull", ref, "--insecure-registry", "--name", "pulled"}, 900s);
    cold.push_back(p.secs);
    peaks.push_back(daemon_peak_mib(w));
    fmt::print("  run {}: baseline {:.2f} s, banger pull {:.2f} s (daemon peak {:.1f} MiB, {:.1f} MiB before it)\n",
               i + 1, base.back(), cold.back(), peaks.back(), fresh.back());
    std::fflush(stdout);
  }
  auto warm = w.must({"image", "pull", ref, "--insecure-registry", "--name", "pulled-warm"}, 900s);
  // `vm run --image REF`: REF names the image just pulled (no pull); the first run boots it
  // raw, the second resumes its boot snapshot.
  fs::create_directories(fs::path(w.env["XDG_CONFIG_HOME"]) / "banger");
  std::ofstream(fs::path(w.env["XDG_CONFIG_HOME"]) / "banger" / "config.toml")
    << "[images]\ninsecure_registries = [\"" << reg.host() << "\"]\n";
  w.must({"image", "rm", "pulled-warm"});
  auto first = w.must({"vm", "run", "--rm", "--image", ref, "--", "true"}, 900s);
  auto second = w.must({"vm", "run", "--rm", "--image", ref, "--", "true"}, 900s);

  w.stop_daemon();
  auto leaks = w.leaks();
  double b = median(base), c = median(cold), peak = *std::max_element(peaks.begin(), peaks.end());
  fmt::print("\nbench-image-pull results (3-layer debootstrap image, {:.1f} MiB compressed; load at the end {})\n",
             compressed / 1048576.0, loadavg());
  fmt::print("    skopeo copy + umoci unpack + mkfs -d  {:7.2f} s   samples {}\n", b, samples(base));
  fmt::print(
    "    banger image pull, cold cache         {:7.2f} s   samples {}   ({:.2f}x baseline; target <= 0.4x){}\n", c,
    samples(cold), c / b, c / b <= 0.4 ? "" : "  MISSED");
  fmt::print("    bangerd peak RSS during the pull      {:7.1f} MiB (target < 64 MiB){}; {:.1f} MiB started, "
             "before the pull\n",
             peak, peak < 64 ? "" : "  MISSED", median(fresh));
  fmt::print("    banger image pull, warm cache         {:7.2f} s\n", warm.secs);
  fmt::print("    vm run --rm --image REF -- true       {:7.2f} s first (raw boot), {:.2f} s second (snapshot)\n",
             first.secs, second.secs);
  if (!leaks.empty())
    fail("left behind: " + fmt::format("{}", fmt::join(leaks, "; ")));
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  try {
    auto cfg = parse(argc, argv);
    if (::geteuid() != 0) {
      std::fprintf(stderr, "bench-image-pull: skipped: needs root (a network namespace, the root helper's bridge)\n");
      return 77;
    }
    for (const char* p : {"qemu-system-x86_64", "ip", "docker-registry", "skopeo", "umoci", "mkfs.ext4"})
      if (!banger::find_program(p)) {
        std::fprintf(stderr, "bench-image-pull: skipped: needs %s (scripts/install-deps)\n", p);
        return 77;
      }
    return bench(cfg, binaries());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench-image-pull: %s\n", e.what());
    return 1;
  }
}
