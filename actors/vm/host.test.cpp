// The real vm_host against fakes of its collaborators (fake_driver.test.hpp): the dispatch of
// each resource kind to its handler (what each makes, asks the network for and releases),
// shutdown's ladder, adoption and liveness, and what a delete leaves. No QEMU, no helper; the
// disks are left to disks.test.cpp, which makes real ones, except the host key the work disk
// gets here.
#include <boost/test/unit_test.hpp>

#include <csignal>
#include <fstream>

#include "actors/vm/fake_driver.test.hpp"
#include "actors/vm/known_hosts.hpp"
#include "common/guest_protocol.hpp"
#include "common/process.hpp"
#include "common/subprocess.hpp"
#include "guestfs/ext4.hpp"
#include "tests/support/proc.hpp"

using namespace banger;
using namespace banger::actors;
namespace fs = std::filesystem;

namespace {

struct world {
  banger::test::temp_dir dir{"banger-host"};
  std::shared_ptr<fakes::fake_driver> driver = std::make_shared<fakes::fake_driver>();
  fakes::fake_net net;
  fakes::fake_agent agent;
  host_config cfg;
  std::unique_ptr<vm_host> host;
  vm_state s;

  explicit world(bool network = true, bool nat = true) {
    cfg.state = dir.path / "state";
    cfg.runtime = dir.path / "run";
    cfg.images = cfg.state / "images";
    cfg.kernels = cfg.state / "kernels";
    cfg.known_hosts = cfg.state / "ssh" / "known_hosts";
    cfg.bridge = "br-test";
    cfg.net = *subnet::parse("172.30.0.0/24");
    cfg.network = network;
    cfg.nat = nat;
    cfg.boot_id = "boot-1";
    cfg.agent_timeout = std::chrono::milliseconds(300);
    host = make_host(cfg, driver, net.call(), agent.access());
    s.name = "web";
    s.id = "0a1b2c3d";
    s.image = "img";
    s.image_version = "v1";
    s.kernel = "k";
    s.kernel_version = "kv";
    s.vcpus = 2;
    s.memory_mib = 256;
  }
  void hold(resource_kind k, std::string id, std::string detail = {}) {
    s.resources.push_back({k, std::move(id), std::move(detail), true});
  }
};

} // namespace

BOOST_AUTO_TEST_SUITE(vm_host_real)

BOOST_AUTO_TEST_CASE(a_start_wants_the_network_kinds_only_with_a_network_and_nat_only_with_nat) {
  for (auto [network, nat] : {std::pair{true, true}, {true, false}, {false, true}}) {
    world w(network, nat);
    for (const auto& t : resource_table) {
      bool net_kind = t.kind == resource_kind::ip || t.kind == resource_kind::tap;
      bool want = t.kind == resource_kind::nat ? network && nat : net_kind ? network : true;
      BOOST_TEST(w.host->wants(w.s, t.kind) == want, t.name);
    }
  }
}

BOOST_AUTO_TEST_CASE(planned_ids_name_the_vms_own_paths_and_tap) {
  world w;
  auto p = paths_of(w.cfg, "web");
  BOOST_TEST(w.host->planned_id(w.s, resource_kind::overlay) == p.overlay().string());
  BOOST_TEST(w.host->planned_id(w.s, resource_kind::work_disk) == p.work_disk().string());
  BOOST_TEST(w.host->planned_id(w.s, resource_kind::tap) == "bgt0a1b2c3d");
  BOOST_TEST(w.host->planned_id(w.s, resource_kind::sockets) == p.runtime_dir.string());
  BOOST_TEST(w.host->planned_id(w.s, resource_kind::ip).empty());  // known once leased
  BOOST_TEST(w.host->planned_id(w.s, resource_kind::vmm).empty()); // known once launched
}

BOOST_AUTO_TEST_CASE(network_kinds_go_to_the_network_actor_and_come_back_by_their_ids) {
  world w;
  auto ip = w.host->acquire(w.s, resource_kind::ip, "op-1");
  BOOST_TEST_REQUIRE(ip.has_value());
  BOOST_TEST(ip->id == "172.30.0.9");
  BOOST_TEST(ip->detail == "br-test");
  w.hold(resource_kind::ip, ip->id);
  auto tap = w.host->acquire(w.s, resource_kind::tap, "op-1");
  BOOST_TEST_REQUIRE(tap.has_value());
  BOOST_TEST(tap->id == "bgt0a1b2c3d");
  auto nat = w.host->acquire(w.s, resource_kind::nat, "op-1");
  BOOST_TEST_REQUIRE(nat.has_value());
  BOOST_TEST(nat->id == "172.30.0.9");
  BOOST_TEST_REQUIRE(w.net.requests.size() == 3u);
  BOOST_TEST(std::get<net_cmd::lease>(w.net.requests[0].command).vm == "web");
  BOOST_TEST(std::get<net_cmd::create_tap>(w.net.requests[1].command).tap == "bgt0a1b2c3d");
  BOOST_TEST(std::get<net_cmd::add_nat>(w.net.requests[2].command).ip == "172.30.0.9");
  BOOST_TEST(w.net.requests[2].op_id == "op-1");

  // Releases: an ip intent without an id releases whatever the VM holds; a tap intent without
  // an id releases the VM's tap; a NAT rule never made (no id) is nothing to release.
  w.net.requests.clear();
  BOOST_TEST(w.host->release(w.s, {resource_kind::ip, "", "", false}, "op-2").has_value());
  BOOST_TEST(w.host->release(w.s, {resource_kind::tap, "", "", false}, "op-2").has_value());
  BOOST_TEST(w.host->release(w.s, {resource_kind::nat, "", "", false}, "op-2").has_value());
  BOOST_TEST_REQUIRE(w.net.requests.size() == 2u);
  BOOST_TEST(std::get<net_cmd::release_lease>(w.net.requests[0].command).vm == "web");
  BOOST_TEST(std::get<net_cmd::release_lease>(w.net.requests[0].command).ip.empty());
  BOOST_TEST(std::get<net_cmd::delete_tap>(w.net.requests[1].command).tap == "bgt0a1b2c3d");
}

BOOST_AUTO_TEST_CASE(the_socket_dir_is_made_fresh_and_private_and_released) {
  world w;
  auto dir = paths_of(w.cfg, "web").runtime_dir;
  fs::create_directories(dir);
  std::ofstream(dir / "qmp.sock") << "stale";
  auto made = w.host->acquire(w.s, resource_kind::sockets, "op");
  BOOST_TEST_REQUIRE(made.has_value());
  BOOST_TEST(!fs::exists(dir / "qmp.sock")); // a gone VMM's sockets do not survive
  BOOST_TEST((fs::status(dir).permissions() == fs::perms::owner_all));
  BOOST_TEST(w.host->release(w.s, {resource_kind::sockets, made->id, "", true}, "op").has_value());
  BOOST_TEST(!fs::exists(dir));
  BOOST_TEST(w.host->release(w.s, {resource_kind::sockets, made->id, "", true}, "op").has_value()); // idempotent
}

BOOST_AUTO_TEST_CASE(the_vmm_boots_the_vms_kernel_disks_and_network_and_is_killed_at_release) {
  world w;
  auto missing = w.host->acquire(w.s, resource_kind::vmm, "op");
  BOOST_TEST_REQUIRE(!missing.has_value());
  BOOST_TEST((missing.err().code == errc::not_found));
  BOOST_TEST(missing.err().message.find("kernel k version kv") != std::string::npos, missing.err().message);

  auto kdir = w.cfg.kernels / "k" / "kv";
  fs::create_directories(kdir);
  std::ofstream(kdir / "vmlinux") << "elf";
  std::ofstream(kdir / "initrd.img") << "cpio";
  w.hold(resource_kind::ip, "172.30.0.9");
  auto made = w.host->acquire(w.s, resource_kind::vmm, "op");
  BOOST_TEST_REQUIRE(made.has_value(), (made ? "" : made.err().message));
  BOOST_TEST_REQUIRE(w.driver->launched.size() == 1u);
  const auto& spec = w.driver->launched[0];
  auto p = paths_of(w.cfg, "web");
  BOOST_TEST(spec.kernel == kdir / "vmlinux");
  BOOST_TEST(spec.initrd == kdir / "initrd.img");
  BOOST_TEST(spec.root_disk == p.overlay());
  BOOST_TEST(spec.work_disk == p.work_disk());
  BOOST_TEST(spec.vcpus == 2u);
  BOOST_TEST(spec.memory_mib == 256u);
  BOOST_TEST(spec.tap == "bgt0a1b2c3d");
  BOOST_TEST(spec.ip_cidr == "172.30.0.9/24");
  BOOST_TEST(spec.gateway == "172.30.0.1");
  BOOST_TEST(!spec.await_settings); // no fresh marker: a boot, not a restore
  // Its detail is what adoption checks: start time, command line hash, boot id.
  auto d = parse_vmm_detail(made->detail);
  BOOST_TEST(d.start_time == 77u);
  BOOST_TEST(d.cmdline_sha256 == "abc");
  BOOST_TEST(d.boot_id == "boot-1");

  w.hold(resource_kind::vmm, made->id, made->detail);
  BOOST_TEST(w.host->vmm_alive(w.s));
  BOOST_TEST(w.host->adoption_refused(w.s).empty());
  BOOST_TEST(w.host->release(w.s, w.s.resources.back(), "op").has_value());
  BOOST_TEST(w.driver->calls.back() == "kill " + made->id + " 9");
  BOOST_TEST(!w.host->vmm_alive(w.s));
  BOOST_TEST(w.host->adoption_refused(w.s).find("was gone") != std::string::npos);
  BOOST_TEST((w.agent.calls.back() == "forget web")); // the agent connection is dropped with it
}

BOOST_AUTO_TEST_CASE(adoption_is_refused_after_a_reboot_or_without_a_vmm_on_record) {
  world w;
  BOOST_TEST(w.host->adoption_refused(w.s) == "no VMM is on record");
  w.driver->alive.insert(4242);
  w.hold(resource_kind::vmm, "4242", format_vmm_detail({77, "abc", "boot-0"}));
  BOOST_TEST(w.host->adoption_refused(w.s).find("rebooted") != std::string::npos, w.host->adoption_refused(w.s));
  w.s.resources.back().detail = format_vmm_detail({77, "abc", ""}); // records from before boot ids
  BOOST_TEST(w.host->adoption_refused(w.s).empty());
}

BOOST_AUTO_TEST_CASE(shutdown_asks_the_guest_first_then_the_power_button_then_quits_or_kills) {
  {
    world w;
    w.driver->alive.insert(4242);
    w.hold(resource_kind::vmm, "4242", format_vmm_detail({77, "abc", "boot-1"}));
    // The fake guest powers off only when asked by the agent... which the fake VMM ignores, so
    // every rung is tried: agent, ACPI, QMP quit (which exits).
    BOOST_TEST(w.host->shutdown(w.s, false, "op") == "stopped (QMP quit after the guest did not power off)");
    std::vector<std::string> want = {"powerdown 4242", "quit 4242"};
    BOOST_TEST(w.driver->calls == want, boost::test_tools::per_element());
    BOOST_TEST(w.agent.calls.front() == "poweroff web");
  }
  {
    world w;
    w.driver->alive.insert(4242);
    w.driver->quit_exits = false;
    w.hold(resource_kind::vmm, "4242", format_vmm_detail({77, "abc", "boot-1"}));
    BOOST_TEST(w.host->shutdown(w.s, false, "op") == "killed (did not stop in time)");
    BOOST_TEST(w.driver->calls.back() == "kill 4242 9");
  }
  {
    world w;
    w.driver->alive.insert(4242);
    w.hold(resource_kind::vmm, "4242", format_vmm_detail({77, "abc", "boot-1"}));
    BOOST_TEST(w.host->shutdown(w.s, true, "op") == "killed");
    std::vector<std::string> want = {"kill 4242 9"};
    BOOST_TEST(w.driver->calls == want, boost::test_tools::per_element());
  }
  {
    world w; // its VMM is already gone
    w.hold(resource_kind::vmm, "4242", format_vmm_detail({77, "abc", "boot-1"}));
    BOOST_TEST(w.host->shutdown(w.s, false, "op").find("exited unexpectedly") != std::string::npos);
    BOOST_TEST(w.driver->calls.empty());
  }
}

BOOST_AUTO_TEST_CASE(post_start_puts_the_vms_host_key_in_known_hosts) {
  world w;
  auto p = paths_of(w.cfg, "web");
  fs::create_directories(p.state_dir);
  fs::create_directories(p.runtime_dir);
  std::ofstream(p.host_key_pub()) << "ssh-ed25519 AAAAC3Nza web\n";
  BOOST_TEST_REQUIRE(w.host->post_start(w.s, "op").has_value());
  BOOST_TEST(*read_file(w.cfg.known_hosts) == "web.vm ssh-ed25519 AAAAC3Nza\n");
  // A delete removes the VM's dirs and its line.
  w.host->remove_dirs(w.s);
  BOOST_TEST(!fs::exists(p.state_dir));
  BOOST_TEST(!fs::exists(p.runtime_dir));
  BOOST_TEST(*read_file(w.cfg.known_hosts) == "");
}

BOOST_AUTO_TEST_CASE(a_work_disk_gets_a_host_key_of_its_own_when_the_image_runs_sshd) {
  auto keygen = find_program("ssh-keygen");
  if (!keygen || !find_program("resize2fs")) {
    BOOST_TEST_MESSAGE("skipped: needs ssh-keygen and resize2fs (openssh-client, e2fsprogs)");
    return;
  }
  world w;
  auto image = [&](const std::string& name, bool sshd) {
    auto v = w.cfg.images / name / "v1";
    fs::create_directories(v);
    for (const char* f : {"rootfs.ext4", "work-seed.ext4"})
      BOOST_TEST_REQUIRE(guestfs::create_image(v / f, 16u << 20).has_value());
    if (sshd) {
      auto im = guestfs::ext4_image::open(v / "rootfs.ext4", true);
      BOOST_TEST_REQUIRE(im.has_value());
      BOOST_TEST_REQUIRE(im->mkdir_p("/usr/sbin", 0755, 0, 0).has_value());
      BOOST_TEST_REQUIRE(im->write_file("/usr/sbin/sshd", "#!/bin/sh\n", 0755, 0, 0).has_value());
      BOOST_TEST_REQUIRE(im->close().has_value());
    }
  };
  image("deb", true);
  image("busybox", false);
  w.s.image = "deb";
  w.s.disk_mib = 16;
  BOOST_TEST_REQUIRE(w.host->acquire(w.s, resource_kind::work_disk, "op").has_value());
  auto p = paths_of(w.cfg, "web");
  auto pub = read_file(p.host_key_pub());
  BOOST_TEST_REQUIRE(pub.has_value());
  BOOST_TEST(pub->starts_with("ssh-ed25519 "));
  // The private half is in the disk, root's and 0600, and it is the key of that public half.
  std::string key;
  {
    auto disk = guestfs::ext4_image::open(p.work_disk(), false);
    BOOST_TEST_REQUIRE(disk.has_value());
    auto path = "/" + std::string(guest_protocol::work_disk_host_key);
    auto ino = disk->inode_of(path);
    BOOST_TEST_REQUIRE(ino.has_value(), (ino ? "" : ino.err().message));
    auto st = disk->stat(*ino);
    BOOST_TEST_REQUIRE(st.has_value());
    BOOST_TEST((st->mode & 07777) == 0600u);
    BOOST_TEST(st->uid == 0u);
    auto text = disk->read_file(path);
    BOOST_TEST_REQUIRE(text.has_value());
    key = *text;
  }
  auto file = w.dir.path / "key";
  std::ofstream(file) << key;
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write);
  auto y = test::run({keygen->string(), "-y", "-f", file.string()});
  BOOST_TEST(y.out == *pub, y.err);
  // Once in known_hosts (post_start), from that copy.
  fs::create_directories(p.runtime_dir);
  BOOST_TEST_REQUIRE(w.host->post_start(w.s, "op").has_value());
  BOOST_TEST(*read_file(w.cfg.known_hosts) == "web.vm " + host_key_of(*pub) + "\n");

  // Another VM gets another key; one whose image has no sshd gets none.
  vm_state db = w.s;
  db.name = "db";
  BOOST_TEST_REQUIRE(w.host->acquire(db, resource_kind::work_disk, "op").has_value());
  BOOST_TEST(*read_file(paths_of(w.cfg, "db").host_key_pub()) != *pub);
  vm_state box = w.s;
  box.name = "box";
  box.image = "busybox";
  BOOST_TEST_REQUIRE(w.host->acquire(box, resource_kind::work_disk, "op").has_value());
  BOOST_TEST(!fs::exists(paths_of(w.cfg, "box").host_key_pub()));
  auto disk = guestfs::ext4_image::open(paths_of(w.cfg, "box").work_disk(), false);
  BOOST_TEST_REQUIRE(disk.has_value());
  BOOST_TEST(!*disk->exists("/" + std::string(guest_protocol::work_disk_host_key_dir)));
}

BOOST_AUTO_TEST_SUITE_END()
