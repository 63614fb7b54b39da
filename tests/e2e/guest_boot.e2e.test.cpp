// End to end: a banger guest boots and its agent answers. Debian's cloud kernel is imported
// (guestfs/kernel_dir.hpp), the busybox image is built with the real static banger-init and
// banger-agent (guestfs/image.hpp), and QEMU microvm (TCG, host-facts.md's command line, no
// network device) boots a qcow2 overlay of rootfs.ext4 with a copy of work-seed.ext4 as the
// work disk. Everything is then checked through the agent over virtio-serial, the way the
// daemon will use it. Also measured and printed (never asserted): the image build time, and
// QEMU start -> agent answering, median of 5 boots, against QEMU start -> a marker from a
// trivial init on the same kernel and rootfs. One guest at a time; QEMU is killed on every
// failure path (qemu_vm's destructor). The debootstrap image goes through the build cache in
// /var/cache/banger-test/debootstrap; whether it was a hit is printed with the build time.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <fmt/format.h>
#include <iostream>
#include <optional>
#include <thread>
#include <unistd.h>

#include "guestfs/ext4.hpp"
#include "guestfs/image.hpp"
#include "guestfs/kernel_dir.hpp"
#include "tests/e2e/qemu_guest.hpp"
#include "tests/support/proc.hpp"

namespace banger::e2e {

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

template <class T>
std::string why(const expected<T>& r) {
  return r ? std::string() : r.err().message;
}

double seconds_since(clock_type::time_point t) { return std::chrono::duration<double>(clock_type::now() - t).count(); }

constexpr std::string_view raw_marker = "RAW-INIT-MARKER";

/// Outside the repository and kept between runs: the first run on a machine fills it
/// (debootstrap, minutes), later runs extract the cached tree (seconds).
const fs::path debootstrap_cache = "/var/cache/banger-test/debootstrap";

/// The kernel directory and the busybox image, built once for the test module.
struct assets {
  test::temp_dir tmp{"banger-guest-boot"};
  fs::path kernel = tmp.path / "kernels/debian-cloud";
  fs::path image = tmp.path / "images/busybox";
  fs::path raw_rootfs = tmp.path / "raw-rootfs.ext4"; ///< rootfs.ext4 + /raw-init
  double kernel_import_s = 0;
  double image_build_s = 0;
  bool ready = false;
};

void prepare(assets& a) {
  auto deb = cloud_kernel_deb();
  auto t0 = clock_type::now();
  guestfs::kernel_dir_spec spec;
  spec.name = "debian-cloud";
  spec.source = "deb:" + deb.package + "@" + deb.version;
  fs::create_directories(a.kernel.parent_path());
  auto k = guestfs::import_kernel_deb(deb.path, spec, a.kernel);
  BOOST_TEST_REQUIRE(k.has_value(), "importing the Debian cloud kernel " << deb.path << ": " << why(k));
  BOOST_TEST_REQUIRE((k->format == guestfs::kernel_format::pvh_elf), "cloud kernel not converted: " << k->why_not_pvh);
  a.kernel_import_s = seconds_since(t0);

  guestfs::guest_binaries bins{test::bin_dir() / "banger-agent", test::bin_dir() / "banger-init"};
  fs::create_directories(a.image.parent_path());
  t0 = clock_type::now();
  auto m = guestfs::build_busybox_image("busybox", bins, a.image, {});
  a.image_build_s = seconds_since(t0);
  BOOST_TEST_REQUIRE(m.has_value(), "building the busybox image: " << why(m));
  BOOST_TEST_REQUIRE(guestfs::verify_image_dir(a.image).has_value());

  // The no-banger baseline: the same rootfs with an init that prints a marker and powers off.
  fs::copy_file(a.image / "rootfs.ext4", a.raw_rootfs);
  auto img = guestfs::ext4_image::open(a.raw_rootfs, true);
  BOOST_TEST_REQUIRE(img.has_value(), why(img));
  auto w = img->write_file("/raw-init", fmt::format("#!/bin/sh\necho {}\npoweroff -f\n", raw_marker), 0755, 0, 0);
  BOOST_TEST_REQUIRE(w.has_value(), why(w));
  BOOST_TEST_REQUIRE(img->close().has_value());
  a.ready = true;
}

assets& shared_assets() {
  static std::optional<assets> a;
  if (!a || !a->ready) {
    a.reset();
    a.emplace();
    prepare(*a);
  }
  return *a;
}

/// A fresh per-boot directory: overlay on `base`, work disk copied from the image's seed.
vm_spec fresh_vm(const assets& a, const std::string& tag, const fs::path& base) {
  vm_spec s;
  s.dir = a.tmp.path / tag;
  fs::remove_all(s.dir);
  fs::create_directories(s.dir);
  s.kernel = a.kernel / "vmlinux";
  s.initrd = a.kernel / "initrd.img";
  s.root_qcow2 = s.dir / "overlay.qcow2";
  make_overlay(base, s.root_qcow2);
  s.work_raw = s.dir / "work.ext4";
  fs::copy_file(a.image / "work-seed.ext4", s.work_raw);
  return s;
}

/// Asks the agent to power the guest off; the answer may be lost with the guest.
void poweroff(kj::AsyncIoContext& io, agent_client& c) {
  try {
    auto r = wait_for(io, c.agent().poweroffRequest().send(), 10s);
    BOOST_TEST(r.getFailure().getCode() == 0, r.getFailure().getMessage().cStr());
  } catch (const kj::Exception& e) {
    BOOST_TEST_MESSAGE("poweroff answer lost (guest already gone): " << e.getDescription().cStr());
  }
  c.disconnect();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

std::string expected_seq(int n) {
  std::string s;
  s.reserve(11u << 20);
  for (int i = 1; i <= n; ++i) {
    s += std::to_string(i);
    s += '\n';
  }
  return s;
}

} // namespace

BOOST_AUTO_TEST_SUITE(guest_boot_e2e)

BOOST_AUTO_TEST_CASE(agent_serves_a_booted_busybox_guest) {
  auto& a = shared_assets();
  std::cout << fmt::format("guest_boot e2e: kernel import {:.2f} s, busybox image build {:.2f} s\n", a.kernel_import_s,
                           a.image_build_s);
  auto spec = fresh_vm(a, "functional", a.image / "rootfs.ext4");
  auto io = kj::setupAsyncIo();
  qemu_vm vm(spec);
  agent_client c;
  auto host = c.connect(io, vm, clock_type::now() + 120s);
  BOOST_TEST_REQUIRE(host.has_value(), "the agent never answered ping; console:\n" << vm.console());
  BOOST_TEST_MESSAGE(fmt::format("agent answered {:.2f} s after QEMU started", seconds_since(vm.started())));
  BOOST_TEST(*host == "e2e-vm");

  // Exit codes and death by signal.
  BOOST_TEST(c.run(io, {"sh", "-c", "exit 0"}).code == 0);
  BOOST_TEST(c.run(io, {"sh", "-c", "exit 1"}).code == 1);
  auto r42 = c.run(io, {"sh", "-c", "exit 42"});
  BOOST_TEST(!r42.signaled);
  BOOST_TEST(r42.code == 42);
  auto killed = c.run(io, {"sh", "-c", "kill -9 $$"});
  BOOST_TEST(killed.signaled);
  BOOST_TEST(killed.code == 9);
  auto missing = c.run(io, {"/no/such/program"});
  BOOST_TEST(missing.failure_code == 1); // errc::not_found

  // The host drops its connection and comes back: the agent reopens the port and serves again.
  c.disconnect();
  auto again = c.connect(io, vm, clock_type::now() + 60s);
  BOOST_TEST_REQUIRE(again.has_value(), "the agent did not serve a second connection; console:\n" << vm.console());
  BOOST_TEST(c.run(io, {"sh", "-c", "exit 3"}).code == 3);

  // stdout and stderr kept apart.
  auto split = c.run(io, {"sh", "-c", "echo to-out; echo to-err >&2; echo more-out"});
  BOOST_TEST(split.out == "to-out\nmore-out\n");
  BOOST_TEST(split.err == "to-err\n");

  // 10 MB of output intact.
  auto t0 = clock_type::now();
  auto big = c.run(io, {"seq", "1", "1400000"});
  auto big_s = seconds_since(t0);
  auto want = expected_seq(1400000);
  BOOST_TEST(want.size() > 10u * 1000 * 1000);
  BOOST_TEST(big.code == 0);
  BOOST_TEST(big.out.size() == want.size());
  BOOST_TEST((big.out == want));
  std::cout << fmt::format("guest_boot e2e: {} bytes of exec output over virtio-serial in {:.2f} s ({:.1f} MB/s)\n",
                           big.out.size(), big_s, big.out.size() / big_s / 1e6);

  // File round trip with mode and owner, seen by the guest's own stat.
  std::string content = "written by the host\n";
  auto wf = c.agent().writeFileRequest();
  wf.setPath("/root/f");
  wf.setData(kj::arrayPtr(reinterpret_cast<const kj::byte*>(content.data()), content.size()));
  wf.setMode(0640);
  wf.setUid(1000);
  wf.setGid(1000);
  auto wr = wait_for(io, wf.send(), 30s);
  BOOST_TEST_REQUIRE(wr.getFailure().getCode() == 0, wr.getFailure().getMessage().cStr());
  auto rf = c.agent().readFileRequest();
  rf.setPath("/root/f");
  auto rr = wait_for(io, rf.send(), 30s);
  BOOST_TEST_REQUIRE(rr.getFailure().getCode() == 0, rr.getFailure().getMessage().cStr());
  auto data = rr.getData();
  BOOST_TEST(std::string(reinterpret_cast<const char*>(data.begin()), data.size()) == content);
  BOOST_TEST(rr.getMode() == 0640u);
  BOOST_TEST(rr.getUid() == 1000u);
  BOOST_TEST(rr.getGid() == 1000u);
  BOOST_TEST(c.run(io, {"stat", "-c", "%a %u %g", "/root/f"}).out == "640 1000 1000\n");

  // A guest listener shows up in ports (httpd daemonizes: exec returns, the listener stays).
  auto httpd = c.run(io, {"sh", "-c", "httpd -p 4242 -h /tmp </dev/null >/dev/null 2>&1"});
  BOOST_TEST(httpd.code == 0, httpd.err);
  bool found = false;
  std::string seen;
  for (int i = 0; i < 100 && !found; ++i) {
    auto p = wait_for(io, c.agent().portsRequest().send(), 30s);
    BOOST_TEST_REQUIRE(p.getFailure().getCode() == 0, p.getFailure().getMessage().cStr());
    seen.clear();
    for (auto port : p.getPorts()) {
      seen += fmt::format("{} {}:{} {}; ", port.getProtocol().cStr(), port.getAddress().cStr(), port.getPort(),
                          port.getProcess().cStr());
      if (port.getPort() == 4242) {
        found = true;
        BOOST_TEST(std::string(port.getProcess().cStr()).ends_with("/httpd"), port.getProcess().cStr());
      }
    }
    if (!found)
      std::this_thread::sleep_for(50ms);
  }
  BOOST_TEST(found, "port 4242 not listed; ports: " << seen);

  // Stats are sane.
  auto st = wait_for(io, c.agent().statsRequest().send(), 30s);
  BOOST_TEST_REQUIRE(st.getFailure().getCode() == 0, st.getFailure().getMessage().cStr());
  auto s = st.getStats();
  BOOST_TEST(s.getUptimeMs() > 0u);
  BOOST_TEST(s.getCpuCount() == 1u);
  BOOST_TEST(s.getMemTotalBytes() > 64u << 20);
  BOOST_TEST(s.getMemTotalBytes() <= 128u << 20);
  BOOST_TEST(s.getMemAvailableBytes() < s.getMemTotalBytes());
  BOOST_TEST(s.getRootTotalBytes() > 32u << 20);
  BOOST_TEST(s.getRootFreeBytes() < s.getRootTotalBytes());
  BOOST_TEST(s.getWorkTotalBytes() > 8u << 20);
  BOOST_TEST(s.getWorkTotalBytes() <= 16u << 20); // the 16 MiB work disk, not the 64 MiB root
  BOOST_TEST(s.getCpuBusyMs() > 0u);

  // /root is the work disk.
  auto mounts = c.run(io, {"mount"});
  BOOST_TEST(mounts.out.find("/dev/vdb on /root type ext4") != std::string::npos, mounts.out);
  // The agent (forked by init) was started before /root was mounted, and told to hold commands
  // until init is done: its "serving" line names the file, which exists.
  auto env = c.run(io, {"sh", "-c", "cat /proc/$PPID/comm; ls /run/banger-init.ready"});
  BOOST_TEST(env.out == "banger-agent\n/run/banger-init.ready\n", env.out + env.err);
  BOOST_TEST(vm.console().find("; commands wait for /run/banger-init.ready") != std::string::npos, vm.console());
  BOOST_TEST(c.run(io, {"hostname"}).out == "e2e-vm\n");

  // An agent that dies is forked again by init (a second later) and serves the next connection.
  {
    // Not waited for: the host's end stays open (QEMU holds it), so no answer ever comes.
    auto req = c.agent().execRequest();
    auto argv = req.initSpec().initArgv(3);
    argv.set(0, "sh");
    argv.set(1, "-c");
    argv.set(2, "kill -9 $PPID");
    req.getSpec().setCwd("/");
    auto lost = req.send();
    io.provider->getTimer().afterDelay(3 * kj::SECONDS).wait(io.waitScope);
  }
  c.disconnect();
  auto revived = c.connect(io, vm, clock_type::now() + 60s);
  BOOST_TEST_REQUIRE(revived.has_value(), "the agent was not restarted; console:\n" << vm.console());
  BOOST_TEST(c.run(io, {"cat", "/proc/self/status"}).out.find("PPid:") != std::string::npos);
  BOOST_TEST(c.run(io, {"sh", "-c", "cat /proc/$PPID/comm; grep PPid /proc/$PPID/status"}).out ==
             "banger-agent\nPPid:\t1\n");
  BOOST_TEST(vm.console().find("banger-agent exited (signal 9); restarting in 1 s") != std::string::npos, vm.console());

  // poweroff ends QEMU.
  poweroff(io, c);
  BOOST_TEST(vm.wait_exit(60s), "QEMU still running 60 s after poweroff; console:\n" << vm.console());
  auto console = vm.console();
  // Its lines carry the guest's uptime: "banger-init: [1.712] ready (...)".
  auto ready = console.find("] ready (");
  BOOST_TEST_REQUIRE(ready != std::string::npos, console);
  auto line = console.rfind('\n', ready);
  line = line == std::string::npos ? 0 : line + 1;
  BOOST_TEST(console.compare(line, 14, "banger-init: [") == 0, console.substr(line, ready - line + 9));
}

BOOST_AUTO_TEST_CASE(boot_to_agent_ready_against_a_raw_boot) {
  auto& a = shared_assets();
  constexpr int boots = 5;
  std::vector<double> banger_s, raw_s;
  for (int i = 0; i < boots; ++i) {
    BOOST_TEST_CONTEXT("boot " << i) {
      { // banger: QEMU start -> the agent answers ping
        auto spec = fresh_vm(a, "banger-boot", a.image / "rootfs.ext4");
        auto io = kj::setupAsyncIo();
        qemu_vm vm(spec);
        agent_client c;
        auto host = c.connect(io, vm, clock_type::now() + 120s);
        BOOST_TEST_REQUIRE(host.has_value(), "the agent never answered; console:\n" << vm.console());
        banger_s.push_back(std::chrono::duration<double>(clock_type::now() - vm.started()).count());
        poweroff(io, c);
        BOOST_TEST_REQUIRE(vm.wait_exit(60s), "QEMU still running after poweroff");
      }
      { // raw: QEMU start -> the marker from /raw-init on the serial console
        auto spec = fresh_vm(a, "raw-boot", a.raw_rootfs);
        spec.init = "/raw-init";
        qemu_vm vm(spec);
        std::optional<double> at;
        while (!at && seconds_since(vm.started()) < 60 && !vm.wait_exit(0ms)) {
          if (vm.console().find(raw_marker) != std::string::npos)
            at = seconds_since(vm.started());
          else
            std::this_thread::sleep_for(5ms);
        }
        if (!at && vm.console().find(raw_marker) != std::string::npos)
          at = seconds_since(vm.started()); // QEMU exited between two polls: an upper bound
        BOOST_TEST_REQUIRE(at.has_value(), "no " << raw_marker << " on the console; console:\n" << vm.console());
        raw_s.push_back(*at);
        BOOST_TEST_REQUIRE(vm.wait_exit(60s), "QEMU still running after poweroff -f");
      }
    }
  }
  auto list = [](const std::vector<double>& v) {
    std::string s;
    for (auto x : v)
      s += fmt::format("{}{:.2f}", s.empty() ? "" : " ", x);
    return s;
  };
  auto msg = fmt::format("guest_boot e2e (TCG, microvm, PVH vmlinux, busybox image, {} boots each, interleaved):\n"
                         "  busybox image build:                {:.2f} s\n"
                         "  QEMU start -> agent answers ping:   median {:.2f} s  [{}]\n"
                         "  QEMU start -> raw init marker:      median {:.2f} s  [{}]\n"
                         "  banger overhead (median difference): {:.2f} s\n",
                         boots, a.image_build_s, median(banger_s), list(banger_s), median(raw_s), list(raw_s),
                         median(banger_s) - median(raw_s));
  std::cout << msg << std::flush;
  BOOST_TEST_MESSAGE(msg);
}

BOOST_AUTO_TEST_CASE(debootstrap_image_boots_with_sshd_and_agent) {
  auto& a = shared_assets();
  BOOST_TEST_REQUIRE(::geteuid() == 0, "debootstrap needs root: run the e2e tests as root");
  guestfs::guest_binaries bins{test::bin_dir() / "banger-agent", test::bin_dir() / "banger-init"};
  auto dest = a.tmp.path / "images/bookworm";
  guestfs::debootstrap_spec spec;
  spec.packages = {"procps"};
  spec.cache_dir = debootstrap_cache;
  std::error_code ec;
  fs::create_directories(spec.cache_dir, ec);
  BOOST_TEST_REQUIRE(!ec, "mkdir " << spec.cache_dir << ": " << ec.message());
  bool hit = false;
  std::string cache_trouble;
  auto t0 = clock_type::now();
  auto m = guestfs::build_debootstrap_image("bookworm", spec, bins, dest,
                                            [&](const std::string& stage, std::uint64_t, std::uint64_t) {
                                              hit = hit || stage == "cache-hit";
                                              if (stage.starts_with("cache: "))
                                                cache_trouble += stage + "\n";
                                            });
  auto build_s = seconds_since(t0);
  BOOST_TEST_REQUIRE(m.has_value(), "debootstrap image: " << why(m));
  std::cout << fmt::format("guest_boot e2e: debootstrap cache {} ({}), image built in {:.1f} s\n{}",
                           hit                     ? "hit"
                           : cache_trouble.empty() ? "miss, filled"
                                                   : "miss",
                           spec.cache_dir.string(), build_s, cache_trouble);
  BOOST_TEST(m->source == "debootstrap:bookworm");
  for (auto* pkg : {"openssh-server", "ca-certificates", "curl", "git", "iproute2", "procps"})
    BOOST_TEST(std::binary_search(m->packages.begin(), m->packages.end(), pkg), pkg << " not installed");
  BOOST_TEST(m->packages_sha256.size() == 64u);
  BOOST_TEST(guestfs::verify_image_dir(dest).has_value());
  std::cout << fmt::format("guest_boot e2e: debootstrap image ({} packages) built in {:.1f} s: rootfs.ext4 {} MiB, "
                           "work-seed.ext4 {} MiB\n",
                           m->packages.size(), build_s, fs::file_size(dest / "rootfs.ext4") >> 20,
                           fs::file_size(dest / "work-seed.ext4") >> 20);

  auto vm_spec_ = fresh_vm(a, "debootstrap-boot", dest / "rootfs.ext4");
  fs::remove(vm_spec_.work_raw);
  fs::copy_file(dest / "work-seed.ext4", vm_spec_.work_raw);
  auto io = kj::setupAsyncIo();
  qemu_vm vm(vm_spec_);
  agent_client c;
  auto host = c.connect(io, vm, clock_type::now() + 180s);
  BOOST_TEST_REQUIRE(host.has_value(), "the agent never answered; console:\n" << vm.console());
  std::cout << fmt::format("guest_boot e2e: debootstrap image, QEMU start -> agent answers ping {:.2f} s\n",
                           seconds_since(vm.started()));
  BOOST_TEST(*host == "e2e-vm");
  // banger-init generated this VM's own host keys and started sshd, which listens on 22.
  bool listening = false;
  for (int i = 0; i < 300 && !listening; ++i) {
    auto p = wait_for(io, c.agent().portsRequest().send(), 30s);
    for (auto port : p.getPorts())
      listening = listening || (port.getPort() == 22 && std::string(port.getProcess().cStr()).ends_with("/sshd"));
    if (!listening)
      std::this_thread::sleep_for(100ms);
  }
  BOOST_TEST(listening, "sshd not listening on 22; console:\n" << vm.console());
  auto keys = c.run(io, {"sh", "-c",
                         "ls /etc/ssh/ssh_host_ed25519_key && sshd -T | grep -i -E "
                         "'^(permitrootlogin|passwordauthentication) '"});
  BOOST_TEST(keys.code == 0, keys.err);
  BOOST_TEST(keys.out.find("permitrootlogin without-password") != std::string::npos, keys.out);
  BOOST_TEST(keys.out.find("passwordauthentication no") != std::string::npos, keys.out);
  auto mounts = c.run(io, {"sh", "-c", "grep ' /root ' /proc/mounts"});
  BOOST_TEST(mounts.out.find("/dev/vdb /root ext4") == 0u, mounts.out);
  poweroff(io, c);
  BOOST_TEST(vm.wait_exit(60s), "QEMU still running 60 s after poweroff; console:\n" << vm.console());
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace banger::e2e
