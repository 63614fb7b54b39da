// Journals outlive binaries: tests/fixtures/journal-v1/ is a journal recorded by banger 0.1
// before issue #11 (string command kinds with JSON arguments, string resource kinds; its
// record.sh says how), with goldens printed by that build's banger-replay. Every later build must
// open it, fold it, verify it and re-run its recorded commands exactly as that build did, and a
// daemon must start on it and show its VMs.
#include <fstream>
#include <sstream>

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "actors/vm/vm.hpp"
#include "common/process.hpp"
#include "journal/journal.hpp"
#include "tests/support/proc.hpp"
#include "tests/support/sandbox.hpp"

namespace fs = std::filesystem;
using namespace banger;

namespace {

const fs::path fixture = fs::path(BANGER_SOURCE_DIR) / "tests" / "fixtures" / "journal-v1";

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  BOOST_TEST_REQUIRE(bool(in), "missing fixture file " + p.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// A writable copy of the fixture database (RocksDB may write to a directory it opens).
struct fixture_copy {
  test::temp_dir dir{"banger-fixture"};
  fs::path db = dir.path / "journal";
  fixture_copy() { fs::copy(fixture / "db", db, fs::copy_options::recursive); }
};

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (std::size_t at = 0; (at = s.find(from, at)) != std::string::npos; at += to.size())
    s.replace(at, from.size(), to);
  return s;
}

test::run_result replay(std::vector<std::string> args) {
  args.insert(args.begin(), (test::bin_dir() / "banger-replay").string());
  return test::run(args);
}

const std::vector<std::string> vms = {"a", "b", "c", "d", "e"};

} // namespace

BOOST_AUTO_TEST_SUITE(journal_fixture)

BOOST_AUTO_TEST_CASE(history_state_and_verify_print_what_the_recording_build_printed) {
  fixture_copy f;
  auto history = replay({"history", "--json", "--journal", f.db.string()});
  BOOST_TEST_REQUIRE(history.exit_code == 0, history.err);
  BOOST_TEST(history.out == slurp(fixture / "history.jsonl"));

  std::string states;
  for (const auto& vm : vms) {
    auto s = replay({"state", vm, "--journal", f.db.string()});
    BOOST_TEST_REQUIRE(s.exit_code == 0, vm + ": " + s.err);
    states += s.out;
  }
  BOOST_TEST(states == slurp(fixture / "states.txt"));

  auto verify = replay({"verify", "--journal", f.db.string()});
  BOOST_TEST(verify.exit_code == 0, verify.out + verify.err);
  BOOST_TEST(
    replace_all(verify.out, f.db.string(), (fixture / "db").string()) ==
    replace_all(slurp(fixture / "verify.txt"), "/work/main/tests/fixtures/journal-v1/db", (fixture / "db").string()));
}

BOOST_AUTO_TEST_CASE(every_recorded_command_reruns_identically) {
  fixture_copy f;
  for (const auto& vm : vms) {
    auto r = replay({"rerun", "--vm", vm, "--json", "--journal", f.db.string()});
    BOOST_TEST(r.exit_code == 0, vm + ": " + r.out + r.err);
    auto j = nlohmann::json::parse(r.out);
    BOOST_TEST(j["divergence"].is_null(), vm + ": " + r.out);
    BOOST_TEST(j["commands"].get<int>() > 0, vm);
  }
  auto slice = replay({"rerun", (fixture / "vm-a.slice").string(), "--json"});
  BOOST_TEST(slice.exit_code == 0, slice.out + slice.err);
  // The slice imports into a new journal, which then verifies.
  test::temp_dir other{"banger-fixture-import"};
  auto imported = replay({"import", (fixture / "vm-a.slice").string(), "--journal", (other.path / "j").string()});
  BOOST_TEST_REQUIRE(imported.exit_code == 0, imported.err);
  auto verify = replay({"verify", "--journal", (other.path / "j").string()});
  BOOST_TEST(verify.exit_code == 0, verify.out + verify.err);
}

BOOST_AUTO_TEST_CASE(folds_from_the_recorded_snapshots_equal_whole_folds) {
  fixture_copy f;
  auto j = journal::journal::open(f.db);
  BOOST_TEST_REQUIRE(bool(j), (j ? std::string() : j.err().message));
  std::size_t snapshots = 0;
  for (const auto& vm : vms) {
    auto stream = actors::vm_stream(vm);
    if (auto s = (*j)->get_snapshot(stream); s && *s)
      ++snapshots;
    actors::vm_state seed;
    seed.name = vm;
    auto folded = journal::fold_stream(**j, stream, seed); // from a snapshot when it can use one
    auto whole = seed;
    auto evs = (*j)->read_stream(stream);
    BOOST_TEST_REQUIRE(bool(evs));
    for (const auto& e : *evs)
      whole = actors::apply(std::move(whole), e);
    BOOST_TEST(snapshot_encode(folded) == snapshot_encode(whole), vm);
    BOOST_TEST(folded.stream_version == evs->back().version, vm);
  }
  BOOST_TEST(snapshots > 0u); // the recording left snapshots behind: they are exercised above
}

BOOST_AUTO_TEST_CASE(a_daemon_starts_on_the_recorded_journal_and_shows_its_vms) {
  test::sandbox sb;
  fs::create_directories(sb.state());
  fs::copy(fixture / "db", sb.state() / "journal", fs::copy_options::recursive);
  auto list = sb.banger({"vm", "list", "-a", "--json"});
  BOOST_TEST_REQUIRE(list.exit_code == 0, list.err);
  auto items = nlohmann::json::parse(list.out);
  BOOST_TEST_REQUIRE(items.size() == 1u, list.out); // a, b, d and e were deleted
  BOOST_TEST(items[0]["name"] == "c");
  BOOST_TEST(items[0]["state"] == "stopped");
  BOOST_TEST(items[0]["last_error"].get<std::string>().find("VMM exited unexpectedly") != std::string::npos);
  BOOST_TEST(items[0]["resources"].size() == 3u); // overlay, work disk and lease are kept while stopped
  auto show = sb.banger({"vm", "show", "a"});
  BOOST_TEST(show.exit_code != 0);
  BOOST_TEST(show.err.find("no VM named a") != std::string::npos, show.err);
}

BOOST_AUTO_TEST_SUITE_END()
