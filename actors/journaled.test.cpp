// The journaled-entity helper (journaled.hpp): what an actor holds after its appends is exactly
// what folding its stream gives, wall times included (they come from the journal, not from the
// actor's own clock).
#include "actors/journaled.hpp"

#include <boost/test/unit_test.hpp>

#include "actors/journal_writer.hpp"
#include "actors/vm/vm_actor.hpp"
#include "tests/support/proc.hpp"
#include "tools/replay/test_vm.hpp"

using namespace banger;
using namespace banger::actors;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_SUITE(journaled)

BOOST_AUTO_TEST_CASE(an_actors_state_is_the_fold_of_its_stream_times_included) {
  test::temp_dir dir;
  journal::options opts;
  std::int64_t tick = 1'000'000'000;
  opts.clock = [&tick] { return tick += 1'000'000; }; // a clock only the journal uses
  auto j = journal::journal::open(dir.path / "journal", opts);
  BOOST_TEST_REQUIRE(j.has_value());
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto writer = spawn_journal_writer(sys, **j);
  auto host = std::make_shared<replay::test::fake_host>();
  auto vm = spawn_vm_actor(sys, "t", vm_deps{&writer, j->get(), host});
  caf::scoped_actor self{sys};
  vm_cmd::create c;
  c.id = "0000abcd";
  c.image = c.kernel = "x";
  c.image_version = c.kernel_version = "v";
  c.vcpus = 1;
  c.memory_mib = 512;
  c.disk_mib = 2048;
  c.start = true;
  vm_state held;
  self->request(vm, 30s, vm_request{c, "op-000001", {}, {}})
    .receive([&](expected<vm_state>& r) { BOOST_TEST_REQUIRE(r.has_value()); },
             [&](caf::error& e) { BOOST_FAIL(sys.render(e)); });
  self->request(vm, 5s, caf::get_atom::value).receive([&](vm_state& s) { held = s; }, [](caf::error&) {});
  vm_state seed;
  seed.name = "t";
  auto evs = (*j)->read_stream("vm/t");
  BOOST_TEST_REQUIRE(evs.has_value());
  for (const auto& e : *evs)
    seed = apply(std::move(seed), e);
  BOOST_TEST((held.phase == vm_phase::running));
  BOOST_TEST(held.created_ns == evs->at(1).wall_time_ns); // vm_created's stored time
  BOOST_TEST(held.created_ns < 2'000'000'000);            // the journal's clock, not the wall
  BOOST_TEST(snapshot_encode(held) == snapshot_encode(seed));
  self->send_exit(vm, caf::exit_reason::user_shutdown);
  self->send_exit(writer, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_SUITE_END()
