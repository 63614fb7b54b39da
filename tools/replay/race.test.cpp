// The race the issue asks for: two commands for one VM sent at once, from two requesters, to the
// real vm actor (journal writer actor, fake host whose acquires take a while so the second
// command queues). Whatever order the mailbox took them in, the recording re-runs identically
// through the pure decide()/apply(); altered, it is reported divergent where it was altered.
#include <boost/test/unit_test.hpp>
#include <caf/all.hpp>

#include "actors/journal_writer.hpp"
#include "actors/vm/vm_actor.hpp"
#include "journal/journal.hpp"
#include "tests/support/proc.hpp"
#include "tools/replay/rerun.hpp"
#include "tools/replay/slice.hpp"
#include "tools/replay/test_vm.hpp"
#include "tools/replay/verify.hpp"

using namespace banger;
using namespace std::chrono_literals;

namespace {

actors::vm_request cmd(actors::vm_command what, std::string op) { return {std::move(what), std::move(op), {}, {}}; }

using reply = expected<actors::vm_state>;

/// Sends `a` and `b` to `vm` from two requesters without waiting, then waits for both replies.
std::pair<reply, reply> race(caf::actor_system& sys, const caf::actor& vm, actors::vm_request a, actors::vm_request b) {
  caf::scoped_actor first{sys}, second{sys};
  first->send(vm, std::move(a));
  second->send(vm, std::move(b));
  std::pair<reply, reply> out{make_error(errc::internal, "no reply"), make_error(errc::internal, "no reply")};
  first->receive([&](reply& r) { out.first = std::move(r); },
                 caf::after(30s) >> [] { BOOST_FAIL("no reply to the first command"); });
  second->receive([&](reply& r) { out.second = std::move(r); },
                  caf::after(30s) >> [] { BOOST_FAIL("no reply to the second command"); });
  return out;
}

replay::slice reparsed(const replay::slice& s) {
  auto p = replay::parse_slice(replay::write_slice(s));
  BOOST_TEST_REQUIRE(p.has_value(), (p ? "" : p.err().message));
  return *p;
}

replay::rerun_report rerun_slice(const replay::slice& s) {
  std::vector<journal::stored_event> evs;
  for (const auto& e : s.events)
    evs.push_back(e.event);
  return replay::rerun(s.stream, evs);
}

} // namespace

BOOST_AUTO_TEST_SUITE(replay_race)

BOOST_AUTO_TEST_CASE(racing_commands_on_one_vm_rerun_identically_and_an_altered_recording_diverges) {
  test::temp_dir dir;
  auto j = journal::journal::open(dir.path / "journal");
  BOOST_TEST_REQUIRE(j.has_value());
  {
    caf::actor_system_config cfg;
    caf::actor_system sys{cfg};
    auto writer = actors::spawn_journal_writer(sys, **j);
    auto host = std::make_shared<replay::test::fake_host>();
    host->delay = 20ms;
    auto vm = actors::spawn_vm_actor(sys, "race", actors::vm_deps{&writer, j->get(), host});

    caf::scoped_actor self{sys};
    actors::vm_cmd::create create;
    create.start = false;
    create.id = "0000beef";
    create.image = "debian";
    create.image_version = "img1";
    create.kernel = "k";
    create.kernel_version = "kv1";
    create.vcpus = 1;
    create.memory_mib = 512;
    create.disk_mib = 2048;
    self->request(vm, 30s, cmd(create, "op-000001"))
      .receive([](reply& r) { BOOST_TEST_REQUIRE(r.has_value(), (r ? "" : r.err().message)); },
               [](caf::error&) { BOOST_FAIL("create failed"); });

    // Round 1: start and stop at once. Start first: stop waits for it, then stops the VM. Stop
    // first: refused (not running), then the start runs.
    auto [started, stopped] =
      race(sys, vm, cmd(actors::vm_cmd::start{}, "op-000002"), cmd(actors::vm_cmd::stop{}, "op-000003"));
    BOOST_TEST(started.has_value(), (started ? "" : started.err().message));
    BOOST_TEST_MESSAGE("round 1: stop " << (stopped ? "ran after the start" : "was refused: " + stopped.err().message));
    if (!stopped) { // bring it to running for round 2 either way
      BOOST_TEST_REQUIRE((started && started->phase == actors::vm_phase::running));
    } else {
      self->request(vm, 30s, cmd(actors::vm_cmd::start{}, "op-000004"))
        .receive([](reply& r) { BOOST_TEST_REQUIRE(r.has_value(), (r ? "" : r.err().message)); },
                 [](caf::error&) { BOOST_FAIL("start failed"); });
    }
    // Round 2: delete and stop at once on a running VM. Delete first: refused (conflict), then
    // the stop. Stop first: the VM stops, then the delete deletes it.
    auto [deleted, stopped2] =
      race(sys, vm, cmd(actors::vm_cmd::remove{}, "op-000005"), cmd(actors::vm_cmd::stop{}, "op-000006"));
    BOOST_TEST(stopped2.has_value(), (stopped2 ? "" : stopped2.err().message));
    BOOST_TEST_MESSAGE("round 2: delete "
                       << (deleted ? "ran after the stop" : "was refused: " + deleted.err().message));

    self->send_exit(vm, caf::exit_reason::user_shutdown);
    self->send_exit(writer, caf::exit_reason::user_shutdown);
  }

  // The recording: both rounds' commands are on record, in the order the actor took them.
  auto s = replay::export_vm(**j, "race");
  BOOST_TEST_REQUIRE(s.has_value(), (s ? "" : s.err().message));
  auto slice = reparsed(*s);
  auto r = rerun_slice(slice);
  BOOST_TEST_REQUIRE(r.identical(), (r.diverged ? r.diverged->recorded + " / " + r.diverged->expected : ""));
  BOOST_TEST(r.commands >= 5u); // create, start, stop, (start), delete, stop
  BOOST_TEST(r.commands + r.redecided + r.effects == slice.events.size());
  auto rep = replay::verify(**j);
  BOOST_TEST_REQUIRE(rep.has_value());
  BOOST_TEST(rep->ok());
  BOOST_TEST(rerun_slice(slice).identical()); // and again: deterministic

  // Altered: the first stop's decided vm_stopping says "kill".
  {
    auto alt = slice;
    std::size_t at = 0;
    while (at < alt.events.size() && !std::holds_alternative<journal::vm_stopping>(alt.events[at].event.body))
      ++at;
    BOOST_TEST_REQUIRE(at < alt.events.size());
    auto e = alt.events[at].event;
    std::get<journal::vm_stopping>(e.body).how = "kill";
    alt.events[at] = replay::make_slice_event(e);
    auto d = rerun_slice(reparsed(alt));
    BOOST_TEST_REQUIRE(d.diverged.has_value());
    BOOST_TEST(d.diverged->index == at);
    BOOST_TEST(d.diverged->seq == e.seq);
    BOOST_TEST(d.diverged->expected.find("field how: \"kill\" vs \"stop\"") != std::string::npos, d.diverged->expected);
  }
  // Altered: the round-2 delete's outcome flipped (refused <-> accepted).
  {
    auto alt = slice;
    std::size_t del = 0;
    while (del < alt.events.size()) {
      const auto* c = std::get_if<journal::vm_command>(&alt.events[del].event.body);
      if (c && c->command == actors::vm_cmd::remove::name)
        break;
      ++del;
    }
    BOOST_TEST_REQUIRE(del < alt.events.size());
    auto e = alt.events[del].event;
    auto& c = std::get<journal::vm_command>(e.body);
    c.refused = c.refused.empty() ? "conflict: flipped" : "";
    alt.events[del] = replay::make_slice_event(e);
    auto d = rerun_slice(reparsed(alt));
    BOOST_TEST_REQUIRE(d.diverged.has_value());
    BOOST_TEST(d.diverged->index == del);
  }
}

BOOST_AUTO_TEST_SUITE_END()
