// Unit tests of vmm.hpp's pure parts (kernel command line, MAC, validation, KVM detection) and of
// process identity (process_identity.hpp, the driver's matches/wait_exit/kill) on real processes.
#include "vmm/vmm.hpp"

#include <csignal>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <fmt/format.h>

#include "common/process.hpp"
#include "common/sha256.hpp"
#include "vmm/process_identity.hpp"

using namespace banger;
using namespace banger::vmm;
using namespace std::chrono_literals;

namespace {

vm_spec sample() {
  vm_spec s;
  s.name = "web-1";
  s.dir = "/run/banger/vms/web-1";
  s.console_log = "/var/lib/banger/vms/web-1/console.log";
  s.kernel = "/k/vmlinux";
  s.root_disk = "/v/root.qcow2";
  return s;
}

bool has_word(const std::string& line, std::string_view word) {
  return (" " + line + " ").find(fmt::format(" {} ", word)) != std::string::npos;
}

/// A forked child that sleeps until killed; the test reaps it.
int fork_sleeper() {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::execl("/bin/sleep", "sleep", "600", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  BOOST_TEST_REQUIRE(pid > 0);
  return pid;
}

/// The identity of a live pid, as launch would record it.
vmm_process identify(int pid) {
  vmm_process p;
  p.pid = pid;
  for (int i = 0; i < 200; ++i) { // until the child has exec'd (its cmdline changes then)
    auto h = cmdline_sha256(pid);
    if (h && *h == sha256_hex(std::string_view("sleep\0"
                                               "600\0",
                                               10)))
      break;
    std::this_thread::sleep_for(5ms);
  }
  auto st = read_proc_stat(pid);
  BOOST_TEST_REQUIRE(st.has_value());
  p.start_time = st->start_time;
  p.cmdline_sha256 = cmdline_sha256(pid).value_or("");
  return p;
}

} // namespace

BOOST_AUTO_TEST_SUITE(vmm_basics)

BOOST_AUTO_TEST_CASE(kernel_cmdline_under_tcg_and_kvm) {
  auto s = sample();
  auto tcg = kernel_cmdline(s, true, 2500000);
  BOOST_TEST(tcg.starts_with("console=ttyS0 reboot=k panic=1 root=/dev/vda rw quiet "), tcg);
  for (auto w : {"tsc_early_khz=2500000", "tsc=reliable", "no_timer_check", "init=/usr/local/sbin/banger-init",
                 "banger.hostname=web-1"})
    BOOST_TEST(has_word(tcg, w), w << " missing from " << tcg);
  BOOST_TEST(tcg.find("ip=") == std::string::npos, tcg);
  BOOST_TEST(tcg.find("banger.work") == std::string::npos, tcg);

  auto kvm = kernel_cmdline(s, false, 2500000);
  BOOST_TEST(kvm.find("tsc") == std::string::npos, kvm);
  BOOST_TEST(kvm.find("no_timer_check") == std::string::npos, kvm);
  BOOST_TEST(has_word(kvm, "banger.hostname=web-1"), kvm);

  // An unknown host rate: keep the other TSC flags, skip the rate.
  auto unknown = kernel_cmdline(s, true, 0);
  BOOST_TEST(unknown.find("tsc_early_khz") == std::string::npos, unknown);
  BOOST_TEST(has_word(unknown, "tsc=reliable"), unknown);
}

BOOST_AUTO_TEST_CASE(kernel_cmdline_ip_work_init_and_extra) {
  auto s = sample();
  s.ip_cidr = "172.30.0.5/24";
  s.gateway = "172.30.0.1";
  s.work_disk = "/v/work.ext4";
  s.init.clear();
  s.extra_cmdline = "loglevel=7 foo=bar";
  auto c = kernel_cmdline(s, false, 0);
  BOOST_TEST(has_word(c, "ip=172.30.0.5::172.30.0.1:255.255.255.0:web-1:eth0:off"), c);
  BOOST_TEST(has_word(c, "banger.work=/dev/vdb"), c);
  BOOST_TEST(c.find("init=") == std::string::npos, c);
  BOOST_TEST(c.ends_with(" loglevel=7 foo=bar"), c);

  s.ip_cidr = "10.1.2.3/20";
  s.gateway.clear();
  BOOST_TEST(has_word(kernel_cmdline(s, false, 0), "ip=10.1.2.3:::255.255.240.0:web-1:eth0:off"));
  // banger-init takes the address as banger.ip=, so the initramfs does not apply it first.
  s.init = "/usr/local/sbin/banger-init";
  c = kernel_cmdline(s, false, 0);
  BOOST_TEST(has_word(c, "banger.ip=10.1.2.3:::255.255.240.0:web-1:eth0:off"), c);
  BOOST_TEST(c.find(" ip=") == std::string::npos, c);
}

// A boot snapshot's template is shared by every VM restored from it: nothing of one VM's may be
// on its command line.
BOOST_AUTO_TEST_CASE(kernel_cmdline_of_a_template_has_no_identity) {
  auto s = sample();
  s.ip_cidr = "172.30.0.5/24";
  s.gateway = "172.30.0.1";
  s.work_disk = "/v/work.ext4";
  s.init = "/usr/local/sbin/banger-init";
  s.await_settings = true;
  auto c = kernel_cmdline(s, true, 2000000);
  BOOST_TEST(has_word(c, "banger.await"), c);
  BOOST_TEST(has_word(c, "banger.work=/dev/vdb"), c);
  BOOST_TEST(has_word(c, "init=/usr/local/sbin/banger-init"), c);
  BOOST_TEST(has_word(c, "tsc_early_khz=2000000"), c);
  BOOST_TEST(c.find("web-1") == std::string::npos, c);
  BOOST_TEST(c.find("172.30") == std::string::npos, c);
  BOOST_TEST(c.find("hostname") == std::string::npos, c);
  s.await_settings = false;
  BOOST_TEST(!has_word(kernel_cmdline(s, true, 0), "banger.await"));
  // What the template leaves out comes through the agent after a restore.
  s.tap = "bgt1";
  BOOST_TEST(restored_settings(s) == "banger.hostname=web-1 banger.mac=" + derive_mac("web-1") +
                                       " banger.ip=172.30.0.5::172.30.0.1:255.255.255.0:web-1:eth0:off");
  s.tap.clear();
  s.ip_cidr.clear();
  s.gateway.clear();
  BOOST_TEST(restored_settings(s) == "banger.hostname=web-1");
}

BOOST_AUTO_TEST_CASE(mac_is_stable_unicast_and_locally_administered) {
  auto a = derive_mac("web-1");
  BOOST_TEST(a == derive_mac("web-1"));
  BOOST_TEST(a != derive_mac("web-2"));
  BOOST_TEST(a.size() == 17u);
  BOOST_TEST(a.starts_with("52:54:00:"), a);
  int first = std::stoi(a.substr(0, 2), nullptr, 16);
  BOOST_TEST((first & 0x02) != 0); // locally administered
  BOOST_TEST((first & 0x01) == 0); // unicast
  auto s = sample();
  s.mac = a;
  BOOST_TEST(validate(s).has_value());
}

BOOST_AUTO_TEST_CASE(validate_rejects_each_bad_field) {
  auto ok = validate(sample());
  BOOST_TEST(ok.has_value(), (ok ? "" : ok.err().message));
  auto bad = [](auto edit) {
    auto s = sample();
    edit(s);
    auto r = validate(s);
    BOOST_TEST_REQUIRE(!r.has_value());
    BOOST_TEST((r.err().code == errc::bad_request));
    return r.err().message;
  };
  BOOST_TEST(bad([](vm_spec& s) { s.name = "-x"; }).find("DNS label") != std::string::npos);
  bad([](vm_spec& s) { s.name = ""; });
  bad([](vm_spec& s) { s.name = "a.b"; });
  bad([](vm_spec& s) { s.name = std::string(64, 'a'); });
  bad([](vm_spec& s) { s.kernel.clear(); });
  bad([](vm_spec& s) { s.root_disk = "/a\nb"; });
  BOOST_TEST(bad([](vm_spec& s) { s.dir = "/" + std::string(100, 'd'); }).find("too long") != std::string::npos);
  bad([](vm_spec& s) { s.vcpus = 0; });
  bad([](vm_spec& s) { s.memory_mib = 8; });
  bad([](vm_spec& s) { s.tap = "tap,script=/x"; });
  bad([](vm_spec& s) { s.tap = "a-very-long-tap-name"; });
  bad([](vm_spec& s) { s.mac = "53:54:00:00:00:01"; }); // multicast
  bad([](vm_spec& s) { s.mac = "52:54:00:00:00"; });
  bad([](vm_spec& s) { s.ip_cidr = "172.30.0.5"; });
  bad([](vm_spec& s) { s.ip_cidr = "172.30.0.5/33"; });
  bad([](vm_spec& s) { s.ip_cidr = "300.1.1.1/24"; });
  bad([](vm_spec& s) { s.gateway = "172.30.0.1"; }); // without an address
  bad([](vm_spec& s) {
    s.ip_cidr = "172.30.0.5/24";
    s.gateway = "gw";
  });
  bad([](vm_spec& s) { s.init = "/sbin/init quiet"; });
  bad([](vm_spec& s) { s.extra_cmdline = "a\nb"; });
  bad([](vm_spec& s) { s.memory_file = "/m/ram\n"; });
  // A restore maps the snapshot's memory privately: it needs the file and must not share it.
  BOOST_TEST(bad([](vm_spec& s) { s.incoming = true; }).find("memory file") != std::string::npos);
  bad([](vm_spec& s) {
    s.incoming = true;
    s.memory_file = "/m/ram";
    s.memory_shared = true;
  });
  auto restored = sample();
  restored.incoming = true;
  restored.memory_file = "/m/ram";
  BOOST_TEST(validate(restored).has_value());
}

BOOST_AUTO_TEST_CASE(kvm_usable_follows_dev_kvm_and_cpu_flags) {
  BOOST_TEST(cpuinfo_has_hw_virt("processor\t: 0\nflags\t\t: fpu vme vmx sse\n"));
  BOOST_TEST(cpuinfo_has_hw_virt("flags\t\t: fpu svm\n"));
  BOOST_TEST(!cpuinfo_has_hw_virt("flags\t\t: fpu vmxnot svmx sse\n"));
  BOOST_TEST(!cpuinfo_has_hw_virt("vmx flags\t: ept vpid\nflags\t\t: fpu\n"));
  BOOST_TEST(!cpuinfo_has_hw_virt(""));

  // This machine's answer, from its own /proc/cpuinfo and /dev/kvm (host-facts.md: PVM has no
  // vmx/svm, so false here; true on an ordinary KVM host).
  auto info = read_file("/proc/cpuinfo");
  BOOST_TEST_REQUIRE(info.has_value());
  bool flags = info->find(" vmx") != std::string::npos || info->find(" svm") != std::string::npos;
  bool dev = ::access("/dev/kvm", R_OK | W_OK) == 0;
  BOOST_TEST(kvm_usable() == (flags && dev));
  BOOST_TEST(host_tsc_khz() > 0);
}

BOOST_AUTO_TEST_CASE(proc_stat_parsing) {
  auto st = parse_proc_stat("123 (a (weird) name) S 1 123 123 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 "
                            "1000 10 18446744073709551615");
  BOOST_TEST_REQUIRE(st.has_value());
  BOOST_TEST(st->state == 'S');
  BOOST_TEST(st->start_time == 98765u);
  BOOST_TEST(!parse_proc_stat("123 (x) S 1 2").has_value());
  BOOST_TEST(!parse_proc_stat("garbage").has_value());
  auto self = read_proc_stat(::getpid());
  BOOST_TEST_REQUIRE(self.has_value());
  BOOST_TEST(self->start_time > 0u);
  BOOST_TEST(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

BOOST_AUTO_TEST_CASE(matches_only_the_same_live_process) {
  auto d = make_qemu_driver("/nonexistent/qemu");
  // This test's own process, with the right hash but a different start time: not a match.
  auto self = read_proc_stat(::getpid());
  BOOST_TEST_REQUIRE(self.has_value());
  vmm_process me{::getpid(), self->start_time, cmdline_sha256(::getpid()).value_or(""), {}, {}};
  BOOST_TEST(d->matches(me));
  auto other_start = me;
  other_start.start_time += 1;
  BOOST_TEST(!d->matches(other_start));
  auto other_cmd = me;
  other_cmd.cmdline_sha256 = sha256_hex("qemu-system-x86_64");
  BOOST_TEST(!d->matches(other_cmd));
  BOOST_TEST(!d->matches(vmm_process{}));
  // Never signals a process that is not that VMM.
  auto k = d->kill(other_start, SIGTERM);
  BOOST_TEST_REQUIRE(!k.has_value());
  BOOST_TEST((k.err().code == errc::not_running));
  BOOST_TEST((d->status(other_start).err().code == errc::not_running));
  BOOST_TEST((d->quit(other_start).err().code == errc::not_running));
  BOOST_TEST(d->wait_exit(other_start, 0ms)); // the process it names has gone

  // A child: matches while alive; wait_exit reaps it once killed; then it matches no more.
  int pid = fork_sleeper();
  auto p = identify(pid);
  BOOST_TEST(d->matches(p));
  BOOST_TEST(!d->wait_exit(p, 50ms));
  BOOST_TEST(d->kill(p, SIGKILL).has_value());
  BOOST_TEST(d->wait_exit(p, 5s));
  BOOST_TEST(!d->matches(p));
  BOOST_TEST(::waitpid(pid, nullptr, WNOHANG) == -1); // already reaped by wait_exit
  BOOST_TEST(!d->kill(p, SIGKILL).has_value());

  // A zombie (dead, not reaped) does not match.
  int z = fork_sleeper();
  auto zp = identify(z);
  ::kill(z, SIGKILL);
  for (int i = 0; i < 200; ++i) {
    auto st = read_proc_stat(z);
    if (st && st->state == 'Z')
      break;
    std::this_thread::sleep_for(5ms);
  }
  BOOST_TEST(!d->matches(zp));
  BOOST_TEST(d->wait_exit(zp, 5s));
  BOOST_TEST(!read_proc_stat(z).has_value());
}

BOOST_AUTO_TEST_CASE(launch_reports_what_is_missing) {
  auto s = sample();
  auto no_qemu = make_qemu_driver("/nonexistent/qemu")->launch(s);
  BOOST_TEST_REQUIRE(!no_qemu.has_value());
  BOOST_TEST((no_qemu.err().code == errc::unavailable));
  BOOST_TEST(no_qemu.err().message.find("/nonexistent/qemu") != std::string::npos, no_qemu.err().message);

  auto bad_spec = s;
  bad_spec.name = "Not A Label";
  BOOST_TEST((make_qemu_driver("/bin/true")->launch(bad_spec).err().code == errc::bad_request));

  s.dir = "/";
  auto no_kernel = make_qemu_driver("/bin/true")->launch(s);
  BOOST_TEST_REQUIRE(!no_kernel.has_value());
  BOOST_TEST((no_kernel.err().code == errc::not_found));
  BOOST_TEST(no_kernel.err().message.find("/k/vmlinux") != std::string::npos, no_kernel.err().message);
}

BOOST_AUTO_TEST_SUITE_END()
