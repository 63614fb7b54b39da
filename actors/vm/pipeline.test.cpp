// The start/stop/delete sequencing against a fake host that can fail at any step: what is
// made, what is undone (in reverse), and what the journal records.
#include <mutex>
#include <set>

#include <boost/test/unit_test.hpp>

#include "actors/vm/pipeline.hpp"

using namespace banger;
using namespace banger::actors;
using namespace banger::journal;

namespace {

struct fake_host final : vm_host {
  std::string fail_at; ///< kind or stage whose acquire fails
  bool nat = true;
  std::mutex mu;                ///< acquire runs concurrently for the independent kinds
  std::vector<std::string> log; ///< "+kind id" / "-kind id" / "agent" / "shutdown"
  int next_pid = 100;
  void note(std::string line) {
    std::lock_guard lock(mu);
    log.push_back(std::move(line));
  }

  bool wants(const vm_state&, resource_kind kind) override { return kind != resource_kind::nat || nat; }
  std::string planned_id(const vm_state& s, resource_kind kind) override {
    if (kind == resource_kind::ip || kind == resource_kind::vmm)
      return "";
    return std::string(to_string(kind)) + ":" + s.name;
  }
  expected<step_result> acquire(const vm_state& s, resource_kind kind, const std::string&) override {
    std::string name(to_string(kind));
    if (name == fail_at)
      return make_error(errc::operation_failed, name + " broke");
    std::string id = kind == resource_kind::ip    ? "172.30.0.2"
                     : kind == resource_kind::vmm ? std::to_string(next_pid++) // vmm is never concurrent
                                                  : planned_id(s, kind);
    note("+" + name + " " + id);
    return step_result{id, "d"};
  }
  expected<void> release(const vm_state&, const vm_resource& r, const std::string&) override {
    std::string name(to_string(r.kind));
    if (fail_at == "release:" + name)
      return make_error(errc::operation_failed, "busy");
    note("-" + name + " " + r.id);
    return {};
  }
  expected<void> wait_agent(const vm_state&, const std::string&) override {
    if (fail_at == "agent")
      return make_error(errc::unavailable, "agent did not answer within 60 s");
    log.push_back("agent");
    return {};
  }
  expected<void> post_start(const vm_state&, const std::string&) override { return {}; }
  expected<void> pause(const vm_state&, const std::string&) override {
    log.push_back("pause");
    frozen = true;
    return {};
  }
  bool frozen = false; ///< what is_paused() answers
  expected<bool> is_paused(const vm_state&) override { return frozen; }
  expected<void> resume(const vm_state&, const std::string&) override {
    log.push_back("resume");
    frozen = false;
    return {};
  }
  std::string shutdown(const vm_state&, bool kill, const std::string&) override {
    log.push_back(kill ? "kill" : "shutdown");
    return kill ? "killed" : "powered off";
  }
  void remove_dirs(const vm_state&) override { log.push_back("rmdirs"); }
  /// Counts what the feed brings; `fail_at == "workspace"` refuses it at begin.
  struct counting final : workspace::receiver {
    bool refuse = false;
    std::string guest;
    std::uint64_t files = 0, bytes = 0;
    expected<void> begin(const workspace::stream_begin& b) override {
      if (refuse)
        return make_error(errc::bad_request, "the work disk is full");
      guest = b.guest_path;
      return {};
    }
    expected<void> entry(const workspace::stream_entry& e) override {
      files += !e.git;
      return {};
    }
    expected<void> data(std::string_view d) override {
      bytes += d.size();
      return {};
    }
    expected<workspace::landed> finish(const std::vector<workspace::index_record>&) override {
      return workspace::landed{guest, files, bytes, std::string(64, 'd')};
    }
    void abort() override {}
  };
  expected<workspace::landed> land_workspace(const vm_state& s, const std::string& guest, workspace_feed& feed,
                                             const std::string&) override {
    log.push_back((s.phase == vm_phase::running && !s.workspace_disk_released ? "agent-workspace " : "workspace ") +
                  guest);
    counting c;
    c.refuse = fail_at == "workspace";
    return feed.pump(c);
  }
  bool disk_busy = false; ///< release_work_disk refuses (/root in use in the guest)
  bool attach_fails = false;
  expected<void> release_work_disk(const vm_state&, const std::string&) override {
    log.push_back("release");
    if (disk_busy)
      return make_error(errc::unavailable, "/root is in use in the guest");
    return {};
  }
  expected<void> attach_work_disk(const vm_state&, const std::string&) override {
    log.push_back("attach");
    if (attach_fails)
      return make_error(errc::operation_failed, "mounting /dev/vdb on /root: Structure needs cleaning");
    return {};
  }
  int repairs = 0;
  expected<void> repair_work_disk(const vm_state&, const std::string&) override {
    log.push_back("repair");
    ++repairs;
    return {};
  }
  bool vmm_alive(const vm_state&) override { return true; }
  std::string adopt_refusal; ///< what adoption_refused() says ("" adopts)
  std::string adoption_refused(const vm_state&) override { return adopt_refusal; }
};

struct world {
  fake_host host;
  vm_state s;
  std::vector<payload> journal;
  std::vector<std::string> stages;
  recorder record = [this](std::vector<payload> events) -> expected<vm_state> {
    for (auto& p : events) {
      stored_event e;
      e.stream = vm_stream(s.name);
      e.version = s.stream_version + 1;
      e.body = p;
      s = apply(std::move(s), e);
      journal.push_back(p);
    }
    return s;
  };
  stage_report report = [this](const std::string& st, std::chrono::milliseconds) { stages.push_back(st); };

  world() {
    s.name = "t";
    vm_cmd::create r;
    r.vcpus = 1;
    r.memory_mib = 512;
    r.disk_mib = 2048;
    r.image_version = r.kernel_version = "v";
    (void)record(*decide_create(s, r));
  }
  expected<vm_state> start() {
    (void)record(*decide_start(s, "v"));
    return run_start(s, host, record, report, "op-000001");
  }
  expected<vm_state> remove() {
    (void)record(*decide_delete(s));
    return run_delete(s, host, record, report, "op");
  }
  std::vector<std::string> kinds() const {
    std::vector<std::string> out;
    for (const auto& p : journal)
      out.push_back(std::string(kind_of(p)));
    return out;
  }
};

} // namespace

BOOST_AUTO_TEST_SUITE(vm_pipeline)

namespace {
std::set<std::string> as_set(std::vector<std::string> v) { return {v.begin(), v.end()}; }
std::vector<std::string> slice(const std::vector<std::string>& v, std::size_t from, std::size_t n) {
  return {v.begin() + static_cast<long>(from), v.begin() + static_cast<long>(std::min(v.size(), from + n))};
}
} // namespace

BOOST_AUTO_TEST_CASE(start_acquires_in_order_and_records_intent_then_fact) {
  world w;
  auto r = w.start();
  BOOST_TEST_REQUIRE(r.has_value(), (r ? "" : r.err().message));
  BOOST_TEST((w.s.phase == vm_phase::running));
  BOOST_TEST_REQUIRE(w.host.log.size() == 8u);
  // The independent resources first (made concurrently: any order), then nat, vmm, the agent.
  std::set<std::string> group = {"+overlay overlay:t", "+work_disk work_disk:t", "+ip 172.30.0.2", "+tap tap:t",
                                 "+sockets sockets:t"};
  BOOST_TEST((as_set(slice(w.host.log, 0, 5)) == group));
  std::vector<std::string> rest = {"+nat nat:t", "+vmm 100", "agent"};
  BOOST_TEST(slice(w.host.log, 5, 3) == rest, boost::test_tools::per_element());
  std::set<std::string> group_stages = {"overlay", "work_disk", "ip", "tap", "sockets"};
  BOOST_TEST((as_set(slice(w.stages, 0, 5)) == group_stages));
  std::vector<std::string> later = {"nat", "vmm", "agent", "post_start"};
  BOOST_TEST(slice(w.stages, 5, 4) == later, boost::test_tools::per_element());
  // Every resource is recorded as intended before anything of it is made: the group's five
  // intents, then its five facts, then intent/fact for nat and for vmm.
  auto k = w.kinds();
  std::vector<std::string> want = {"vm_created",        "vm_starting",       "resource_intended", "resource_intended",
                                   "resource_intended", "resource_intended", "resource_intended", "resource_acquired",
                                   "resource_acquired", "resource_acquired", "resource_acquired", "resource_acquired",
                                   "resource_intended", "resource_acquired", "resource_intended", "resource_acquired",
                                   "vm_running"};
  BOOST_TEST(k == want, boost::test_tools::per_element());
  BOOST_TEST(w.s.resources.size() == 7u);
  BOOST_TEST(w.s.ip() == "172.30.0.2");
}

BOOST_AUTO_TEST_CASE(a_failed_step_undoes_this_attempt_in_reverse) {
  for (std::string at : std::vector<std::string>{"overlay", "ip", "tap", "nat", "vmm", "agent"}) {
    world w;
    w.host.fail_at = at;
    auto r = w.start();
    BOOST_TEST_REQUIRE(!r.has_value(), at);
    BOOST_TEST(r.err().message.find("(" + at + ")") != std::string::npos, r.err().message);
    BOOST_TEST((w.s.phase == vm_phase::stopped), at);
    BOOST_TEST(w.s.resources.empty(), at);
    BOOST_TEST(w.kinds().back() == "vm_start_failed");
    std::vector<std::string> made, undone;
    for (const auto& l : w.host.log)
      if (l[0] == '+')
        made.push_back(l.substr(1));
      else if (l[0] == '-')
        undone.push_back(l.substr(1));
    // Everything made is released, and so is the failing kind's intent (it may be half made).
    if (at != "agent")
      made.push_back(at + " " + (at == "ip" || at == "vmm" ? "" : at + ":t"));
    BOOST_TEST((as_set(undone) == as_set(made)), at);
    BOOST_TEST(undone.size() == made.size(), at);
    // Releases run process -> network -> disks -> files, each class in reverse acquisition.
    if (at == "vmm" || at == "agent") {
      BOOST_TEST(undone[0].rfind("vmm", 0) == 0u, at);
      BOOST_TEST(undone[1] == "nat nat:t", at);
    }
    if (at == "nat")
      BOOST_TEST(undone[0] == "nat nat:t");
    BOOST_TEST(undone.back() == "sockets sockets:t", at);
    auto pos = [&](const std::string& prefix) {
      for (std::size_t i = 0; i < undone.size(); ++i)
        if (undone[i].rfind(prefix, 0) == 0)
          return static_cast<long>(i);
      return -1L;
    };
    BOOST_TEST(pos("tap") < pos("overlay"), at);     // network before disks
    BOOST_TEST(pos("ip") < pos("work_disk"), at);    // network before disks
    BOOST_TEST(pos("overlay") < pos("sockets"), at); // disks before files
  }
}

BOOST_AUTO_TEST_CASE(per_vm_resources_survive_stop_and_a_failed_restart) {
  world w;
  w.host.nat = false;
  BOOST_TEST_REQUIRE(w.start().has_value());
  (void)w.record(*decide_stop(w.s, "stop"));
  auto stopped = run_stop(w.s, w.host, false, w.record, w.report, "op");
  BOOST_TEST_REQUIRE(stopped.has_value());
  BOOST_TEST((w.s.phase == vm_phase::stopped));
  BOOST_TEST(w.s.resources.size() == 3u); // overlay, work_disk, ip
  BOOST_TEST(w.s.ip() == "172.30.0.2");
  BOOST_TEST(w.host.log.back() == "-sockets sockets:t");

  w.host.log.clear();
  w.host.fail_at = "vmm";
  BOOST_TEST(!w.start().has_value());
  BOOST_TEST(w.s.resources.size() == 3u); // the disks and the lease from the first start are kept
  BOOST_TEST_REQUIRE(w.host.log.size() == 5u);
  BOOST_TEST((as_set(slice(w.host.log, 0, 2)) == std::set<std::string>{"+tap tap:t", "+sockets sockets:t"}));
  std::vector<std::string> undo = {"-vmm ", "-tap tap:t", "-sockets sockets:t"};
  BOOST_TEST(slice(w.host.log, 2, 3) == undo, boost::test_tools::per_element());

  w.host.fail_at.clear();
  w.host.log.clear();
  auto del = w.remove();
  BOOST_TEST_REQUIRE(del.has_value());
  BOOST_TEST((w.s.phase == vm_phase::deleted));
  std::vector<std::string> gone = {"-ip 172.30.0.2", "-work_disk work_disk:t", "-overlay overlay:t", "rmdirs"};
  BOOST_TEST(w.host.log == gone, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_resource_that_will_not_go_keeps_the_vm) {
  world w;
  BOOST_TEST_REQUIRE(w.start().has_value());
  (void)w.record(*decide_stop(w.s, "kill"));
  w.host.fail_at = "release:tap";
  auto stopped = run_stop(w.s, w.host, true, w.record, w.report, "op");
  BOOST_TEST(!stopped.has_value());
  BOOST_TEST(stopped.err().message.find("tap tap:t: busy") != std::string::npos, stopped.err().message);
  BOOST_TEST((w.s.phase == vm_phase::stopped));
  BOOST_TEST(w.s.find(resource_kind::tap) != nullptr);
  auto del = w.remove();
  BOOST_TEST(!del.has_value());
  BOOST_TEST((w.s.phase == vm_phase::deleting)); // not forgotten while the tap may exist
  w.host.fail_at.clear();
  BOOST_TEST(w.remove().has_value()); // a second delete goes on from there
  BOOST_TEST((w.s.phase == vm_phase::deleted));
  BOOST_TEST(w.s.resources.empty());
}

BOOST_AUTO_TEST_CASE(recovery_settles_an_interrupted_start_and_stop) {
  // A start cut short: the disks were made, the lease and the tap too, the VMM only intended.
  world w;
  (void)w.record(*decide_start(w.s, "v"));
  (void)w.record({resource_intended{"overlay", "overlay:t"}, resource_intended{"work_disk", "work_disk:t"},
                  resource_intended{"ip", ""}, resource_intended{"tap", "tap:t"},
                  resource_acquired{"overlay", "overlay:t", ""}, resource_acquired{"ip", "172.30.0.2", ""},
                  resource_acquired{"tap", "tap:t", ""}, resource_intended{"vmm", ""}});
  auto r = run_recover(w.s, w.host, w.record, w.report, "op");
  BOOST_TEST_REQUIRE(r.has_value(), (r ? "" : r.err().message));
  BOOST_TEST((w.s.phase == vm_phase::stopped));
  BOOST_TEST(w.kinds().back() == "vm_start_failed");
  BOOST_TEST(w.s.last_error.find("interrupted") != std::string::npos, w.s.last_error);
  // Released: the VMM intent, the tap, the half-made work disk; kept: the finished overlay and lease.
  std::vector<std::string> want = {"kill", "-vmm ", "-tap tap:t", "-work_disk work_disk:t"};
  BOOST_TEST(w.host.log == want, boost::test_tools::per_element());
  BOOST_TEST(w.s.find(resource_kind::overlay) != nullptr);
  BOOST_TEST(w.s.ip() == "172.30.0.2");
  BOOST_TEST(w.s.find(resource_kind::tap) == nullptr);
  BOOST_TEST(decide_start(w.s, "v").has_value()); // it can start again

  // A stop cut short.
  world v;
  BOOST_TEST_REQUIRE(v.start().has_value());
  (void)v.record(*decide_stop(v.s, "stop"));
  v.host.log.clear();
  BOOST_TEST_REQUIRE(run_recover(v.s, v.host, v.record, v.report, "op").has_value());
  BOOST_TEST((v.s.phase == vm_phase::stopped));
  BOOST_TEST(v.kinds().back() == "vm_stopped");
  BOOST_TEST(v.s.resources.size() == 3u); // overlay, work_disk, ip
}

BOOST_AUTO_TEST_CASE(reconcile_adopts_a_live_vmm_and_stops_one_it_cannot_adopt) {
  world w;
  BOOST_TEST_REQUIRE(w.start().has_value());
  w.host.log.clear();
  auto adopted = run_reconcile(w.s, w.host, w.record, w.report, "op");
  BOOST_TEST_REQUIRE(adopted.has_value());
  BOOST_TEST((w.s.phase == vm_phase::running));
  BOOST_TEST(w.kinds().back() == "vm_adopted");
  BOOST_TEST(w.host.log.empty()); // nothing touched
  BOOST_TEST(std::get<vm_adopted>(w.journal.back()).pid == 100);

  w.host.adopt_refusal = "the host rebooted since it started";
  auto stopped = run_reconcile(w.s, w.host, w.record, w.report, "op");
  BOOST_TEST_REQUIRE(stopped.has_value());
  BOOST_TEST((w.s.phase == vm_phase::stopped));
  BOOST_TEST(w.s.last_error.find("the host rebooted") != std::string::npos, w.s.last_error);
  // Process, then network, then files: the reverse of the start order.
  std::vector<std::string> want = {"kill", "-vmm 100", "-nat nat:t", "-tap tap:t", "-sockets sockets:t"};
  BOOST_TEST(w.host.log == want, boost::test_tools::per_element());
  BOOST_TEST(w.s.resources.size() == 3u);

  // A stopped VM: nothing to do, nothing recorded.
  auto n = w.journal.size();
  BOOST_TEST_REQUIRE(run_reconcile(w.s, w.host, w.record, w.report, "op").has_value());
  BOOST_TEST(w.journal.size() == n);
}

BOOST_AUTO_TEST_CASE(pause_and_resume_record_the_fact_once_the_vmm_did_it) {
  world w;
  BOOST_TEST_REQUIRE(w.start().has_value());
  w.host.log.clear();
  auto n = w.journal.size();
  auto paused = work_of(vm_cmd::pause{}, w.s, "op")(w.s, w.host, w.record, w.report);
  BOOST_TEST_REQUIRE(paused.has_value());
  BOOST_TEST((w.s.phase == vm_phase::paused));
  BOOST_TEST(w.host.log == std::vector<std::string>{"pause"}, boost::test_tools::per_element());
  BOOST_TEST(w.journal.size() == n + 1);
  BOOST_TEST(w.kinds().back() == "vm_paused");
  auto resumed = work_of(vm_cmd::resume{}, w.s, "op")(w.s, w.host, w.record, w.report);
  BOOST_TEST_REQUIRE(resumed.has_value());
  BOOST_TEST((w.s.phase == vm_phase::running));
  BOOST_TEST(w.kinds().back() == "vm_resumed");
  // Nothing else runs on the worker for the commands that are only a decision.
  BOOST_TEST(!work_of(vm_cmd::configure{2, 0}, w.s, "op"));
}

BOOST_AUTO_TEST_CASE(reconcile_adopts_a_paused_vm_paused_and_makes_the_vmm_match_the_journal) {
  {
    world w; // on record paused, and the VMM paused: adopted, nothing touched
    BOOST_TEST_REQUIRE(w.start().has_value());
    (void)w.record({vm_paused{}});
    w.host.frozen = true;
    w.host.log.clear();
    BOOST_TEST_REQUIRE(run_reconcile(w.s, w.host, w.record, w.report, "op").has_value());
    BOOST_TEST((w.s.phase == vm_phase::paused));
    BOOST_TEST(w.kinds().back() == "vm_adopted");
    BOOST_TEST(w.host.log.empty());
  }
  {
    world w; // on record running, the VMM paused (the daemon died before recording the pause)
    BOOST_TEST_REQUIRE(w.start().has_value());
    w.host.frozen = true;
    w.host.log.clear();
    BOOST_TEST_REQUIRE(run_reconcile(w.s, w.host, w.record, w.report, "op").has_value());
    BOOST_TEST((w.s.phase == vm_phase::running));
    BOOST_TEST(w.host.log == std::vector<std::string>{"resume"}, boost::test_tools::per_element());
    BOOST_TEST(!w.host.frozen);
  }
  {
    world w; // on record paused, the VMM running (died before recording the resume)
    BOOST_TEST_REQUIRE(w.start().has_value());
    (void)w.record({vm_paused{}});
    w.host.log.clear();
    BOOST_TEST_REQUIRE(run_reconcile(w.s, w.host, w.record, w.report, "op").has_value());
    BOOST_TEST((w.s.phase == vm_phase::paused));
    BOOST_TEST(w.host.log == std::vector<std::string>{"pause"}, boost::test_tools::per_element());
  }
}

BOOST_AUTO_TEST_CASE(reconcile_finishes_an_interrupted_delete) {
  world w;
  BOOST_TEST_REQUIRE(w.start().has_value());
  (void)w.record(*decide_stop(w.s, "stop"));
  BOOST_TEST_REQUIRE(run_stop(w.s, w.host, false, w.record, w.report, "op").has_value());
  (void)w.record(*decide_delete(w.s));
  (void)w.record({resource_released{"ip", "172.30.0.2"}}); // the daemon died after this release
  w.host.log.clear();
  BOOST_TEST_REQUIRE(run_reconcile(w.s, w.host, w.record, w.report, "op").has_value());
  BOOST_TEST((w.s.phase == vm_phase::deleted));
  std::vector<std::string> want = {"-work_disk work_disk:t", "-overlay overlay:t", "rmdirs"};
  BOOST_TEST(w.host.log == want, boost::test_tools::per_element());
}

namespace {

/// A feed that sends `n` files of `size` bytes.
struct fake_feed final : workspace_feed {
  int n = 2;
  std::size_t size = 5;
  expected<workspace::landed> pump(workspace::receiver& to) override {
    if (auto ok = to.begin({"/root/repo", n * size, static_cast<std::uint64_t>(n)}); !ok) {
      to.abort();
      return ok.err();
    }
    for (int i = 0; i < n; ++i) {
      (void)to.entry({false, "f" + std::to_string(i), workspace::entry_kind::file, 0644, size, 0, {}});
      (void)to.data(std::string(size, 'x'));
    }
    return to.finish({});
  }
};

} // namespace

BOOST_AUTO_TEST_CASE(a_workspace_in_a_vm_that_never_started_makes_its_work_disk_first) {
  world w;
  vm_cmd::prepare_workspace c{"/home/me/repo", "/root/repo", "", ""};
  (void)w.record(*decide_prepare_workspace(w.s, c));
  auto feed = std::make_shared<fake_feed>();
  auto r = work_of(actors::vm_command(c), w.s, "op", {feed})(w.s, w.host, w.record, w.report);
  BOOST_TEST_REQUIRE(r.has_value(), (r ? "" : r.err().message));
  std::vector<std::string> want{"vm_created", "workspace_preparing", "resource_intended", "resource_acquired",
                                "workspace_prepared"};
  BOOST_TEST(w.kinds() == want, boost::test_tools::per_element());
  BOOST_TEST(w.s.workspace.files == 2u);
  BOOST_TEST(w.s.workspace.bytes == 10u);
  BOOST_TEST(w.s.find(resource_kind::work_disk)->acquired);
  // The start that follows keeps that disk.
  auto started = w.start();
  BOOST_TEST_REQUIRE(started.has_value());
  BOOST_TEST(std::count(w.host.log.begin(), w.host.log.end(), "+work_disk work_disk:t") == 1);
}

BOOST_AUTO_TEST_CASE(a_workspace_that_does_not_land_is_recorded_as_failed) {
  world w;
  w.host.fail_at = "workspace";
  vm_cmd::prepare_workspace c{"/home/me/repo", "/root/repo", "", ""};
  (void)w.record(*decide_prepare_workspace(w.s, c));
  auto r = work_of(actors::vm_command(c), w.s, "op", {std::make_shared<fake_feed>()})(w.s, w.host, w.record, w.report);
  BOOST_TEST_REQUIRE(!r.has_value());
  BOOST_TEST(r.err().message.find("the work disk is full") != std::string::npos, r.err().message);
  BOOST_TEST(w.kinds().back() == "workspace_prepare_failed");
  BOOST_TEST(!w.s.workspace_pending());
  BOOST_TEST(w.s.workspace.empty());
}

BOOST_AUTO_TEST_CASE(a_restart_after_a_cut_short_landing_repairs_the_disk_and_says_so) {
  world w;
  vm_cmd::prepare_workspace c{"/home/me/repo", "/root/repo", "", ""};
  (void)w.record(*decide_prepare_workspace(w.s, c));
  (void)w.record({resource_intended{"work_disk", "/d"}}); // the daemon died while making it
  auto r = run_reconcile(w.s, w.host, w.record, w.report, "op");
  BOOST_TEST_REQUIRE(r.has_value(), (r ? "" : r.err().message));
  BOOST_TEST(w.host.repairs == 1);
  BOOST_TEST(!w.s.workspace_pending());
  BOOST_TEST(w.s.find(resource_kind::work_disk) == nullptr); // the intent is released
  BOOST_TEST(w.kinds().back() == "workspace_prepare_failed");
}

// Into a running VM: the guest lends its disk, the host writes it, the guest mounts it again.
// When /root is in use the stream goes through the agent; a failed mount is said, not hidden.
BOOST_AUTO_TEST_CASE(a_running_guest_lends_its_disk_for_a_workspace_unless_root_is_in_use) {
  vm_cmd::prepare_workspace c{"/home/me/repo", "/root/repo", "", ""};
  auto prepare = [&](world& w) {
    w.host.log.clear();
    (void)w.record(*decide_prepare_workspace(w.s, c));
    return work_of(actors::vm_command(c), w.s, "op", {std::make_shared<fake_feed>()})(w.s, w.host, w.record, w.report);
  };
  {
    world w;
    BOOST_TEST_REQUIRE(w.start().has_value());
    auto r = prepare(w);
    BOOST_TEST_REQUIRE(r.has_value(), (r ? "" : r.err().message));
    std::vector<std::string> want{"release", "workspace /root/repo", "attach"};
    BOOST_TEST(w.host.log == want, boost::test_tools::per_element());
    auto k = w.kinds();
    std::vector<std::string> tail(k.end() - 3, k.end());
    std::vector<std::string> events{"workspace_preparing", "workspace_disk_released", "workspace_prepared"};
    BOOST_TEST(tail == events, boost::test_tools::per_element());
    BOOST_TEST(!w.s.workspace_disk_released);
  }
  {
    world w;
    BOOST_TEST_REQUIRE(w.start().has_value());
    w.host.disk_busy = true;
    auto r = prepare(w);
    BOOST_TEST_REQUIRE(r.has_value(), (r ? "" : r.err().message));
    std::vector<std::string> want{"release", "agent-workspace /root/repo"};
    BOOST_TEST(w.host.log == want, boost::test_tools::per_element());
    BOOST_TEST(w.kinds().back() == "workspace_prepared");
  }
  {
    world w;
    BOOST_TEST_REQUIRE(w.start().has_value());
    w.host.attach_fails = true;
    auto r = prepare(w);
    BOOST_TEST_REQUIRE(!r.has_value());
    BOOST_TEST(r.err().message.find("vm restart t") != std::string::npos, r.err().message);
    BOOST_TEST(w.kinds().back() == "workspace_prepared"); // it did land: the journal says so
    BOOST_TEST(w.s.workspace.guest_path == "/root/repo");
  }
}

// A daemon that died while it wrote a lent disk: the restart repairs the disk (the guest is not
// using it), then has the guest mount it again.
BOOST_AUTO_TEST_CASE(a_restart_after_a_cut_short_landing_on_a_lent_disk_repairs_then_attaches) {
  world w;
  BOOST_TEST_REQUIRE(w.start().has_value());
  vm_cmd::prepare_workspace c{"/home/me/repo", "/root/repo", "", ""};
  (void)w.record(*decide_prepare_workspace(w.s, c));
  (void)w.record({workspace_disk_released{}});
  w.host.log.clear();
  auto r = run_reconcile(w.s, w.host, w.record, w.report, "op");
  BOOST_TEST_REQUIRE(r.has_value(), (r ? "" : r.err().message));
  BOOST_TEST_REQUIRE(w.host.log.size() >= 2u);
  BOOST_TEST(w.host.log[0] == "repair");
  BOOST_TEST(w.host.log[1] == "attach");
  BOOST_TEST(!w.s.workspace_pending());
  BOOST_TEST(!w.s.workspace_disk_released);
  BOOST_TEST((w.s.phase == vm_phase::running));
}

BOOST_AUTO_TEST_SUITE_END()
