// bench-vm-run: what `banger vm run` costs over a bare QEMU boot, printed, never asserted (STYLE:
// tests never assert on wall time). Everything happens in one run, in a private banger world: a
// temporary XDG sandbox and a network namespace this bench creates (the daemon autostarts in it;
// its root helper makes the bridge and taps there; the namespace has no route out). Then:
//   0. the kernel ("default", the cached Debian cloud kernel), the busybox image ("default") and
//      the debootstrap image ("deb", README's default), built by build_default_artifacts;
//   then for each of the two images:
//   1. its shape's first `vm run --rm --image IMG -- true`, which builds its boot snapshot
//      (docs/boot-snapshots.md; none with --no-boot-snapshots, which sets boot_snapshots = false);
//   2. raw baseline: the imported kernel dir's vmlinux + initrd.img and a sparse copy of the
//      image's rootfs.ext4 holding /bench-init (echo a marker, power off: busybox poweroff -f,
//      or sysrq's on Debian), booted with init=/bench-init by tests/support's microvm_argv
//      (memory set to banger's default) on a fresh qcow2 overlay (no network device, no work
//      disk, no agent port); QEMU start -> exit, and QEMU start -> the marker on the console;
//      interleaved with `banger vm run --rm --image IMG -- true`, around the CLI process, with the
//      time each of its stderr lines arrived, so a run splits into create+boot / exec /
//      stop+delete (--runs times each, one guest at a time, so both see the same host load);
//      the target: the run at most 1.0 s;
//   3. `banger vm create --name bench-N` (busybox, --runs times), its "ready in" and stage lines, then
//      `banger vm delete --force bench-N`;
//   4. --parallel concurrent `vm run --rm -- true` (busybox), wall time until all exit.
// Then the daemon is stopped and leaks are looked for: QEMU processes naming the sandbox, bgt*
// links in the namespace, entries under STATE/banger/vms and RUNTIME/banger/vms.
//
// Usage: bench-vm-run [--runs N] [--parallel P] [--no-boot-snapshots]. Needs root; exits 77 (skipped) without root or
// QEMU. The namespace, the daemon and the temporary directory are removed on every exit path
// except a signal. The main thread drives everything; step 4 runs one thread per CLI process.
//
// The private world (namespace, sandbox, CLI runs, teardown) is in world.cpp, the figures
// (medians, stage tables, the vm run split) in figures.cpp.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bench/vm_run/figures.hpp"
#include "bench/vm_run/world.hpp"
#include "common/subprocess.hpp"
#include "guestfs/ext4.hpp"
#include "tests/support/kernel_cache.hpp"
#include "tests/support/proc.hpp"
#include "vmm/vmm.hpp"

namespace {

using namespace banger::bench;

struct config {
  int runs = 5;
  int parallel = 4;
  bool boot_snapshots = true; ///< --no-boot-snapshots: every VM boots (config boot_snapshots = false)
};

config parse(int argc, char** argv) {
  config c;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> int {
      if (i + 1 >= argc)
        fail("missing value for " + a);
      return std::stoi(argv[++i]);
    };
    if (a == "--runs")
      c.runs = next();
    else if (a == "--parallel")
      c.parallel = next();
    else if (a == "--no-boot-snapshots")
      c.boot_snapshots = false;
    else
      fail("usage: bench-vm-run [--runs N] [--parallel P] [--no-boot-snapshots]");
  }
  if (c.runs <= 0 || c.parallel <= 0 || c.parallel > 4)
    fail("--runs must be positive and --parallel 1..4 (host-facts: at most 4 guests at once)");
  return c;
}

/// The one subdirectory of `dir` (a kernel or image name) holding `file`.
fs::path version_dir(const fs::path& dir, const std::vector<std::string>& files) {
  std::error_code ec;
  std::vector<fs::path> found;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    bool all = e.is_directory();
    for (const auto& f : files)
      all = all && fs::exists(e.path() / f);
    if (all)
      found.push_back(e.path());
  }
  if (found.size() != 1)
    fail(fmt::format("expected one version under {} holding {}, found {}", dir.string(), fmt::join(files, " and "),
                     found.size()));
  return found[0];
}

template <class T>
T must_ok(banger::expected<T> r, const std::string& what) {
  if (!r)
    fail(what + ": " + r.err().message);
  return std::move(r).value();
}
void must_ok(banger::expected<void> r, const std::string& what) {
  if (!r)
    fail(what + ": " + r.err().message);
}

/// The raw baseline's init: a marker on the console, then power off at once (busybox's
/// poweroff -f; on Debian, the kernel's sysrq power-off, the same reboot(2) underneath).
constexpr const char* busybox_bench_init = "#!/usr/bin/busybox sh\n"
                                           "echo BENCH-UP\n"
                                           "exec /usr/bin/busybox poweroff -f\n";
constexpr const char* debian_bench_init = "#!/bin/sh\n"
                                          "echo BENCH-UP\n"
                                          "mount -t proc proc /proc\n"
                                          "echo o > /proc/sysrq-trigger\n"
                                          "sleep 60\n";

/// The raw baseline: QEMU start -> exit (`total`) and QEMU start -> the marker /bench-init
/// echoes on the console (`to_init`, polled every 5 ms), booting the rootfs copy.
struct raw_times {
  std::vector<double> total, to_init;
};

/// A sparse copy of an image's rootfs holding /bench-init (images are immutable), in DIR/`sub`;
/// `needs` is a program the script runs, checked first.
fs::path raw_rootfs(const world& w, const fs::path& rootfs, const std::string& sub, const char* script,
                    const char* needs) {
  auto dir = w.root.path / sub;
  fs::create_directories(dir);
  auto copy = dir / "rootfs.ext4";
  if (auto cp = banger::test::run({"/bin/cp", "--sparse=always", rootfs.string(), copy.string()}); cp.exit_code != 0)
    fail("copy " + rootfs.string() + ": " + cp.err);
  {
    auto im = must_ok(banger::guestfs::ext4_image::open(copy, true), "open the rootfs copy " + copy.string());
    if (!must_ok(im.exists(needs), std::string("look for ") + needs))
      fail(fmt::format("the image has no {}: {}", needs, rootfs.string()));
    must_ok(im.write_file("/bench-init", script, 0755, 0, 0), "write /bench-init");
    must_ok(im.close(), "close the rootfs copy");
  }
  return copy;
}

/// Boot `i` of the raw baseline, on a fresh overlay on `copy`; adds to `out`.
void raw_boot(int i, const config& cfg, const fs::path& kdir, const fs::path& copy, unsigned memory_mib, bool kvm,
              raw_times& out) {
  auto dir = copy.parent_path();
  {
    auto overlay = dir / fmt::format("overlay-{}.qcow2", i);
    auto console = dir / fmt::format("console-{}.log", i);
    auto q = banger::test::run(
      {"qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", copy.string(), overlay.string()});
    if (q.exit_code != 0)
      fail("qemu-img create " + overlay.string() + " failed: " + q.err);
    auto argv = banger::test::microvm_argv(console, kdir / "vmlinux", kdir / "initrd.img", "init=/bench-init");
    // Same memory as a banger VM (the default shape); microvm_argv's -m is 128.
    for (std::size_t a = 0; a + 1 < argv.size(); ++a)
      if (argv[a] == "-m")
        argv[a + 1] = std::to_string(memory_mib);
    if (kvm) // as banger does when KVM is usable (host-facts: not on PVM hosts)
      for (std::size_t a = 0; a + 1 < argv.size(); ++a) {
        if (argv[a] == "-accel")
          argv[a + 1] = "kvm";
        else if (argv[a] == "-cpu")
          argv[a + 1] = "host";
      }
    argv.insert(argv.end(), {"-drive", "id=root,file=" + overlay.string() + ",format=qcow2,if=none", "-device",
                             "virtio-blk-device,drive=root"});
    std::atomic<bool> done{false};
    double marker = -1;
    auto t0 = steady::now();
    std::thread watch([&] {
      while (!done.load()) {
        if (banger::test::slurp(console).find("BENCH-UP") != std::string::npos) {
          marker = seconds_since(t0);
          return;
        }
        std::this_thread::sleep_for(5ms);
      }
    });
    auto t = run_timed(argv, {}, 120s);
    done = true;
    watch.join();
    auto log = banger::test::slurp(console);
    if (t.r.exit_code != 0 || log.find("BENCH-UP") == std::string::npos)
      fail(fmt::format("raw boot {} failed (exit {}{}): {}\nconsole:\n{}", i, t.r.exit_code,
                       t.r.timed_out ? ", timed out" : "", tail(t.r.out), tail(log)));
    out.total.push_back(t.secs);
    if (marker >= 0)
      out.to_init.push_back(marker);
    fmt::print("  raw boot {}/{}: {:.2f} s (init ran at {:.2f} s)\n", i, cfg.runs, t.secs, marker);
    std::fflush(stdout);
    fs::remove(overlay);
  }
}

/// One image's figures: its shape's first `vm run`, raw boots of its rootfs and `vm run`s.
struct image_series {
  std::string image;
  double first = 0;
  raw_times raw;
  run_split runs;
};

image_series series_of(world& w, const config& cfg, const std::string& image, const fs::path& kdir, unsigned memory_mib,
                       bool kvm, const char* bench_init, const char* needs) {
  image_series out{image, 0, {}, {}};
  auto idir = version_dir(w.state() / "images" / image, {"rootfs.ext4"});
  std::vector<std::string> run{"vm", "run", "--rm", "--image", image, "--", "true"};
  out.first = w.must(run, 300s).secs;
  fmt::print("  image {}: first vm run of the shape: {:.2f} s{}\n", image, out.first,
             cfg.boot_snapshots ? " (boots the boot snapshot's template, then restores it)" : "");
  std::fflush(stdout);
  auto copy = raw_rootfs(w, idir / "rootfs.ext4", "raw-" + image, bench_init, needs);
  for (int i = 1; i <= cfg.runs; ++i) {
    raw_boot(i, cfg, kdir, copy, memory_mib, kvm, out.raw);
    auto t = w.must(run, 180s);
    add_run(out.runs, t);
    fmt::print("  image {}: vm run {}/{}: {:.2f} s\n", image, i, cfg.runs, t.secs);
    std::fflush(stdout);
  }
  fs::remove(copy);
  return out;
}

/// The figures of one series, as bench() prints them.
void print_series(const image_series& x, const config& cfg, double target_s) {
  double raw_m = median(x.raw.total), run_m = median(x.runs.total);
  fmt::print("  image {}:\n", x.image);
  fmt::print("  raw QEMU microvm boot -> poweroff   median {:6.2f} s   ({})\n", raw_m, samples(x.raw.total));
  fmt::print("    QEMU start -> /bench-init runs    median {:6.2f} s   ({})\n", median(x.raw.to_init),
             samples(x.raw.to_init));
  fmt::print("  first vm run of the shape                   {:6.2f} s{}\n", x.first,
             cfg.boot_snapshots ? "   (boots the boot snapshot's template)" : "");
  fmt::print("  vm run --rm -- true                 median {:6.2f} s   ({}){}; target <= {:.1f} s{}\n", run_m,
             samples(x.runs.total),
             cfg.boot_snapshots ? ", restored from the boot snapshot" : ", booted (--no-boot-snapshots)", target_s,
             run_m <= target_s ? "" : "  ABOVE TARGET");
  fmt::print("    CLI start -> ready                median {:6.2f} s\n", median(x.runs.to_ready));
  fmt::print("    exec `true`                       median {:6.2f} s\n", median(x.runs.exec));
  fmt::print("    stop/delete                       median {:6.2f} s\n", median(x.runs.stop_delete));
  fmt::print("    deleted -> CLI exit               median {:6.2f} s\n", median(x.runs.after));
  fmt::print("    create/start stages (medians):\n");
  print_stages(x.runs.stages, "      ");
  fmt::print("  ratio vm run / raw                  {:6.2f}     (target <= 1.15){}\n", run_m / raw_m,
             run_m / raw_m <= 1.15 ? "" : "  ABOVE TARGET");
}

int bench(const config& cfg, const fs::path& bin) {
  world w(bin);
  fs::create_directories(w.root.path / "config" / "banger");
  std::ofstream(w.root.path / "config" / "banger" / "config.toml")
    << fmt::format("boot_snapshots = {}\n", cfg.boot_snapshots ? "true" : "false");
  fmt::print("bench-vm-run: {} sequential runs of each, {} in parallel; sandbox {}, netns {}; load {}\n", cfg.runs,
             cfg.parallel, w.root.path.string(), w.ns.name, loadavg());
  std::fflush(stdout);

  // 0. The kernel, the busybox image ("default") and the debootstrap image ("deb", README's
  // default), built outside the namespace (debootstrap needs Debian's mirror).
  auto deb = banger::test::cloud_kernel_deb();
  if (deb.path.empty() || !fs::exists(deb.path))
    fail("no cached Debian cloud kernel .deb (apt-get download failed?); see tests/support/kernel_cache.hpp");
  auto setup0 = steady::now();
  auto debootstrap_secs = build_default_artifacts(w);
  fmt::print("  setup: kernel import, busybox and debootstrap images {:.1f} s (debootstrap {:.1f} s)\n",
             seconds_since(setup0), debootstrap_secs);
  auto kdir = version_dir(w.state() / "kernels" / "default", {"vmlinux", "initrd.img"});
  constexpr unsigned memory_mib = 512;        // banger's default VM shape: 1 vCPU, 512 MiB
  const bool kvm = banger::vmm::kvm_usable(); // banger's accel=auto picks KVM only then

  // 1 and 2 for each image: its first VM of the shape (with boot snapshots, it boots the
  // snapshot's template first), then raw boots and `vm run`s interleaved (raw boot i, then vm
  // run i) so that both see the same host load: the host is shared and its load drifts.
  auto bb = series_of(w, cfg, "default", kdir, memory_mib, kvm, busybox_bench_init, "/usr/bin/busybox");
  auto db = series_of(w, cfg, "deb", kdir, memory_mib, kvm, debian_bench_init, "/bin/sh");

  // 3. create-to-ready, then delete.
  std::vector<double> create_wall, create_ready, delete_wall;
  stage_table create_stages;
  for (int i = 1; i <= cfg.runs; ++i) {
    auto name = fmt::format("bench-{}", i);
    auto c = w.must({"vm", "create", "--name", name}, 180s);
    auto ready = parse_stages(c, "vm create", create_stages);
    if (!ready)
      fail("`vm create` printed no \"[vm create] ready in\" line:\n" + tail(c.r.out));
    create_wall.push_back(c.secs);
    create_ready.push_back(*ready);
    auto d = w.must({"vm", "delete", "--force", name}, 180s);
    delete_wall.push_back(d.secs);
    fmt::print("  vm create {}/{}: {:.2f} s (ready in {:.1f} s), delete --force {:.2f} s\n", i, cfg.runs, c.secs,
               *ready, d.secs);
    std::fflush(stdout);
  }

  // 4. In parallel.
  std::vector<timed_run> par(static_cast<std::size_t>(cfg.parallel));
  std::vector<std::thread> threads;
  auto p0 = steady::now();
  for (auto& slot : par)
    threads.emplace_back([&w, &slot] { slot = w.cli({"vm", "run", "--rm", "--", "true"}, 300s); });
  for (auto& t : threads)
    t.join();
  double par_wall = seconds_since(p0);
  std::vector<double> par_each;
  std::vector<std::string> par_failures;
  run_split par_split;
  for (std::size_t i = 0; i < par.size(); ++i) {
    par_each.push_back(par[i].secs);
    if (par[i].r.exit_code != 0)
      par_failures.push_back(fmt::format("run {} exited {}{}: {}", i + 1, par[i].r.exit_code,
                                         par[i].r.timed_out ? " (timed out)" : "", tail(par[i].r.out, 400)));
    else
      add_run(par_split, par[i]);
  }

  // Leaks, after the daemon is stopped (VMMs outlive a daemon, so a leaked guest still shows).
  w.stop_daemon();
  auto leaks = w.leaks();

  fmt::print("\nbench-vm-run results ({} {}, {}, 1 vCPU, {} MiB; load at the end {})\n", deb.package, deb.version,
             kvm ? "KVM" : "TCG", memory_mib, loadavg());
  fmt::print("  (raw: the same vmlinux + initrd.img, qcow2 overlay on a copy of the image's rootfs,\n"
             "   init=/bench-init; no network device, no work disk, no agent port)\n");
  print_series(bb, cfg, 1.0);
  print_series(db, cfg, 1.0);
  fmt::print("  vm create (create-to-ready)         median {:6.2f} s   ({}); reported ready in median {:.2f} s\n",
             median(create_wall), samples(create_wall), median(create_ready));
  fmt::print("    stages (medians):\n");
  print_stages(create_stages, "      ");
  fmt::print("  vm delete --force (running VM)      median {:6.2f} s   ({})\n", median(delete_wall),
             samples(delete_wall));
  fmt::print("  {} x vm run in parallel              wall   {:6.2f} s   (each: {})\n", cfg.parallel, par_wall,
             samples(par_each));
  if (!par_split.to_ready.empty())
    fmt::print("    each: to ready median {:.2f} s, exec {:.2f} s, stop + delete {:.2f} s\n",
               median(par_split.to_ready), median(par_split.exec), median(par_split.stop_delete));
  for (const auto& f : par_failures)
    fmt::print("  WARNING: parallel {}\n", f);
  if (leaks.empty())
    fmt::print("  leaks: none\n");
  else
    fmt::print("  leaks: {}\n", fmt::join(leaks, "; "));
  std::fflush(stdout);
  return par_failures.empty() && leaks.empty() ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
  try {
    auto cfg = parse(argc, argv);
    if (::geteuid() != 0) {
      std::fprintf(stderr, "bench-vm-run: skipped: needs root (a network namespace, the root helper's bridge)\n");
      return 77;
    }
    if (!banger::find_program("qemu-system-x86_64") || !banger::find_program("qemu-img") ||
        !banger::find_program("ip")) {
      std::fprintf(stderr, "bench-vm-run: skipped: needs qemu-system-x86_64, qemu-img and ip\n");
      return 77;
    }
    return bench(cfg, binaries());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench-vm-run: %s\n", e.what());
    return 1;
  }
}
