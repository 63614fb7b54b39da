// End to end: real QEMU microvm guests (TCG on this host) launched and stopped through the vmm
// driver, the way the VM actor will. Debian's cloud kernel is imported (guestfs/kernel_dir.hpp)
// and a busybox image built with the real static banger-init and banger-agent
// (guestfs/image.hpp), as tests/e2e/guest_boot does; each VM gets a qcow2 overlay and a copy of
// the work seed. No network device: this runs outside any netns and creates no interface. One
// guest at a time; any VM a failed check leaves behind is SIGKILLed by guard. Timings are
// printed, never asserted.
#include <boost/test/unit_test.hpp>

#include <csignal>
#include <fcntl.h>
#include <fstream>
#include <iostream>
#include <optional>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <fmt/format.h>

#include "common/process.hpp"
#include "guestfs/image.hpp"
#include "guestfs/kernel_dir.hpp"
#include "tests/support/agent_client.hpp"
#include "tests/support/kernel_cache.hpp"
#include "tests/support/proc.hpp"
#include "vmm/vmm.hpp"

namespace banger::vmm {

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

template <class T>
std::string why(const expected<T>& r) {
  return r ? std::string() : r.err().message;
}

double seconds_since(clock_type::time_point t) { return std::chrono::duration<double>(clock_type::now() - t).count(); }

/// The kernel directory and the busybox image, built once for the test module.
struct assets {
  test::temp_dir tmp{"banger-vmm-e2e"};
  fs::path kernel = tmp.path / "kernel";
  fs::path image = tmp.path / "image";
  bool ready = false;
};

void prepare(assets& a) {
  auto deb = test::cloud_kernel_deb();
  guestfs::kernel_dir_spec spec;
  spec.name = "debian-cloud";
  spec.source = "deb:" + deb.package + "@" + deb.version;
  auto k = guestfs::import_kernel_deb(deb.path, spec, a.kernel);
  BOOST_TEST_REQUIRE(k.has_value(), "importing the Debian cloud kernel " << deb.path << ": " << why(k));
  BOOST_TEST_REQUIRE((k->format == guestfs::kernel_format::pvh_elf), "cloud kernel not converted: " << k->why_not_pvh);
  guestfs::guest_binaries bins{test::bin_dir() / "banger-agent", test::bin_dir() / "banger-init"};
  auto m = guestfs::build_busybox_image("busybox", bins, a.image, {});
  BOOST_TEST_REQUIRE(m.has_value(), "building the busybox image: " << why(m));
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

/// A fresh VM: runtime dir (0700), qcow2 overlay on the image's rootfs, a copy of the work seed.
vm_spec fresh_vm(const assets& a, const std::string& name) {
  vm_spec s;
  s.name = name;
  s.dir = a.tmp.path / name;
  fs::remove_all(s.dir);
  fs::create_directories(s.dir);
  fs::permissions(s.dir, fs::perms::owner_all);
  s.console_log = s.dir / "console.log";
  s.kernel = a.kernel / "vmlinux";
  s.initrd = a.kernel / "initrd.img";
  s.root_disk = s.dir / "root.qcow2";
  auto r = test::run({"/usr/bin/qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b",
                      (a.image / "rootfs.ext4").string(), s.root_disk.string()});
  BOOST_TEST_REQUIRE(r.exit_code == 0, "qemu-img create: " << r.err << r.out);
  s.work_disk = s.dir / "work.ext4";
  fs::copy_file(a.image / "work-seed.ext4", s.work_disk);
  s.memory_mib = 128;
  return s;
}

/// Pids of live processes whose command line contains `needle`.
std::vector<int> processes_mentioning(const std::string& needle) {
  std::vector<int> out;
  for (auto& e : fs::directory_iterator("/proc")) {
    auto name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos)
      continue;
    auto cmd = test::slurp(e.path() / "cmdline");
    for (auto& c : cmd)
      if (c == '\0')
        c = ' ';
    if (cmd.find(needle) != std::string::npos && process_alive(std::stoi(name)))
      out.push_back(std::stoi(name));
  }
  return out;
}

/// SIGKILLs and reaps a launched VMM when a check fails before the test stopped it.
struct guard {
  driver& d;
  vmm_process p;
  ~guard() {
    if (p.pid > 0 && d.matches(p)) {
      (void)d.kill(p, SIGKILL);
      d.wait_exit(p, 10s);
    }
  }
};

/// Pings the guest agent through the VMM's virtio-serial socket until it answers or `deadline`;
/// returns its hostname. The guest reopens its port after a lost attempt, so retries reconnect.
std::optional<std::string> ping_agent(kj::AsyncIoContext& io, driver& d, const vmm_process& p,
                                      clock_type::time_point deadline) {
  test::agent_connection c;
  while (clock_type::now() < deadline && d.matches(p)) {
    try {
      c.open(io, p.agent_socket);
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
      auto r = test::wait_for(io, c.agent().pingRequest().send(), std::min<std::chrono::milliseconds>(left, 15s));
      std::string host = r.getHostname().cStr();
      c.close();
      return host;
    } catch (const kj::Exception&) {
      c.close();
      std::this_thread::sleep_for(50ms);
    }
  }
  return std::nullopt;
}

/// Where QEMU's fd `n` points ("" when it has none).
std::string fd_target(int pid, int n) {
  std::error_code ec;
  auto t = fs::read_symlink(fmt::format("/proc/{}/fd/{}", pid, n), ec);
  return ec ? std::string() : t.string();
}

} // namespace

BOOST_AUTO_TEST_SUITE(vmm_e2e)

BOOST_AUTO_TEST_CASE(launch_status_agent_then_powerdown) {
  auto& a = shared_assets();
  auto s = fresh_vm(a, "vm-powerdown");
  auto d = make_qemu_driver();
  BOOST_TEST(d->name() == "qemu");
  // A descriptor the launching process holds without CLOEXEC: QEMU must not inherit it.
  unique_fd leak(::open((s.dir / "leak-marker").c_str(), O_CREAT | O_RDWR, 0600));
  BOOST_TEST_REQUIRE(bool(leak));

  auto t0 = clock_type::now();
  auto p = d->launch(s);
  BOOST_TEST_REQUIRE(p.has_value(), "launch: " << why(p));
  guard g{*d, *p};
  auto qmp_s = seconds_since(t0);
  BOOST_TEST(p->qmp_socket == s.dir / "qmp.sock");
  BOOST_TEST(p->agent_socket == s.dir / "agent.sock");
  BOOST_TEST(p->start_time > 0u);
  BOOST_TEST(p->cmdline_sha256.size() == 64u);
  BOOST_TEST(d->matches(*p));
  BOOST_TEST(::getsid(p->pid) == p->pid, "QEMU is not in its own session");
  BOOST_TEST(::getpgid(p->pid) == p->pid);

  // Only stdin (/dev/null) and stdout/stderr (qemu.stderr) were passed on.
  BOOST_TEST(fd_target(p->pid, 0) == "/dev/null");
  BOOST_TEST(fd_target(p->pid, 1) == (s.dir / "qemu.stderr").string());
  BOOST_TEST(fd_target(p->pid, 2) == (s.dir / "qemu.stderr").string());
  for (auto& e : fs::directory_iterator(fmt::format("/proc/{}/fd", p->pid)))
    BOOST_TEST(fs::read_symlink(e.path()).filename() != "leak-marker", "QEMU inherited fd " << e.path());

  auto st = d->status(*p);
  BOOST_TEST_REQUIRE(st.has_value(), why(st));
  BOOST_TEST(*st == "running");

  auto io = kj::setupAsyncIo();
  auto host = ping_agent(io, *d, *p, clock_type::now() + 120s);
  BOOST_TEST_REQUIRE(host.has_value(), "the agent never answered; console:\n" << test::slurp(s.console_log));
  auto agent_s = seconds_since(t0);
  BOOST_TEST(*host == "vm-powerdown");

  auto t1 = clock_type::now();
  auto pd = d->powerdown(*p);
  BOOST_TEST_REQUIRE(pd.has_value(), why(pd));
  BOOST_TEST(d->wait_exit(*p, 60s), "QEMU still running 60 s after powerdown; console:\n"
                                      << test::slurp(s.console_log));
  auto down_s = seconds_since(t1);
  BOOST_TEST(!d->matches(*p));
  BOOST_TEST((d->status(*p).err().code == errc::not_running));
  BOOST_TEST(::waitpid(p->pid, nullptr, WNOHANG) == -1); // reaped by wait_exit
  std::cout << fmt::format("vmm e2e (TCG): launch -> QMP ready {:.2f} s, -> agent ping {:.2f} s; "
                           "powerdown -> QEMU exited {:.2f} s\n",
                           qmp_s, agent_s, down_s)
            << std::flush;
}

BOOST_AUTO_TEST_CASE(quit_removes_the_sockets_and_a_second_launch_conflicts) {
  auto& a = shared_assets();
  auto s = fresh_vm(a, "vm-quit");
  s.vcpus = 2;
  std::ofstream(s.console_log) << "PREVIOUS-BOOT-MARKER\n";
  auto d = make_qemu_driver();
  auto t0 = clock_type::now();
  auto p = d->launch(s);
  BOOST_TEST_REQUIRE(p.has_value(), "launch: " << why(p));
  guard g{*d, *p};
  auto qmp_s = seconds_since(t0);
  BOOST_TEST(fs::exists(p->qmp_socket));
  BOOST_TEST(fs::exists(p->agent_socket));

  // The same runtime dir while this VMM serves it: refused, and the running one untouched.
  auto again = d->launch(s);
  BOOST_TEST_REQUIRE(!again.has_value());
  BOOST_TEST((again.err().code == errc::conflict), again.err().message);
  BOOST_TEST(d->matches(*p));

  auto io = kj::setupAsyncIo();
  auto host = ping_agent(io, *d, *p, clock_type::now() + 120s);
  BOOST_TEST_REQUIRE(host.has_value(), "the agent never answered; console:\n" << test::slurp(s.console_log));
  auto agent_s = seconds_since(t0);
  auto st = d->status(*p);
  BOOST_TEST((st && *st == "running"), why(st));

  // Paused: QEMU lives on with the guest frozen (twice is still paused), then runs on.
  auto paused = d->pause(*p);
  BOOST_TEST_REQUIRE(paused.has_value(), why(paused));
  BOOST_TEST(d->pause(*p).has_value());
  st = d->status(*p);
  BOOST_TEST((st && *st == "paused"), why(st));
  BOOST_TEST(d->matches(*p));
  auto resumed = d->resume(*p);
  BOOST_TEST_REQUIRE(resumed.has_value(), why(resumed));
  st = d->status(*p);
  BOOST_TEST((st && *st == "running"), why(st));
  BOOST_TEST(ping_agent(io, *d, *p, clock_type::now() + 60s).has_value(), "the agent did not answer after resume");

  auto t1 = clock_type::now();
  auto q = d->quit(*p);
  BOOST_TEST_REQUIRE(q.has_value(), why(q));
  BOOST_TEST(d->wait_exit(*p, 10s));
  auto quit_s = seconds_since(t1);
  BOOST_TEST(!fs::exists(p->qmp_socket));
  BOOST_TEST(!fs::exists(p->agent_socket));
  BOOST_TEST((d->pause(*p).err().code == errc::not_running)); // no VMM, nothing to pause
  BOOST_TEST(!d->matches(*p));
  BOOST_TEST((d->quit(*p).err().code == errc::not_running));
  BOOST_TEST(processes_mentioning(s.dir.string()).empty());
  // The console is appended to, never truncated.
  auto console = test::slurp(s.console_log);
  BOOST_TEST(console.starts_with("PREVIOUS-BOOT-MARKER\n"));
  BOOST_TEST(console.find("banger-init") != std::string::npos, console);
  std::cout << fmt::format("vmm e2e (TCG, 2 vCPUs): launch -> QMP ready {:.2f} s, -> agent ping {:.2f} s; "
                           "quit -> QEMU exited {:.2f} s\n",
                           qmp_s, agent_s, quit_s)
            << std::flush;
}

BOOST_AUTO_TEST_CASE(sigkill_through_the_driver) {
  auto& a = shared_assets();
  auto s = fresh_vm(a, "vm-kill");
  auto d = make_qemu_driver();
  auto p = d->launch(s);
  BOOST_TEST_REQUIRE(p.has_value(), "launch: " << why(p));
  guard g{*d, *p};
  BOOST_TEST(d->kill(*p, SIGKILL).has_value());
  BOOST_TEST(d->wait_exit(*p, 10s));
  BOOST_TEST(!d->matches(*p));
  BOOST_TEST((d->kill(*p, SIGKILL).err().code == errc::not_running));
  BOOST_TEST(processes_mentioning(s.dir.string()).empty());
}

BOOST_AUTO_TEST_CASE(a_missing_kernel_is_named_and_starts_nothing) {
  auto& a = shared_assets();
  auto s = fresh_vm(a, "vm-nokernel");
  s.kernel = s.dir / "no-such-vmlinux";
  auto p = make_qemu_driver()->launch(s);
  BOOST_TEST_REQUIRE(!p.has_value());
  BOOST_TEST((p.err().code == errc::not_found));
  BOOST_TEST(p.err().message.find(s.kernel.string()) != std::string::npos, p.err().message);
  BOOST_TEST(processes_mentioning(s.dir.string()).empty());
}

BOOST_AUTO_TEST_CASE(a_failing_qemu_reports_its_stderr_and_leaves_nothing) {
  auto& a = shared_assets();
  auto s = fresh_vm(a, "vm-badroot");
  std::ofstream(s.root_disk, std::ios::trunc) << "this is not a qcow2 image\n";
  auto p = make_qemu_driver()->launch(s);
  BOOST_TEST_REQUIRE(!p.has_value());
  BOOST_TEST((p.err().code == errc::operation_failed));
  BOOST_TEST(p.err().message.find("qemu.stderr ends with") != std::string::npos, p.err().message);
  BOOST_TEST(p.err().message.find("qcow2") != std::string::npos, p.err().message);
  BOOST_TEST(processes_mentioning(s.dir.string()).empty());
  BOOST_TEST_MESSAGE("launch error: " << p.err().message);
}

BOOST_AUTO_TEST_CASE(a_vmm_that_never_answers_qmp_is_killed) {
  auto& a = shared_assets();
  auto s = fresh_vm(a, "vm-silent");
  // A "QEMU" that never opens its QMP socket, with a child of its own: the whole session goes.
  auto fake = s.dir / "fake-qemu";
  std::ofstream(fake) << "#!/bin/sh\n/bin/sleep 6001\n";
  fs::permissions(fake, fs::perms::owner_all);
  qemu_options o;
  o.binary = fake;
  o.launch_timeout = 1500ms;
  auto p = make_qemu_driver(o)->launch(s);
  BOOST_TEST_REQUIRE(!p.has_value());
  BOOST_TEST((p.err().code == errc::operation_failed));
  BOOST_TEST(p.err().message.find("did not answer on " + (s.dir / "qmp.sock").string() + " within 1500 ms") !=
               std::string::npos,
             p.err().message);
  BOOST_TEST(p.err().message.find("killed") != std::string::npos, p.err().message);
  for (int i = 0; i < 100 && !processes_mentioning("sleep 6001").empty(); ++i)
    std::this_thread::sleep_for(10ms); // SIGKILL is delivered asynchronously
  BOOST_TEST(processes_mentioning(fake.string()).empty());
  BOOST_TEST(processes_mentioning("sleep 6001").empty());
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace banger::vmm
