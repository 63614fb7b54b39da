#include "actors/journal_writer.hpp"

#include <filesystem>
#include <set>

#include <boost/test/unit_test.hpp>
#include <caf/all.hpp>

#include "actors/messages.hpp"

using namespace banger;
using namespace banger::actors;
using namespace std::chrono_literals;

namespace {

struct tmp_dir {
  std::filesystem::path path;
  tmp_dir() {
    char tmpl[] = "/tmp/banger-writer-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~tmp_dir() { std::filesystem::remove_all(path); }
};

journal::append_request note_request(std::string stream, std::uint64_t expected, std::string text) {
  journal::append_request r;
  r.stream = std::move(stream);
  r.expected_version = expected;
  r.events.push_back({"op-000001", journal::note{std::move(text)}});
  return r;
}

} // namespace

BOOST_AUTO_TEST_SUITE(journal_writer_actor)

BOOST_AUTO_TEST_CASE(many_requesters_get_gapless_sequences_and_conflicts_are_replies) {
  tmp_dir dir;
  auto j = journal::journal::open(dir.path / "journal");
  BOOST_REQUIRE_MESSAGE(j.has_value(), (j ? "" : j.err().message));
  {
    caf::actor_system_config cfg;
    caf::actor_system sys{cfg};
    auto writer = spawn_journal_writer(sys, **j);
    // 200 appends sent without waiting, from one requester, to 20 streams: they queue in the
    // writer's mailbox and are written in a few group-committed batches.
    caf::scoped_actor self{sys};
    std::set<std::uint64_t> seqs;
    std::map<std::string, std::uint64_t> versions;
    for (int i = 0; i < 200; ++i)
      self->send(writer, append_atom::value, note_request("s" + std::to_string(i % 20), journal::any_version, "n"));
    for (int i = 0; i < 200; ++i)
      self->receive([&](expected<journal::append_result>& r) {
        BOOST_REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.err().message));
        seqs.insert(r->first_seq);
        BOOST_TEST(r->wall_times_ns.size() == 1u); // the time stored, for the appender to apply with
      });
    BOOST_TEST(seqs.size() == 200u);
    BOOST_TEST(*seqs.begin() == 1u);
    BOOST_TEST(*seqs.rbegin() == 200u);

    // A stale expected version comes back as a conflict reply, not an actor error.
    bool conflict = false;
    self->request(writer, 5s, append_atom::value, note_request("s0", 3, "stale"))
      .receive([&](expected<journal::append_result>& r) { conflict = !r && r.err().code == errc::conflict; },
               [&](caf::error& e) { BOOST_FAIL(sys.render(e)); });
    BOOST_TEST(conflict);
    self->send_exit(writer, caf::exit_reason::user_shutdown);
  }
  auto v = (*j)->stream_version("s0");
  BOOST_REQUIRE(v.has_value());
  BOOST_TEST(*v == 10u);
}

BOOST_AUTO_TEST_SUITE_END()
