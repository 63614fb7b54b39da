// The start/stop/delete sequencing against a fake host that can fail at any step: what is
// made, what is undone (in reverse), and what the journal records.
#include <boost/test/unit_test.hpp>

#include "actors/vm/pipeline.hpp"

using namespace banger;
using namespace banger::actors;
using namespace banger::journal;

namespace {

struct fake_host final : vm_host {
  std::string fail_at; ///< kind or stage whose acquire fails
  bool nat = true;
  std::vector<std::string> log; ///< "+kind id" / "-kind id" / "agent" / "shutdown"
  int next_pid = 100;

  bool wants(const vm_state&, std::string_view kind) override { return kind != resource::nat || nat; }
  std::string planned_id(const vm_state& s, std::string_view kind) override {
    if (kind == resource::ip || kind == resource::vmm)
      return "";
    return std::string(kind) + ":" + s.name;
  }
  expected<step_result> acquire(const vm_state& s, std::string_view kind, const std::string&) override {
    if (kind == fail_at)
      return make_error(errc::operation_failed, std::string(kind) + " broke");
    std::string id = kind == resource::ip    ? "172.30.0.2"
                     : kind == resource::vmm ? std::to_string(next_pid++)
                                             : planned_id(s, kind);
    log.push_back("+" + std::string(kind) + " " + id);
    return step_result{id, "d"};
  }
  expected<void> release(const vm_state&, const vm_resource& r, const std::string&) override {
    if (fail_at == "release:" + r.kind)
      return make_error(errc::operation_failed, "busy");
    log.push_back("-" + r.kind + " " + r.id);
    return {};
  }
  expected<void> wait_agent(const vm_state&, const std::string&) override {
    if (fail_at == "agent")
      return make_error(errc::unavailable, "agent did not answer within 60 s");
    log.push_back("agent");
    return {};
  }
  expected<void> post_start(const vm_state&, const std::string&) override { return {}; }
  std::string shutdown(const vm_state&, bool kill, const std::string&) override {
    log.push_back(kill ? "kill" : "shutdown");
    return kill ? "killed" : "powered off";
  }
  void remove_dirs(const vm_state&) override { log.push_back("rmdirs"); }
  bool vmm_alive(const vm_state&) override { return true; }
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
    vm_create_request r;
    r.name = "t";
    r.image_version = r.kernel_version = "v";
    (void)record(*decide_create(s, r));
  }
  expected<vm_state> start() {
    (void)record(*decide_start(s, "v"));
    return run_start(s, host, record, report, "op-000001");
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

BOOST_AUTO_TEST_CASE(start_acquires_in_order_and_records_intent_then_fact) {
  world w;
  auto r = w.start();
  BOOST_TEST_REQUIRE(r.has_value(), (r ? "" : r.err().message));
  BOOST_TEST((w.s.phase == vm_phase::running));
  std::vector<std::string> want = {"+overlay overlay:t", "+work_disk work_disk:t",
                                   "+ip 172.30.0.2",     "+tap tap:t",
                                   "+sockets sockets:t", "+nat nat:t",
                                   "+vmm 100",           "agent"};
  BOOST_TEST(w.host.log == want, boost::test_tools::per_element());
  std::vector<std::string> stages = {"overlay", "work_disk", "ip",    "tap",       "sockets",
                                     "nat",     "vmm",       "agent", "post_start"};
  BOOST_TEST(w.stages == stages, boost::test_tools::per_element());
  // Every acquisition is an intent followed by its fact.
  auto k = w.kinds();
  BOOST_TEST(k.front() == "vm_created");
  BOOST_TEST(k[1] == "vm_starting");
  for (std::size_t i = 2; i + 1 < k.size(); i += 2) {
    BOOST_TEST(k[i] == "resource_intended");
    BOOST_TEST(k[i + 1] == "resource_acquired");
  }
  BOOST_TEST(k.back() == "vm_running");
  BOOST_TEST(w.s.resources.size() == 7u);
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
    // Releases mirror acquisitions in reverse order.
    std::vector<std::string> made, undone;
    for (const auto& l : w.host.log)
      if (l[0] == '+')
        made.push_back(l.substr(1));
      else if (l[0] == '-')
        undone.push_back(l.substr(1));
    // The failing kind's own intent is released too (it may have been half made).
    if (at != "agent")
      made.push_back(at + " " + (at == "ip" ? "" : at == "vmm" ? "" : at + ":t"));
    std::reverse(undone.begin(), undone.end());
    BOOST_TEST(undone == made, boost::test_tools::per_element());
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
  BOOST_TEST(w.host.log.back() == "-tap tap:t");

  w.host.log.clear();
  w.host.fail_at = "vmm";
  BOOST_TEST(!w.start().has_value());
  BOOST_TEST(w.s.resources.size() == 3u); // the disks and the lease from the first start are kept
  std::vector<std::string> want = {"+tap tap:t", "+sockets sockets:t", "-vmm ", "-sockets sockets:t", "-tap tap:t"};
  BOOST_TEST(w.host.log == want, boost::test_tools::per_element());

  w.host.fail_at.clear();
  w.host.log.clear();
  auto del = run_delete(w.s, w.host, w.record, w.report, "op");
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
  BOOST_TEST(w.s.find("tap") != nullptr);
  auto del = run_delete(w.s, w.host, w.record, w.report, "op");
  BOOST_TEST(!del.has_value());
  BOOST_TEST((w.s.phase == vm_phase::stopped)); // not forgotten while the tap may exist
  w.host.fail_at.clear();
  BOOST_TEST(run_delete(w.s, w.host, w.record, w.report, "op").has_value());
  BOOST_TEST((w.s.phase == vm_phase::deleted));
  BOOST_TEST(w.s.resources.empty());
}

BOOST_AUTO_TEST_SUITE_END()
