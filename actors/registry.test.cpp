#include "actors/registry.hpp"

#include <boost/test/unit_test.hpp>
#include <caf/all.hpp>

#include "actors/messages.hpp"

using namespace banger::actors;
using namespace std::chrono_literals;

namespace {

caf::behavior echo_entity(caf::event_based_actor* self, std::string name) {
  return {
    [name](caf::get_atom) { return name; },
    [self](caf::delete_atom) { self->quit(); },
  };
}

registry_config test_config() {
  registry_config cfg;
  cfg.kinds["vm"] = [](caf::actor_system& sys, const std::string& name) { return sys.spawn(echo_entity, name); };
  cfg.kinds["image"] = [](caf::actor_system& sys, const std::string& name) { return sys.spawn(echo_entity, name); };
  return cfg;
}

struct fixture {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  caf::actor reg = spawn_registry(sys, test_config());
  ~fixture() { self->send_exit(reg, caf::exit_reason::user_shutdown); }

  caf::actor spawn(const std::string& kind, const std::string& name) {
    caf::actor out;
    self->request(reg, 5s, spawn_atom::value, kind, name)
      .receive([&](caf::actor a) { out = a; }, [&](caf::error& e) { BOOST_FAIL(sys.render(e)); });
    return out;
  }
  entity_counts counts() {
    entity_counts out;
    self->request(reg, 5s, count_atom::value)
      .receive([&](entity_counts& c) { out = c; }, [&](caf::error& e) { BOOST_FAIL(sys.render(e)); });
    return out;
  }
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(registry, fixture)

BOOST_AUTO_TEST_CASE(same_name_same_actor_different_name_different_actor) {
  auto a1 = spawn("vm", "web");
  auto a2 = spawn("vm", "web");
  auto b = spawn("vm", "db");
  auto c = spawn("image", "web");
  BOOST_TEST((a1 == a2));
  BOOST_TEST((a1 != b));
  BOOST_TEST((a1 != c));
  std::string name;
  self->request(b, 5s, caf::get_atom::value).receive([&](std::string& n) { name = n; }, [](caf::error&) {});
  BOOST_TEST(name == "db");
  auto n = counts();
  BOOST_TEST(n["vm"] == 2u);
  BOOST_TEST(n["image"] == 1u);
}

BOOST_AUTO_TEST_CASE(unknown_kind_is_an_error) {
  bool failed = false;
  self->request(reg, 5s, spawn_atom::value, std::string("toaster"), std::string("x"))
    .receive([](caf::actor) {}, [&](caf::error&) { failed = true; });
  BOOST_TEST(failed);
}

BOOST_AUTO_TEST_CASE(find_misses_then_hits_and_exited_entities_are_forgotten) {
  bool missing = false;
  self->request(reg, 5s, find_atom::value, std::string("vm"), std::string("x"))
    .receive([](caf::actor) {}, [&](caf::error&) { missing = true; });
  BOOST_TEST(missing);
  auto x = spawn("vm", "x");
  caf::actor found;
  self->request(reg, 5s, find_atom::value, std::string("vm"), std::string("x"))
    .receive([&](caf::actor a) { found = a; }, [](caf::error&) {});
  BOOST_TEST((found == x));
  self->send(x, caf::delete_atom::value);
  // The registry hears the down message asynchronously; poll briefly.
  for (int i = 0; i < 200 && counts()["vm"] != 0; ++i)
    std::this_thread::sleep_for(5ms);
  BOOST_TEST(counts()["vm"] == 0u);
  BOOST_TEST((spawn("vm", "x") != x));
}

BOOST_AUTO_TEST_SUITE_END()
