#include "tools/replay/verify.hpp"

#include <boost/test/unit_test.hpp>

#include "journal/journal.hpp"
#include "tests/support/proc.hpp"
#include "tests/support/raw_journal.hpp"

using namespace banger;

namespace {

journal::append_request notes(std::string stream, int n) {
  journal::append_request r;
  r.stream = std::move(stream);
  r.expected_version = journal::any_version;
  for (int i = 0; i < n; ++i)
    r.events.push_back({"op-0000aa", journal::note{"n" + std::to_string(i)}});
  return r;
}

/// A healthy journal: streams a (3 events), b (2), a again (1) → seqs 1..6.
std::filesystem::path healthy(const test::temp_dir& dir) {
  auto path = dir.path / "journal";
  auto j = journal::journal::open(path);
  BOOST_TEST_REQUIRE(j.has_value());
  BOOST_TEST_REQUIRE((*j)->append(notes("a", 3)).has_value());
  BOOST_TEST_REQUIRE((*j)->append(notes("b", 2)).has_value());
  BOOST_TEST_REQUIRE((*j)->append(notes("a", 1)).has_value());
  return path;
}

/// What `banger-replay verify` reports for the journal at `path`: a journal damaged so that it
/// cannot even be opened (the journal checks the tail of its sequence at open) counts as one
/// problem, named by the open error.
replay::verify_report verify_at(const std::filesystem::path& path) {
  journal::options o;
  o.read_only = true;
  auto j = journal::journal::open(path, o);
  if (!j) {
    replay::verify_report r;
    r.problems.push_back(j.err().message);
    return r;
  }
  auto rep = replay::verify(**j);
  BOOST_TEST_REQUIRE(rep.has_value(), (rep ? "" : rep.err().message));
  return *rep;
}

bool mentions(const replay::verify_report& r, const std::string& what) {
  for (const auto& p : r.problems)
    if (p.find(what) != std::string::npos)
      return true;
  return false;
}

std::string event_bytes(const std::string& stream, std::uint64_t version) {
  journal::stored_event e;
  e.stream = stream;
  e.version = version;
  e.body = journal::note{"planted"};
  return journal::encode(e);
}

} // namespace

BOOST_AUTO_TEST_SUITE(replay_verify)

BOOST_AUTO_TEST_CASE(healthy_journal_passes) {
  test::temp_dir dir;
  auto rep = verify_at(healthy(dir));
  BOOST_TEST(rep.ok());
  BOOST_TEST(rep.events == 6u);
  BOOST_TEST(rep.streams == 2u);
}

BOOST_AUTO_TEST_CASE(undecodable_value_is_named_by_seq) {
  test::temp_dir dir;
  auto path = healthy(dir);
  test::raw_journal(path).put_event(7, "b", 3, "this is not a capnp message");
  auto rep = verify_at(path);
  BOOST_TEST(!rep.ok());
  BOOST_TEST(mentions(rep, "7"), (rep.problems.empty() ? std::string() : rep.problems.front()));
}

BOOST_AUTO_TEST_CASE(sequence_gap_is_reported) {
  test::temp_dir dir;
  auto path = healthy(dir);
  test::raw_journal(path).put_event(9, "b", 3, event_bytes("b", 3));
  auto rep = verify_at(path);
  BOOST_TEST(!rep.ok());
  BOOST_TEST(mentions(rep, "seq 7"), (rep.problems.empty() ? std::string() : rep.problems.front()));
}

BOOST_AUTO_TEST_CASE(stream_version_gap_is_reported) {
  test::temp_dir dir;
  auto path = healthy(dir);
  test::raw_journal(path).put_event(7, "b", 5, event_bytes("b", 5));
  auto rep = verify_at(path);
  BOOST_TEST(!rep.ok());
  BOOST_TEST(mentions(rep, "stream \"b\": seq 7 has version 5, expected 3"));
}

BOOST_AUTO_TEST_CASE(missing_index_entry_is_reported) {
  test::temp_dir dir;
  auto path = healthy(dir);
  {
    test::raw_journal raw(path);
    raw.put("events", test::be64(7), event_bytes("c", 1)); // event without its index entry
  }
  auto rep = verify_at(path);
  BOOST_TEST(!rep.ok());
  BOOST_TEST(mentions(rep, "stream \"c\" has events but is missing from the streams index"));
}

BOOST_AUTO_TEST_SUITE_END()
