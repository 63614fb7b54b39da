// End to end: Debian's cloud kernel package (the one linux-image-cloud-amd64 depends on) is
// downloaded with `apt-get download` into a cache outside the build tree, imported into a
// kernel directory (it is LZ4: the PVH conversion must succeed), and booted under QEMU microvm
// (TCG) with the initramfs built here and a busybox ext4 root whose /sbin/init prints a marker
// and powers off. One guest at a time. No network means a failure with a message, never a pass.
//
// Cache: tests/support/kernel_cache.hpp (shared with tests/e2e).
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <sys/wait.h>
#include <thread>

#include "guestfs/deb.hpp"
#include "guestfs/initramfs.hpp"
#include "guestfs/kernel_dir.hpp"
#include "tests/support/kernel_cache.hpp"
#include "tests/support/proc.hpp"

namespace banger::guestfs {

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using banger::test::cloud_kernel_deb;
using banger::test::microvm_argv;
using banger::test::run;
using banger::test::slurp;
using banger::test::temp_dir;

template <class T>
std::string why(const expected<T>& r) {
  return r ? std::string() : r.err().message;
}

constexpr std::string_view marker = "BANGER-INIT-OK";

/// A 64 MiB ext4 root holding busybox and an /sbin/init that prints the marker, the address
/// the initramfs configured from ip=, and powers off.
fs::path busybox_root(const fs::path& dir) {
  auto tree = dir / "rootfs";
  for (auto* d : {"bin", "sbin", "dev", "proc", "sys", "tmp"})
    fs::create_directories(tree / d);
  fs::copy_file("/usr/bin/busybox", tree / "bin/busybox");
  std::ofstream(tree / "sbin/init") << "#!/bin/busybox sh\n"
                                       "/bin/busybox echo \"root is $(/bin/busybox cat /proc/cmdline | "
                                       "/bin/busybox grep -o 'root=[^ ]*')\"\n"
                                       "/bin/busybox ip -4 -o addr show dev eth0\n"
                                       "/bin/busybox echo "
                                    << marker
                                    << "\n"
                                       "/bin/busybox poweroff -f\n";
  fs::permissions(tree / "sbin/init", fs::perms(0755));
  auto img = dir / "root.ext4";
  auto r = run({"mkfs.ext4", "-q", "-F", "-b", "4096", "-d", tree.string(), img.string(), "64M"});
  BOOST_TEST_REQUIRE(r.exit_code == 0, "mkfs.ext4 failed: " << r.err);
  return img;
}

struct boot_result {
  bool marker_seen = false;
  bool exited = false;
  double seconds_to_marker = 0;
  std::string console;
};

boot_result boot(const fs::path& dir, const fs::path& kernel, const fs::path& initrd, const fs::path& root) {
  auto console = dir / "console.log";
  fs::remove(console); // a previous boot's marker must not count
  auto argv = microvm_argv(console, kernel, initrd, "ip=10.0.2.15::10.0.2.2:255.255.255.0:e2e:eth0:off");
  argv.insert(argv.end(), {
                            "-drive",
                            "id=root,file=" + root.string() + ",format=raw,if=none",
                            "-device",
                            "virtio-blk-device,drive=root",
                            "-netdev",
                            "user,id=n0",
                            "-device",
                            "virtio-net-device,netdev=n0",
                          });
  auto start = std::chrono::steady_clock::now();
  int pid = banger::test::spawn(argv, {}, dir);
  boot_result res;
  auto deadline = start + 60s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!res.marker_seen && slurp(console).find(marker) != std::string::npos) {
      res.marker_seen = true;
      res.seconds_to_marker = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      res.exited = true;
      break;
    }
    std::this_thread::sleep_for(10ms);
  }
  if (!res.exited) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
  res.console = slurp(console);
  if (!res.marker_seen && res.console.find(marker) != std::string::npos) {
    res.marker_seen = true;
    res.seconds_to_marker = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  return res;
}

} // namespace

BOOST_AUTO_TEST_SUITE(kernel_e2e)

BOOST_AUTO_TEST_CASE(debian_cloud_kernel_boots_under_microvm) {
  auto deb = cloud_kernel_deb();
  BOOST_TEST_MESSAGE("kernel package " << deb.path);
  temp_dir tmp("banger-kernel-e2e");

  auto t0 = std::chrono::steady_clock::now();
  kernel_dir_spec spec;
  spec.name = "debian-cloud";
  spec.source = "deb:" + deb.package + "@" + deb.version;
  auto kdir = tmp.path / "kernels/debian-cloud";
  fs::create_directories(kdir.parent_path());
  auto m = import_kernel_deb(deb.path, spec, kdir);
  BOOST_TEST_REQUIRE(m.has_value(), why(m));
  auto import_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  BOOST_TEST_REQUIRE((m->format == kernel_format::pvh_elf), "cloud kernel not converted: " << m->why_not_pvh);
  BOOST_TEST(verify_kernel_dir(kdir).has_value());
  BOOST_TEST_MESSAGE(fmt::format("imported {} ({}) in {:.2f} s: vmlinux {} bytes, initrd.img {} bytes", deb.package,
                                 m->kernel_version, import_s, fs::file_size(kdir / "vmlinux"),
                                 fs::file_size(kdir / "initrd.img")));

  // Our order (from .modinfo, the .deb has no modules.dep) agrees with modprobe's after depmod.
  auto tree = tmp.path / "tree";
  auto x = extract_deb(deb.path, tree, extract_options{is_kernel_member});
  BOOST_TEST_REQUIRE(x.has_value(), why(x));
  auto mods_dir = find_modules_dir(tree, m->kernel_version);
  BOOST_TEST_REQUIRE(mods_dir.has_value(), why(mods_dir));
  auto ours = resolve_modules(*mods_dir, guest_modules());
  BOOST_TEST_REQUIRE(ours.has_value(), why(ours));
  std::vector<std::string> our_names;
  for (auto& mod : *ours)
    our_names.push_back(mod.name);
  BOOST_TEST_MESSAGE("initramfs modules: " << fmt::format("{}", fmt::join(our_names, " ")));
  auto dm = run({"depmod", "-b", tree.string(), m->kernel_version});
  BOOST_TEST_REQUIRE(dm.exit_code == 0, dm.err);
  std::set<std::string> modprobe_names;
  for (auto& want : guest_modules()) {
    auto r = run({"modprobe", "-d", tree.string(), "-S", m->kernel_version, "--show-depends", want});
    BOOST_TEST_REQUIRE(r.exit_code == 0, r.err);
    std::istringstream lines(r.out);
    std::ptrdiff_t last = -1;
    for (std::string line; std::getline(lines, line);) {
      if (!line.starts_with("insmod "))
        continue;
      auto file = line.substr(7, line.find_last_not_of(' ') - 6);
      auto name = fs::path(file).filename().string();
      name = name.substr(0, name.find(".ko"));
      std::replace(name.begin(), name.end(), '-', '_');
      modprobe_names.insert(name);
      auto at = std::find(our_names.begin(), our_names.end(), name) - our_names.begin();
      BOOST_TEST(at > last, name << " out of modprobe's order for " << want);
      last = at;
    }
  }
  BOOST_TEST(std::set<std::string>(our_names.begin(), our_names.end()) == modprobe_names,
             boost::test_tools::per_element());
  // And with modules.dep present, the modules.dep path gives the same set.
  auto via_dep = resolve_modules(*mods_dir, guest_modules());
  BOOST_TEST_REQUIRE(via_dep.has_value(), why(via_dep));
  BOOST_TEST(via_dep->size() == ours->size());

  // Boot the PVH vmlinux, then the package's bzImage, with the same initramfs and root.
  auto root = busybox_root(tmp.path);
  auto vmlinuz = tree / "boot" / ("vmlinuz-" + m->kernel_version);
  for (auto& [what, kernel] :
       std::vector<std::pair<std::string, fs::path>>{{"PVH vmlinux", kdir / "vmlinux"}, {"bzImage", vmlinuz}}) {
    BOOST_TEST_CONTEXT(what) {
      auto b = boot(tmp.path, kernel, kdir / "initrd.img", root);
      BOOST_TEST_MESSAGE(what << " console:\n" << b.console);
      BOOST_TEST_REQUIRE(b.marker_seen, "no " << marker << " on the console within 60 s; console:\n" << b.console);
      BOOST_TEST(b.exited, "QEMU did not exit after poweroff");
      BOOST_TEST(b.console.find("10.0.2.15/24") != std::string::npos, "ip= not applied");
      BOOST_TEST(b.console.find("banger-initramfs:") == std::string::npos, "the initramfs complained");
      std::cout << fmt::format("guestfs e2e: {} boot, QEMU start -> {} in {:.2f} s (TCG)\n", what, marker,
                               b.seconds_to_marker);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace banger::guestfs
