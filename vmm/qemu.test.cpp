// Unit tests of the QEMU command line (qemu_argv): accelerator, devices present or absent with
// the spec's optional parts, option-string escaping, and the file_tail used in error messages.
#include "vmm/qemu.hpp"

#include <algorithm>
#include <fstream>
#include <functional>

#include <boost/test/unit_test.hpp>

#include "tests/support/proc.hpp"

namespace fs = std::filesystem;
using namespace banger;
using namespace banger::vmm;

namespace {

vm_spec sample() {
  vm_spec s;
  s.name = "web-1";
  s.dir = "/run/banger/vms/web-1";
  s.console_log = "/var/lib/banger/vms/web-1/console.log";
  s.kernel = "/k/vmlinux";
  s.root_disk = "/v/root.qcow2";
  s.vcpus = 2;
  s.memory_mib = 512;
  return s;
}

/// The value following `flag` (the first occurrence at or after `from`), or "" when absent.
std::string after(const std::vector<std::string>& a, std::string_view flag, std::size_t from = 0) {
  for (std::size_t i = from; i + 1 < a.size(); ++i)
    if (a[i] == flag)
      return a[i + 1];
  return {};
}

std::vector<std::string> values_of(const std::vector<std::string>& a, std::string_view flag) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i + 1 < a.size(); ++i)
    if (a[i] == flag)
      out.push_back(a[i + 1]);
  return out;
}

bool has(const std::vector<std::string>& a, std::string_view word) {
  return std::find(a.begin(), a.end(), word) != a.end();
}

std::string joined(const std::vector<std::string>& a) {
  std::string s;
  for (auto& x : a)
    s += x + " ";
  return s;
}

} // namespace

BOOST_AUTO_TEST_SUITE(qemu_command_line)

BOOST_AUTO_TEST_CASE(tcg_minimal_spec) {
  auto a = qemu_argv(sample(), true, 2500000, "/usr/bin/qemu-system-x86_64");
  BOOST_TEST_INFO(joined(a));
  BOOST_TEST(a.at(0) == "/usr/bin/qemu-system-x86_64");
  BOOST_TEST(after(a, "-M") == "microvm");
  BOOST_TEST(after(a, "-accel") == "tcg,tb-size=128");
  BOOST_TEST(after(a, "-cpu") == "max");
  BOOST_TEST(after(a, "-m") == "512");
  BOOST_TEST(after(a, "-smp") == "2");
  for (auto w : {"-no-reboot", "-nodefaults", "-no-user-config"})
    BOOST_TEST(has(a, w), w);
  BOOST_TEST(after(a, "-display") == "none");
  BOOST_TEST(after(a, "-serial") == "chardev:serial0");
  BOOST_TEST(has(a, "file,id=serial0,path=/var/lib/banger/vms/web-1/console.log,append=on"));
  BOOST_TEST(after(a, "-qmp") == "unix:/run/banger/vms/web-1/qmp.sock,server=on,wait=off");
  BOOST_TEST(after(a, "-kernel") == "/k/vmlinux");
  BOOST_TEST(!has(a, "-initrd"));
  BOOST_TEST(after(a, "-append") == kernel_cmdline(sample(), true, 2500000));
  BOOST_TEST(after(a, "-append").find("tsc_early_khz=2500000") != std::string::npos);
  // Exactly one disk (root, qcow2), no network, the agent's serial port.
  BOOST_TEST(values_of(a, "-drive") == std::vector<std::string>{"id=root,file=/v/root.qcow2,format=qcow2,if=none"});
  BOOST_TEST(!has(a, "-netdev"));
  auto devices = values_of(a, "-device");
  BOOST_TEST(devices == (std::vector<std::string>{"virtio-blk-device,drive=root", "virtio-serial-device,max_ports=2",
                                                  "virtserialport,chardev=ch0,name=org.banger.agent.0"}));
  BOOST_TEST(has(a, "socket,path=/run/banger/vms/web-1/agent.sock,server=on,wait=off,id=ch0"));
}

BOOST_AUTO_TEST_CASE(kvm_full_spec) {
  auto s = sample();
  s.initrd = "/k/initrd.img";
  s.work_disk = "/v/work.ext4";
  s.tap = "tap-web1";
  s.ip_cidr = "172.30.0.5/24";
  s.gateway = "172.30.0.1";
  auto a = qemu_argv(s, false, 2500000, "qemu");
  BOOST_TEST_INFO(joined(a));
  BOOST_TEST(after(a, "-accel") == "kvm");
  BOOST_TEST(after(a, "-cpu") == "host");
  BOOST_TEST(!has(a, "tcg,tb-size=128"));
  BOOST_TEST(after(a, "-initrd") == "/k/initrd.img");
  auto append = after(a, "-append");
  BOOST_TEST(append.find("tsc") == std::string::npos, append);
  BOOST_TEST(append.find("ip=172.30.0.5::172.30.0.1:255.255.255.0:web-1:eth0:off") != std::string::npos, append);
  BOOST_TEST(append.find("banger.work=/dev/vdb") != std::string::npos, append);
  // Root before work: the guest sees them as vda and vdb.
  BOOST_TEST(values_of(a, "-drive") == (std::vector<std::string>{"id=root,file=/v/root.qcow2,format=qcow2,if=none",
                                                                 "id=work,file=/v/work.ext4,format=raw,if=none"}));
  BOOST_TEST(after(a, "-netdev") == "tap,id=n0,ifname=tap-web1,script=no,downscript=no");
  auto devices = values_of(a, "-device");
  BOOST_TEST(devices == (std::vector<std::string>{"virtio-blk-device,drive=root", "virtio-blk-device,drive=work",
                                                  "virtio-net-device,netdev=n0,mac=" + derive_mac("web-1"),
                                                  "virtio-serial-device,max_ports=2",
                                                  "virtserialport,chardev=ch0,name=org.banger.agent.0"}));
  s.mac = "52:54:00:12:34:56";
  BOOST_TEST(has(qemu_argv(s, false, 0, "qemu"), "virtio-net-device,netdev=n0,mac=52:54:00:12:34:56"));
}

BOOST_AUTO_TEST_CASE(commas_in_paths_are_escaped) {
  BOOST_TEST(qemu_opt_escape("a,b,,c") == "a,,b,,,,c");
  auto s = sample();
  s.dir = "/run/a,b";
  s.root_disk = "/v/r,oot.qcow2";
  s.console_log = "/l/c,onsole";
  s.kernel = "/k/v,mlinux";
  auto a = qemu_argv(s, true, 1, "qemu");
  BOOST_TEST_INFO(joined(a));
  BOOST_TEST(after(a, "-qmp") == "unix:/run/a,,b/qmp.sock,server=on,wait=off");
  BOOST_TEST(has(a, "id=root,file=/v/r,,oot.qcow2,format=qcow2,if=none"));
  BOOST_TEST(has(a, "file,id=serial0,path=/l/c,,onsole,append=on"));
  BOOST_TEST(has(a, "socket,path=/run/a,,b/agent.sock,server=on,wait=off,id=ch0"));
  BOOST_TEST(after(a, "-kernel") == "/k/v,mlinux"); // a plain argument: not an option string
}

// Boot snapshots: a template's RAM is a shared file; a restore maps it privately and waits
// for its state (-incoming defer); an ordinary boot has neither.
BOOST_AUTO_TEST_CASE(memory_file_and_incoming) {
  auto plain = qemu_argv(sample(), true, 0, "/usr/bin/qemu-system-x86_64");
  BOOST_TEST(!has(plain, "-incoming"));
  BOOST_TEST(after(plain, "-object").empty());
  auto s = sample();
  s.memory_file = "/s/snap,1/ram";
  s.memory_shared = true;
  auto t = qemu_argv(s, true, 0, "/usr/bin/qemu-system-x86_64");
  BOOST_TEST(after(t, "-object") == "memory-backend-file,id=ram0,size=512M,mem-path=/s/snap,,1/ram,share=on");
  BOOST_TEST(has(t, "memory-backend=ram0"));
  BOOST_TEST(!has(t, "-incoming"));
  s.memory_shared = false;
  s.incoming = true;
  auto r = qemu_argv(s, true, 0, "/usr/bin/qemu-system-x86_64");
  BOOST_TEST(after(r, "-object").ends_with(",share=off"), joined(r));
  BOOST_TEST(after(r, "-incoming") == "defer");
  BOOST_TEST(after(r, "-m") == "512");
}

// A boot snapshot's key: what the guest boots with, never which VM it is.
BOOST_AUTO_TEST_CASE(guest_shape_leaves_out_the_vm_and_keeps_what_the_guest_boots_with) {
  auto d = make_qemu_driver(fs::path("/usr/bin/qemu-system-x86_64"));
  auto a = sample();
  a.tap = "bgt1";
  a.ip_cidr = "172.30.0.5/24";
  a.gateway = "172.30.0.1";
  a.work_disk = "/v/a/work.ext4";
  auto b = a;
  b.name = "other";
  b.dir = "/run/banger/vms/other";
  b.console_log = "/var/lib/banger/vms/other/console.log";
  b.root_disk = "/v/b/root.qcow2";
  b.work_disk = "/v/b/work.ext4";
  b.tap = "bgt2";
  b.ip_cidr = "172.30.0.6/24";
  BOOST_TEST(d->guest_shape(a) == d->guest_shape(b));
  BOOST_TEST(d->guest_shape(a).find("web-1") == std::string::npos);
  for (auto edit : std::vector<std::function<void(vm_spec&)>>{
         [](vm_spec& s) { s.memory_mib = 1024; }, [](vm_spec& s) { s.vcpus = 1; },
         [](vm_spec& s) { s.kernel = "/k2/vmlinux"; }, [](vm_spec& s) { s.initrd = "/k/initrd.img"; },
         [](vm_spec& s) { s.extra_cmdline = "loglevel=7"; }, [](vm_spec& s) { s.tap.clear(); },
         [](vm_spec& s) { s.work_disk.clear(); }}) {
    auto c = a;
    edit(c);
    BOOST_TEST(d->guest_shape(c) != d->guest_shape(a));
  }
}

BOOST_AUTO_TEST_CASE(file_tail_trims_and_bounds) {
  test::temp_dir tmp("vmm-tail");
  auto f = tmp.path / "err";
  BOOST_TEST(file_tail(f).empty());
  std::ofstream(f) << "line one\nqemu-system-x86_64: could not load kernel '/x'\n\n";
  BOOST_TEST(file_tail(f) == "line one\nqemu-system-x86_64: could not load kernel '/x'");
  BOOST_TEST(file_tail(f, 10) == "nel '/x'");
}

BOOST_AUTO_TEST_SUITE_END()
