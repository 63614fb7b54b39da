// Failures that cannot hang anything (failure.hpp), with real actors: a bug in an actor's
// handler answers the request it handled and the ones it held with internal and the op id; a
// job that throws fails its build (journaled) and the artifact actor takes the next one; a VM
// worker that throws fails its command with internal and the VM is settled, not left starting.
#include "actors/failure.hpp"

#include <boost/test/unit_test.hpp>
#include <caf/all.hpp>

#include "actors/image/artifact_actor.hpp"
#include "actors/journal_writer.hpp"
#include "actors/messages.hpp"
#include "actors/vm/vm_actor.hpp"
#include "common/check.hpp"
#include "journal/journal.hpp"
#include "tests/support/proc.hpp"
#include "tests/support/sandbox.hpp"
#include "tools/replay/test_vm.hpp"

using namespace banger;
using namespace banger::actors;
using namespace std::chrono_literals;

namespace {

using boom_atom = caf::atom_constant<caf::atom("boom")>;
using hold_atom = caf::atom_constant<caf::atom("hold")>;

struct buggy_state {
  std::vector<caf::response_promise> held;
  std::string op;
};

// Spawned with its name as an argument: CAF 0.17 dereferences a null argument
// tuple when a function actor is spawned with none, which UBSan reports.
caf::behavior buggy(caf::stateful_actor<buggy_state>* self, const std::string& name) {
  install_exception_handler(self, {name, [self] { return self->state.op; }, [self] { return self->state.held; }});
  return {
    [self](hold_atom) -> caf::result<int> {
      auto rp = self->make_response_promise<int>();
      self->state.held.push_back(rp);
      return rp;
    },
    [self](boom_atom, const std::string& op) -> int {
      self->state.op = op;
      BANGER_CHECK(op.empty(), "an invariant that does not hold");
      return 1;
    },
  };
}

error caf_reply_error(caf::scoped_actor& self, caf::response_handle<caf::blocking_actor, caf::message, true> h) {
  error out = make_error(errc::none, "answered");
  std::move(h).receive([&](int) {}, [&](caf::error& e) { out = from_caf(e, self->system(), ""); });
  return out;
}

} // namespace

BOOST_AUTO_TEST_SUITE(failures)

BOOST_AUTO_TEST_CASE(a_bug_in_a_handler_answers_every_request_with_internal_and_the_op_id) {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys}, other{sys};
  auto a = sys.spawn(buggy, std::string("the buggy actor"));
  auto held = other->request(a, 5s, hold_atom::value); // queued inside the actor, unanswered
  auto e = caf_reply_error(self, self->request(a, 5s, boom_atom::value, std::string("op-00beef")));
  BOOST_TEST((e.code == errc::internal));
  BOOST_TEST(e.op_id == "op-00beef");
  BOOST_TEST(e.message.find("internal error in the buggy actor") != std::string::npos, e.message);
  BOOST_TEST(e.message.find("an invariant that does not hold") != std::string::npos, e.message);
  auto h = caf_reply_error(other, std::move(held));
  BOOST_TEST((h.code == errc::internal), h.message); // not left waiting
}

BOOST_AUTO_TEST_CASE(guarded_turns_an_exception_into_internal) {
  auto r = guarded<int>("a job", "op-1", []() -> expected<int> { throw std::runtime_error("json type_error"); });
  BOOST_TEST_REQUIRE(!r.has_value());
  BOOST_TEST((r.err().code == errc::internal));
  BOOST_TEST(r.err().op_id == "op-1");
  BOOST_TEST(r.err().message.find("json type_error") != std::string::npos);
  BOOST_TEST(*guarded<int>("a job", "op-1", [] { return expected<int>(3); }) == 3);
  // A caf::error that is not banger's is unavailable, rendered.
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto u = from_caf(caf::make_error(caf::sec::request_timeout), sys, "asking: ");
  BOOST_TEST((u.code == errc::unavailable));
  BOOST_TEST(u.message.rfind("asking: ", 0) == 0u);
  auto back = from_caf(to_caf(error{errc::conflict, "busy", "op-2"}), sys, "");
  BOOST_TEST((back.code == errc::conflict));
  BOOST_TEST(back.message == "busy");
  BOOST_TEST(back.op_id == "op-2");
}

BOOST_AUTO_TEST_CASE(a_job_that_throws_fails_its_build_and_the_next_build_runs) {
  test::temp_dir dir;
  auto j = journal::journal::open(dir.path / "journal");
  BOOST_TEST_REQUIRE(j.has_value());
  {
    caf::actor_system_config cfg;
    caf::actor_system sys{cfg};
    auto writer = spawn_journal_writer(sys, **j);
    int calls = 0;
    artifact_deps deps{j->get(), &writer, artifact_store{dir.path / "state", {}, {}, dir.path / "cache"}};
    deps.run_job = [&calls](const artifact_store&, artifact_kind, const std::string&, const artifact_source&,
                            const job_progress&) -> expected<job_result> {
      if (++calls == 1)
        throw std::runtime_error("[json.exception.type_error.302] type must be number, but is string");
      return make_error(errc::bad_request, "second job: refused as a value");
    };
    auto a = spawn_artifact_actor(sys, artifact_kind::kernel, "k", deps);
    caf::scoped_actor self{sys};
    artifact_source source;
    source.kind = artifact_source::type::deb;
    source.path = "/x.deb";
    artifact_request cmd{artifact_cmd::build{source}, "op-000001", {}};
    auto ask = [&](artifact_request c) {
      artifact_reply out = make_error(errc::none, "no answer");
      self->request(a, 10s, std::move(c))
        .receive([&](artifact_reply& r) { out = std::move(r); }, [&](caf::error& e) { BOOST_FAIL(sys.render(e)); });
      return out;
    };
    auto first = ask(cmd);
    BOOST_TEST_REQUIRE(!first.has_value());
    BOOST_TEST((first.err().code == errc::internal));
    BOOST_TEST(first.err().op_id == "op-000001");
    BOOST_TEST(first.err().message.find("type must be number") != std::string::npos, first.err().message);
    cmd.op_id = "op-000002";
    auto second = ask(cmd); // the actor took the next job: its job set was cleared
    BOOST_TEST_REQUIRE(!second.has_value());
    BOOST_TEST((second.err().code == errc::bad_request), second.err().message);
    self->send_exit(a, caf::exit_reason::user_shutdown);
    self->send_exit(writer, caf::exit_reason::user_shutdown);
  }
  auto evs = (*j)->read_stream("kernel/k");
  BOOST_TEST_REQUIRE(evs.has_value());
  std::size_t failed = 0;
  for (const auto& e : *evs)
    failed += std::holds_alternative<journal::artifact_failed>(e.body);
  BOOST_TEST(failed == 2u); // both failures are on record
}

BOOST_AUTO_TEST_CASE(a_vm_worker_that_throws_fails_the_command_and_the_vm_is_settled) {
  test::temp_dir dir;
  auto j = journal::journal::open(dir.path / "journal");
  BOOST_TEST_REQUIRE(j.has_value());
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto writer = spawn_journal_writer(sys, **j);
  struct throwing_host : replay::test::fake_host {
    bool throw_at_tap = true;
    expected<step_result> acquire(const vm_state& s, resource_kind kind, const std::string& op) override {
      if (kind == resource_kind::tap && throw_at_tap)
        throw std::logic_error("bug: tap handler");
      return fake_host::acquire(s, kind, op);
    }
  };
  auto host = std::make_shared<throwing_host>();
  auto vm = spawn_vm_actor(sys, "boom", vm_deps{&writer, j->get(), host});
  caf::scoped_actor self{sys};
  auto ask = [&](vm_command c, std::string op) {
    expected<vm_state> out = make_error(errc::none, "no answer");
    self->request(vm, 30s, vm_request{std::move(c), std::move(op), {}, {}})
      .receive([&](expected<vm_state>& r) { out = std::move(r); }, [&](caf::error& e) { BOOST_FAIL(sys.render(e)); });
    return out;
  };
  vm_cmd::create c;
  c.id = "0000b00b";
  c.image = c.kernel = "x";
  c.image_version = c.kernel_version = "v";
  c.vcpus = 1;
  c.memory_mib = 512;
  c.disk_mib = 2048;
  c.start = true;
  auto r = ask(c, "op-00000b");
  BOOST_TEST_REQUIRE(!r.has_value());
  BOOST_TEST((r.err().code == errc::internal));
  BOOST_TEST(r.err().op_id == "op-00000b");
  BOOST_TEST(r.err().message.find("bug: tap handler") != std::string::npos, r.err().message);
  // The actor settled it at once: stopped, nothing of the run held, and it starts again.
  vm_state st;
  BOOST_TEST(test::eventually([&] {
    self->request(vm, 5s, caf::get_atom::value).receive([&](vm_state& s) { st = s; }, [](caf::error&) {});
    return st.phase == vm_phase::stopped;
  }));
  for (const auto& res : st.resources)
    BOOST_TEST(per_vm(res.kind), to_string(res.kind));
  host->throw_at_tap = false;
  auto again = ask(vm_cmd::start{}, "op-00000c");
  BOOST_TEST(again.has_value(), (again ? "" : again.err().message));
  self->send_exit(vm, caf::exit_reason::user_shutdown);
  self->send_exit(writer, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_SUITE_END()
