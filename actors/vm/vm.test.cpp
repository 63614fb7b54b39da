// The VM's pure core: name and shape validation, the phase machine and resource bookkeeping.
#include <boost/test/unit_test.hpp>

#include "actors/vm/vm.hpp"

using namespace banger;
using namespace banger::actors;
using namespace banger::journal;

namespace {

struct folder {
  vm_state s;
  std::int64_t t = 1000;
  explicit folder(std::string name) { s.name = std::move(name); }
  void feed(const std::vector<payload>& events) {
    for (const auto& p : events) {
      stored_event e;
      e.stream = vm_stream(s.name);
      e.version = s.stream_version + 1;
      e.wall_time_ns = ++t;
      e.body = p;
      s = apply(std::move(s), e);
    }
  }
  void must(const decision& d) {
    BOOST_TEST_REQUIRE(d.has_value(), (d.has_value() ? "" : d.err().message));
    feed(*d);
  }
};

vm_cmd::create request(std::string = {}) {
  vm_cmd::create r;
  r.vcpus = 1;
  r.memory_mib = 512;
  r.disk_mib = 2048;
  r.id = "0a1b2c3d";
  r.image = "default";
  r.image_version = "img1";
  r.kernel = "default";
  r.kernel_version = "k1";
  return r;
}

vm_cmd::create with_start(vm_cmd::create c, bool start) {
  c.start = start;
  return c;
}

} // namespace

BOOST_AUTO_TEST_SUITE(vm_core)

BOOST_AUTO_TEST_CASE(names_are_dns_labels) {
  for (std::string ok : std::vector<std::string>{"a", "web-1", "0abc", std::string(63, 'x')})
    BOOST_TEST(validate_vm_name(ok).has_value(), ok);
  for (std::string bad :
       std::vector<std::string>{"", "-a", "a-", "Web", "a_b", "a.b", "a b", std::string(64, 'x'), "a/..", "é"})
    BOOST_TEST(!validate_vm_name(bad).has_value(), bad);
  auto e = validate_vm_name("Bad_Name");
  BOOST_TEST((e.err().code == errc::bad_request));
  BOOST_TEST(e.err().message.find("DNS label") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(shapes_are_bounded) {
  BOOST_TEST(validate_vm_shape(1, 512, 2048).has_value());
  BOOST_TEST(!validate_vm_shape(0, 512, 2048).has_value());
  BOOST_TEST(!validate_vm_shape(65, 512, 2048).has_value());
  BOOST_TEST(!validate_vm_shape(1, 16, 2048).has_value());
  BOOST_TEST(!validate_vm_shape(1, 512, 1).has_value());
  BOOST_TEST(validate_vm_shape(0, 512, 2048).err().message.find("--vcpu 0") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(create_start_stop_delete) {
  folder f("web");
  BOOST_TEST((f.s.phase == vm_phase::absent));
  f.must(decide_create(f.s, request("web")));
  BOOST_TEST((f.s.phase == vm_phase::stopped));
  BOOST_TEST(f.s.vcpus == 1u);
  BOOST_TEST(f.s.created_ns == 1001);
  BOOST_TEST((decide_create(f.s, request("web")).err().code == errc::already_exists));
  BOOST_TEST((decide_stop(f.s, "stop").err().code == errc::not_running));

  f.must(decide_start(f.s, "k2"));
  BOOST_TEST((f.s.phase == vm_phase::starting));
  BOOST_TEST(f.s.kernel_version == "k2");
  BOOST_TEST((decide_start(f.s, "k2").err().code == errc::conflict));
  BOOST_TEST((decide_delete(f.s).err().code == errc::conflict));
  f.feed({resource_intended{"overlay", "/s/overlay.qcow2"}, resource_acquired{"overlay", "/s/overlay.qcow2", ""},
          resource_intended{"ip", ""}, resource_acquired{"ip", "172.30.0.2", "br-fc"}, resource_intended{"vmm", ""},
          resource_acquired{"vmm", "4242", "77 abc"}, vm_running{2400}});
  BOOST_TEST((f.s.phase == vm_phase::running));
  BOOST_TEST(f.s.ip() == "172.30.0.2");
  BOOST_TEST(f.s.boot_ms == 2400u);
  // An intent made before its id was known (ip, vmm) becomes that resource when acquired.
  BOOST_TEST(f.s.resources.size() == 3u);
  BOOST_TEST(f.s.find(resource_kind::vmm)->id == "4242");
  BOOST_TEST(f.s.find(resource_kind::vmm)->detail == "77 abc");
  BOOST_TEST((decide_start(f.s, "k2").err().code == errc::already_exists));
  BOOST_TEST((decide_configure(f.s, 2, 0).err().code == errc::conflict));

  f.must(decide_stop(f.s, "stop"));
  BOOST_TEST((f.s.phase == vm_phase::stopping));
  f.feed({resource_released{"vmm", "4242"}, vm_stopped{"stopped"}});
  BOOST_TEST((f.s.phase == vm_phase::stopped));
  BOOST_TEST(f.s.last_error.empty());
  BOOST_TEST(f.s.find(resource_kind::vmm) == nullptr);
  BOOST_TEST(f.s.ip() == "172.30.0.2"); // the lease lives until delete

  f.must(decide_configure(f.s, 2, 0));
  BOOST_TEST(f.s.vcpus == 2u);
  BOOST_TEST(f.s.memory_mib == 512u);
  BOOST_TEST((decide_configure(f.s, 0, 8).err().code == errc::bad_request));

  f.must(decide_delete(f.s));
  BOOST_TEST((f.s.phase == vm_phase::deleting));
  BOOST_TEST((decide_start(f.s, "k").err().code == errc::conflict));
  BOOST_TEST(decide_delete(f.s)->empty()); // a failed delete may be retried
  f.feed({resource_released{"ip", "172.30.0.2"}, vm_deleted{}});
  BOOST_TEST((f.s.phase == vm_phase::deleted));
  BOOST_TEST((decide_start(f.s, "k").err().code == errc::not_found));
  // A deleted name can be reused; the new VM starts from a clean state.
  auto r = request("web");
  r.id = "ffffffff";
  f.must(decide_create(f.s, r));
  BOOST_TEST(f.s.id == "ffffffff");
  BOOST_TEST(f.s.resources.empty());
}

BOOST_AUTO_TEST_CASE(failed_start_and_unexpected_stop_keep_the_reason) {
  folder f("db");
  f.must(decide_create(f.s, request("db")));
  f.must(decide_start(f.s, "k1"));
  f.feed({vm_start_failed{"vmm", "qemu: could not open kernel"}});
  BOOST_TEST((f.s.phase == vm_phase::stopped));
  BOOST_TEST(f.s.last_error == "start failed at vmm: qemu: could not open kernel");
  f.must(decide_start(f.s, "k1"));
  BOOST_TEST(f.s.last_error.empty());
  f.feed({vm_running{1}, vm_stopped{"vmm exited (signal 9)"}});
  BOOST_TEST(f.s.last_error == "vmm exited (signal 9)");
}

BOOST_AUTO_TEST_CASE(invalid_create_appends_nothing) {
  vm_state s;
  s.name = "Bad!";
  BOOST_TEST((decide_create(s, request("Bad!")).err().code == errc::bad_request));
  s.name = "ok";
  auto r = request("ok");
  r.vcpus = 0;
  BOOST_TEST((decide_create(s, r).err().code == errc::bad_request));
  r = request("ok");
  r.image_version.clear();
  BOOST_TEST((decide_create(s, r).err().code == errc::bad_request));
}

BOOST_AUTO_TEST_CASE(recorded_commands_decide_like_the_direct_calls) {
  folder f("web");
  auto create = record_of(with_start(request("web"), true));
  auto d = decide(f.s, create);
  BOOST_TEST_REQUIRE(d.has_value());
  BOOST_TEST_REQUIRE(d->size() == 2u);
  const auto& created = std::get<vm_created>((*d)[0]);
  BOOST_TEST(created.id == "0a1b2c3d");
  BOOST_TEST(created.kernel_version == "k1");
  BOOST_TEST(created.vcpus == 1u);
  BOOST_TEST(std::get<vm_starting>((*d)[1]).kernel_version == "k1");
  BOOST_TEST(decide(f.s, record_of(with_start(request("web"), false)))->size() == 1u);
  f.feed(*d);
  // Refusals come back the same way, and their recorded text names the code.
  auto again = decide(f.s, record_of(vm_cmd::start{}));
  BOOST_TEST_REQUIRE(!again.has_value());
  BOOST_TEST((again.err().code == errc::conflict));
  BOOST_TEST(refusal_text(again.err()).rfind("conflict: VM web is starting", 0) == 0u, refusal_text(again.err()));
  f.feed({vm_running{1}});
  BOOST_TEST(std::get<vm_stopping>(decide(f.s, record_of(vm_cmd::kill{}))->at(0)).how == "kill");
  BOOST_TEST(std::get<vm_stopping>(decide(f.s, record_of(vm_cmd::reap{}))->at(0)).how == "vmm exited");
  BOOST_TEST(std::get<vm_stopping>(decide(f.s, record_of(vm_cmd::remove_force{}))->at(0)).how == "delete");
  BOOST_TEST((decide(f.s, record_of(vm_cmd::remove{})).err().code == errc::conflict));
  BOOST_TEST(decide(f.s, record_of(vm_cmd::reconcile{}))->empty());
  f.feed({vm_stopping{"stop"}, vm_stopped{"stopped"}});
  auto conf = decide(f.s, record_of(vm_cmd::configure{2, 1024}));
  BOOST_TEST_REQUIRE(conf.has_value());
  BOOST_TEST(std::get<vm_configured>(conf->at(0)).memory_mib == 1024u);
  BOOST_TEST((decide(f.s, record_of(vm_cmd::configure{0, 8})).err().code == errc::bad_request));
  BOOST_TEST(std::holds_alternative<vm_deleting>(decide(f.s, record_of(vm_cmd::remove_force{}))->at(0)));
  // Malformed records are refused, not guessed at.
  BOOST_TEST((decide(f.s, journal::vm_command{"reboot", "{}", ""}).err().code == errc::bad_request));
  BOOST_TEST((decide(f.s, journal::vm_command{"configure", "[1]", ""}).err().code == errc::bad_request));
}

BOOST_AUTO_TEST_CASE(commands_are_recorded_as_journals_have_always_held_them) {
  // The records 0.1 wrote (tests/fixtures/journal-v1 holds a whole journal of them).
  auto c = with_start(request(), true);
  auto rec = record_of(c);
  BOOST_TEST(rec.command == "create");
  BOOST_TEST(rec.args == R"({"disk_mib":2048,"id":"0a1b2c3d","image":"default","image_version":"img1","kernel":)"
                         R"("default","kernel_version":"k1","memory_mib":512,"start":true,"vcpus":1})");
  BOOST_TEST(rec.refused.empty());
  BOOST_TEST(record_of(vm_cmd::configure{2, 0}).args == R"({"memory_mib":0,"vcpus":2})");
  BOOST_TEST(record_of(vm_cmd::remove_force{}, "conflict: x").command == "delete_force");
  BOOST_TEST(record_of(vm_cmd::remove_force{}, "conflict: x").refused == "conflict: x");
  BOOST_TEST(record_of(vm_cmd::stop{}).args == "{}");
  // Every command reads back as itself.
  for (actors::vm_command each :
       {actors::vm_command(c), actors::vm_command(vm_cmd::configure{3, 1024}), actors::vm_command(vm_cmd::start{}),
        actors::vm_command(vm_cmd::stop{}), actors::vm_command(vm_cmd::kill{}), actors::vm_command(vm_cmd::remove{}),
        actors::vm_command(vm_cmd::remove_force{}), actors::vm_command(vm_cmd::reap{}),
        actors::vm_command(vm_cmd::reconcile{}), actors::vm_command(vm_cmd::pause{}),
        actors::vm_command(vm_cmd::resume{}),
        actors::vm_command(vm_cmd::prepare_workspace{"/h/r", "/root/r", std::string(40, 'a'), "main"})}) {
    auto back = command_of(record_of(each));
    BOOST_TEST_REQUIRE(back.has_value(), std::string(name_of(each)));
    BOOST_TEST(back->index() == each.index());
    BOOST_TEST(record_of(*back).args == record_of(each).args);
  }
  BOOST_TEST(std::variant_size_v<actors::vm_command> == 12u); // every command is in the loop above
  // Missing or mistyped arguments keep their defaults, as 0.1's decide read them.
  auto lax = command_of({"create", R"({"vcpus":"2","image":7,"start":1})", ""});
  BOOST_TEST_REQUIRE(lax.has_value());
  BOOST_TEST(std::get<vm_cmd::create>(*lax).vcpus == 0u);
  BOOST_TEST(std::get<vm_cmd::create>(*lax).image.empty());
  BOOST_TEST(!std::get<vm_cmd::create>(*lax).start);
  // Unknown commands and non-object arguments: the messages 0.1 recorded.
  BOOST_TEST(command_of({"reboot", "{}", ""}).err().message == "unknown VM command \"reboot\"");
  BOOST_TEST(command_of({"stop", "[]", ""}).err().message == "command stop: its arguments are not a JSON object");
  BOOST_TEST(command_of({"stop", "", ""}).has_value()); // no arguments at all: none needed
}

BOOST_AUTO_TEST_CASE(resource_events_of_a_kind_this_build_does_not_know_change_nothing) {
  folder f("web");
  f.must(decide_create(f.s, request()));
  f.must(decide_start(f.s, "k1"));
  f.feed(
    {resource_intended{"gpu", "/dev/x"}, resource_acquired{"gpu", "/dev/x", ""}, resource_intended{"tap", "bgt1"}});
  BOOST_TEST_REQUIRE(f.s.resources.size() == 1u);
  BOOST_TEST((f.s.resources[0].kind == resource_kind::tap));
  f.feed({resource_released{"gpu", "/dev/x"}, resource_released{"tap", "bgt1"}});
  BOOST_TEST(f.s.resources.empty());
}

BOOST_AUTO_TEST_CASE(the_resource_table_has_every_kind_with_its_journaled_name) {
  for (const auto& t : resource_table) {
    BOOST_TEST((resource_kind_named(t.name) == t.kind));
    BOOST_TEST(to_string(t.kind) == t.name);
  }
  BOOST_TEST(!resource_kind_named("gpu").has_value());
  // The names journals hold (tests/fixtures/journal-v1) and the lifetimes DESIGN §4 gives them.
  BOOST_TEST(per_vm(*resource_kind_named("overlay")));
  BOOST_TEST(per_vm(*resource_kind_named("work_disk")));
  BOOST_TEST(per_vm(*resource_kind_named("ip")));
  for (auto n : {"tap", "nat", "vmm", "sockets"})
    BOOST_TEST(!per_vm(*resource_kind_named(n)), n);
  BOOST_TEST((traits_of(resource_kind::vmm).release == release_class::process));
  BOOST_TEST((traits_of(resource_kind::sockets).release == release_class::files));
}

BOOST_AUTO_TEST_CASE(pause_and_resume_only_where_they_make_sense) {
  folder f("web");
  BOOST_TEST((decide_pause(f.s).err().code == errc::not_found));
  f.must(decide_create(f.s, request()));
  BOOST_TEST((decide_pause(f.s).err().code == errc::not_running));
  BOOST_TEST((decide_resume(f.s).err().code == errc::not_running));
  f.must(decide_start(f.s, "k1"));
  BOOST_TEST((decide_pause(f.s).err().code == errc::conflict)); // starting: wait
  f.feed({resource_intended{"vmm", ""}, resource_acquired{"vmm", "4242", "77 abc"}, vm_running{5}});
  BOOST_TEST(require_running(f.s).has_value());
  BOOST_TEST((decide_resume(f.s).err().message.find("not paused") != std::string::npos));
  auto p = decide(f.s, actors::vm_command(vm_cmd::pause{}));
  BOOST_TEST_REQUIRE(p.has_value());
  BOOST_TEST(p->empty()); // the fact is recorded once the VMM paused (pipeline.cpp)
  f.feed({vm_paused{}});
  BOOST_TEST((f.s.phase == vm_phase::paused));
  BOOST_TEST(to_string(f.s.phase) == "paused");
  // What needs the guest is refused with the way out; so are start, set and a plain delete.
  auto r = require_running(f.s);
  BOOST_TEST_REQUIRE(!r.has_value());
  BOOST_TEST(r.err().message == "VM web is paused: resume it first (`banger vm resume web`)");
  BOOST_TEST((decide_pause(f.s).err().message.find("paused already") != std::string::npos));
  BOOST_TEST((decide_start(f.s, "k1").err().message.find("banger vm resume web") != std::string::npos));
  BOOST_TEST((decide_configure(f.s, 2, 0).err().code == errc::conflict));
  BOOST_TEST((decide_delete(f.s).err().code == errc::conflict));
  // Stop, kill, reap and delete --force all work on a paused VM.
  for (actors::vm_command c : {actors::vm_command(vm_cmd::stop{}), actors::vm_command(vm_cmd::kill{}),
                               actors::vm_command(vm_cmd::reap{}), actors::vm_command(vm_cmd::remove_force{})}) {
    auto d = decide(f.s, c);
    BOOST_TEST_REQUIRE(d.has_value(), std::string(name_of(c)));
    BOOST_TEST(std::holds_alternative<vm_stopping>(d->at(0)));
  }
  BOOST_TEST(decide(f.s, actors::vm_command(vm_cmd::resume{}))->empty());
  f.feed({vm_resumed{}});
  BOOST_TEST((f.s.phase == vm_phase::running));
}

BOOST_AUTO_TEST_CASE(the_grammar_allows_pauses_only_where_they_happen) {
  folder f("web");
  auto next = [&](payload p) {
    stored_event e;
    e.stream = vm_stream("web");
    e.version = f.s.stream_version + 1;
    e.body = std::move(p);
    return vm_grammar_violation(f.s, e, true);
  };
  f.must(decide_create(f.s, request()));
  BOOST_TEST(next(vm_paused{}) == "vm_paused is not legal while the VM is stopped");
  f.must(decide_start(f.s, "k1"));
  f.feed({vm_running{5}});
  BOOST_TEST(next(vm_paused{}).empty());
  BOOST_TEST(!next(vm_resumed{}).empty());
  f.feed({vm_paused{}});
  BOOST_TEST(next(vm_resumed{}).empty());
  BOOST_TEST(next(vm_stopping{"stop"}).empty());
  BOOST_TEST(next(vm_adopted{1, "b"}).empty());
  BOOST_TEST(!next(vm_paused{}).empty());
  BOOST_TEST(!next(vm_starting{"k1"}).empty());
}

BOOST_AUTO_TEST_CASE(recorded_boot_id_is_the_third_word) {
  BOOST_TEST(recorded_boot_id({resource_kind::vmm, "42", "77 abc 1b2c-boot", true}) == "1b2c-boot");
  BOOST_TEST(recorded_boot_id({resource_kind::vmm, "42", "77 abc", true}).empty());
  BOOST_TEST(recorded_boot_id({resource_kind::vmm, "42", "", true}).empty());
}

BOOST_AUTO_TEST_CASE(which_phases_have_a_vmm_and_which_a_restart_reconciles) {
  // Running and paused VMs have a VMM (checked for liveness, adopted at a restart); a journal
  // that ends mid-transition is settled at a restart too; stopped, absent and deleted VMs are not.
  for (auto p : {vm_phase::running, vm_phase::paused}) {
    BOOST_TEST(vmm_expected(p), to_string(p));
    BOOST_TEST(needs_reconcile(p), to_string(p));
  }
  for (auto p : {vm_phase::starting, vm_phase::stopping, vm_phase::deleting}) {
    BOOST_TEST(!vmm_expected(p), to_string(p));
    BOOST_TEST(needs_reconcile(p), to_string(p));
  }
  for (auto p : {vm_phase::absent, vm_phase::stopped, vm_phase::deleted}) {
    BOOST_TEST(!vmm_expected(p), to_string(p));
    BOOST_TEST(!needs_reconcile(p), to_string(p));
  }
}

BOOST_AUTO_TEST_CASE(a_workspace_is_prepared_in_a_stopped_vm_and_remembered) {
  folder f("dev");
  vm_cmd::prepare_workspace c{"/home/me/repo", "/root/repo", std::string(40, 'a'), "main"};
  BOOST_TEST((decide_prepare_workspace(f.s, c).err().code == errc::not_found));
  f.must(decide_create(f.s, request()));
  for (auto bad : {vm_cmd::prepare_workspace{"/home/me/repo", "/etc", "", ""},
                   vm_cmd::prepare_workspace{"/home/me/repo", "/root/../etc", "", ""},
                   vm_cmd::prepare_workspace{"relative", "/root/repo", "", ""},
                   vm_cmd::prepare_workspace{"/home/me/repo", "/root/repo", "not-a-commit", ""},
                   vm_cmd::prepare_workspace{"/home/me/repo", "/root/repo", "", "bad..branch"}})
    BOOST_TEST((decide_prepare_workspace(f.s, bad).err().code == errc::bad_request), bad.guest_path);
  auto d = decide(f.s, actors::vm_command(c));
  BOOST_TEST_REQUIRE(d.has_value(), (d ? "" : d.err().message));
  BOOST_TEST_REQUIRE(d->size() == 1u);
  BOOST_TEST(std::holds_alternative<workspace_preparing>(d->at(0)));
  f.feed(*d);
  BOOST_TEST(f.s.workspace_pending());
  BOOST_TEST(needs_reconcile(f.s)); // a restart now would check the work disk
  BOOST_TEST(f.s.workspace.empty());
  f.feed(
    {workspace_prepared{"/home/me/repo", "/root/repo", std::string(40, 'a'), "main", std::string(64, 'd'), 3, 99}});
  BOOST_TEST(!f.s.workspace_pending());
  BOOST_TEST(!needs_reconcile(f.s));
  BOOST_TEST(f.s.workspace.guest_path == "/root/repo");
  BOOST_TEST(f.s.workspace.files == 3u);
  BOOST_TEST(f.s.workspace.prepared_ns > 0);
  // A failed preparation keeps the workspace there was.
  f.feed({workspace_preparing{"/home/me/other", "/root/other"}, workspace_prepare_failed{"the disk is full"}});
  BOOST_TEST(f.s.workspace.guest_path == "/root/repo");
  // A running VM takes one (through its agent); a paused one is refused with the way out.
  f.must(decide_start(f.s, "k1"));
  f.feed({vm_running{5}});
  auto running = decide_prepare_workspace(f.s, c);
  BOOST_TEST_REQUIRE(running.has_value(), (running ? "" : running.err().message));
  f.feed(*running);
  BOOST_TEST(f.s.workspace_pending());
  f.feed(
    {workspace_prepared{"/home/me/repo", "/root/live", std::string(40, 'b'), "main", std::string(64, 'e'), 3, 99}});
  BOOST_TEST(f.s.workspace.guest_path == "/root/live");
  BOOST_TEST((f.s.phase == vm_phase::running));
  f.feed({vm_paused{}});
  BOOST_TEST(decide_prepare_workspace(f.s, c).err().message.find("banger vm resume dev") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(the_grammar_allows_workspace_events_and_the_work_disk_only_while_preparing) {
  folder f("dev");
  auto next = [&](payload p) {
    stored_event e;
    e.stream = vm_stream("dev");
    e.version = f.s.stream_version + 1;
    e.body = std::move(p);
    return vm_grammar_violation(f.s, e, true);
  };
  f.must(decide_create(f.s, request()));
  BOOST_TEST(!next(workspace_prepared{}).empty());
  BOOST_TEST(!next(workspace_disk_released{}).empty()); // a stopped VM's disk is the host's already
  BOOST_TEST(!next(workspace_prepare_failed{}).empty());
  BOOST_TEST(!next(resource_intended{"work_disk", "/x"}).empty());
  BOOST_TEST(next(workspace_preparing{"/h", "/root/w"}).empty());
  f.feed({workspace_preparing{"/h", "/root/w"}});
  BOOST_TEST(!next(workspace_preparing{"/h", "/root/w"}).empty()); // one at a time
  BOOST_TEST(next(resource_intended{"work_disk", "/x"}).empty());  // a VM that never started
  BOOST_TEST(!next(resource_intended{"tap", "bgt1"}).empty());     // per run: only a start makes it
  f.feed({resource_intended{"work_disk", "/x"}});
  BOOST_TEST(next(resource_acquired{"work_disk", "/x", "2048 MiB"}).empty());
  f.feed({resource_acquired{"work_disk", "/x", "2048 MiB"}});
  BOOST_TEST(next(workspace_prepared{}).empty());
  f.feed({workspace_prepared{}});
  BOOST_TEST(!next(resource_released{"work_disk", "/x"}).empty());
  // While running: the preparation, but never a resource (the work disk is there).
  f.must(decide_start(f.s, "k1"));
  f.feed({vm_running{5}});
  BOOST_TEST(!next(workspace_disk_released{}).empty()); // only for a landing on record
  BOOST_TEST(next(workspace_preparing{"/h", "/root/w"}).empty());
  f.feed({workspace_preparing{"/h", "/root/w"}});
  BOOST_TEST(!next(resource_intended{"work_disk", "/y"}).empty());
  BOOST_TEST(next(workspace_disk_released{}).empty());
  f.feed({workspace_disk_released{}});
  BOOST_TEST(!next(workspace_disk_released{}).empty()); // once
  BOOST_TEST(next(workspace_prepare_failed{"the guest's disk is full"}).empty());
  f.feed({workspace_prepare_failed{"the guest's disk is full"}, vm_paused{}});
  BOOST_TEST(!next(workspace_preparing{"/h", "/root/w"}).empty());
}

BOOST_AUTO_TEST_SUITE_END()
