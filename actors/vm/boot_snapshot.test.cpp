// Boot snapshots against a fake driver (fake_driver.test.hpp) whose "guest" writes banger-init's
// console lines: a template is saved once its init says it waits for the host's settings (the
// marker guest/init prints, common/guest_protocol.hpp); an init that boots on without waiting
// marks the shape unsupported; a template that dies is reported with its console; a restore
// resumes the template and hands the guest its settings, clock and entropy; a state that does not
// load drops the snapshot. No QEMU.
#include <boost/test/unit_test.hpp>

#include <fstream>

#include "actors/vm/boot_snapshot.hpp"
#include "actors/vm/fake_driver.test.hpp"
#include "common/guest_protocol.hpp"
#include "common/process.hpp"
#include "tests/support/proc.hpp"

using namespace banger;
using namespace banger::actors;
namespace fs = std::filesystem;

namespace {

struct world {
  banger::test::temp_dir dir{"banger-boot-snapshot"};
  std::shared_ptr<fakes::fake_driver> driver = std::make_shared<fakes::fake_driver>();
  fakes::fake_agent agent;
  host_env h;
  vm_state s;
  vm_paths p;
  vmm::vm_spec spec;

  world() {
    h.cfg.state = dir.path / "state";
    h.cfg.runtime = dir.path / "run";
    h.cfg.images = h.cfg.state / "images";
    h.cfg.templates = h.cfg.state / "cache" / "vm-templates";
    h.cfg.agent_timeout = std::chrono::milliseconds(500);
    h.driver = driver;
    h.agent = agent.access();
    s.name = "web";
    s.id = "0a1b2c3d";
    s.image = "img";
    s.image_version = "v1";
    p = paths_of(h.cfg, s.name);
    fs::create_directories(p.state_dir);
    fs::create_directories(p.runtime_dir);
    std::ofstream(p.overlay()) << "never booted overlay";
    spec.name = s.name;
    spec.dir = p.runtime_dir;
    spec.console_log = p.console_log();
    spec.kernel = "/k/vmlinux";
    spec.root_disk = p.overlay();
    spec.vcpus = 1;
    spec.memory_mib = 128;
    spec.tap = "bgt0a1b2c3d";
    spec.ip_cidr = "172.30.0.9/24";
    spec.gateway = "172.30.0.1";
  }
  static std::string line(std::string_view msg) {
    return std::string(guest_protocol::init_line_prefix) + "1.234] " + std::string(msg) + "\n";
  }
};

} // namespace

BOOST_AUTO_TEST_SUITE(boot_snapshots)

BOOST_AUTO_TEST_CASE(a_template_is_saved_once_its_init_waits_for_the_hosts_settings) {
  world w;
  w.driver->console_script = w.line("mounted") + w.line(guest_protocol::init_awaiting_settings);
  auto final = w.dir.path / "snap";
  auto tmp = w.dir.path / "snap.tmp";
  auto r = build_boot_snapshot(w.h, final, w.p.overlay(), w.spec, tmp);
  BOOST_TEST_REQUIRE(r.has_value(), (r ? "" : r.err().message));
  BOOST_TEST_REQUIRE(w.driver->launched.size() == 1u);
  const auto& t = w.driver->launched[0];
  BOOST_TEST(t.await_settings);
  BOOST_TEST(t.memory_shared);
  BOOST_TEST(t.memory_file == tmp / "ram");
  BOOST_TEST(t.root_disk == tmp / "overlay.qcow2");
  BOOST_TEST(t.console_log == tmp / "console.log");
  BOOST_TEST(*read_file(tmp / "overlay.qcow2") == "never booted overlay");
  std::vector<std::string> want = {"save " + (tmp / "state").string(), "quit 4000"};
  BOOST_TEST(w.driver->calls == want, boost::test_tools::per_element());
  BOOST_TEST((fs::status(tmp).permissions() == fs::perms::owner_all)); // the guest's memory is in it
}

BOOST_AUTO_TEST_CASE(an_init_that_boots_on_without_waiting_marks_the_shape_unsupported) {
  world w;
  w.driver->console_script = w.line(std::string(guest_protocol::init_ready) + "2 services, 1 input devices)");
  auto final = w.dir.path / "snap";
  auto r = build_boot_snapshot(w.h, final, w.p.overlay(), w.spec, w.dir.path / "snap.tmp");
  BOOST_TEST_REQUIRE(!r.has_value());
  BOOST_TEST((r.err().code == errc::unavailable));
  BOOST_TEST(read_file(final.string() + ".unsupported").has_value());
  BOOST_TEST(w.driver->alive.empty()); // the template was killed
  BOOST_TEST(w.driver->calls.back() == "kill 4000 9");
}

BOOST_AUTO_TEST_CASE(a_template_that_dies_first_is_reported_with_its_console) {
  world w;
  w.driver->console_script = "Kernel panic - not syncing: VFS\n";
  w.driver->exit_at_launch = true;
  auto r = build_boot_snapshot(w.h, w.dir.path / "snap", w.p.overlay(), w.spec, w.dir.path / "snap.tmp");
  BOOST_TEST_REQUIRE(!r.has_value());
  BOOST_TEST(r.err().message.find("exited before its init waited") != std::string::npos, r.err().message);
  BOOST_TEST(r.err().message.find("Kernel panic") != std::string::npos, r.err().message);
}

BOOST_AUTO_TEST_CASE(a_restore_resumes_the_shapes_template_with_this_vms_settings) {
  world w;
  w.driver->console_script = w.line(guest_protocol::init_awaiting_settings);
  auto before = std::chrono::system_clock::now();
  auto proc = launch_restored(w.h, w.s, w.p, w.spec);
  BOOST_TEST_REQUIRE(proc.has_value(), (proc ? "" : proc.err().message));
  auto dir = boot_snapshot_dir(w.h, w.s, w.spec);
  BOOST_TEST(fs::exists(dir / "state"));               // made by the first start of the shape
  BOOST_TEST_REQUIRE(w.driver->launched.size() == 2u); // the template, then the VM
  const auto& vm = w.driver->launched[1];
  BOOST_TEST(vm.incoming);
  BOOST_TEST(!vm.memory_shared); // the template's RAM, mapped copy-on-write
  BOOST_TEST(vm.memory_file == dir / "ram");
  BOOST_TEST(w.driver->calls.back() == "restore " + (dir / "state").string());
  BOOST_TEST(w.agent.settings == vmm::restored_settings(w.spec));
  BOOST_TEST(w.agent.settings.find("banger.hostname=web") != std::string::npos, w.agent.settings);
  BOOST_TEST(w.agent.entropy.size() == 64u);
  BOOST_TEST(w.agent.entropy != std::string(64, '\0'));
  auto clock = std::chrono::system_clock::time_point(std::chrono::nanoseconds(w.agent.clock_ns));
  BOOST_TEST((clock >= before && clock <= std::chrono::system_clock::now()));

  // Another VM of the same shape resumes the same template; no second template boots.
  vm_state other = w.s;
  other.name = "db";
  auto spec = w.spec;
  spec.name = "db";
  BOOST_TEST(boot_snapshot_dir(w.h, other, spec) == dir);
  fs::create_directories(paths_of(w.h.cfg, "db").state_dir);
  auto again = launch_restored(w.h, other, paths_of(w.h.cfg, "db"), spec);
  BOOST_TEST(again.has_value(), (again ? "" : again.err().message));
  BOOST_TEST(w.driver->launched.size() == 3u);
  // A different shape is another snapshot.
  spec.memory_mib = 256;
  BOOST_TEST(boot_snapshot_dir(w.h, other, spec) != dir);
}

BOOST_AUTO_TEST_CASE(a_state_that_does_not_load_drops_the_snapshot) {
  world w;
  w.driver->console_script = w.line(guest_protocol::init_awaiting_settings);
  w.driver->fail_restore = true;
  auto proc = launch_restored(w.h, w.s, w.p, w.spec);
  BOOST_TEST_REQUIRE(!proc.has_value());
  BOOST_TEST(proc.err().message.find("cannot load") != std::string::npos, proc.err().message);
  BOOST_TEST(!fs::exists(boot_snapshot_dir(w.h, w.s, w.spec))); // the next first start makes a new one
  BOOST_TEST(w.driver->alive.empty());                          // nothing of the attempt runs
  BOOST_TEST(w.agent.calls.back() == "forget web");
}

BOOST_AUTO_TEST_SUITE_END()
