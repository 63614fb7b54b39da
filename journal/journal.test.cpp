// Tests of the RocksDB journal: appends and optimistic concurrency, group commit under
// concurrent appenders, reads, subscriptions across catch-up and live delivery, snapshots,
// open-time refusals, and values planted straight into RocksDB (garbage, unknown kinds).
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "journal/journal.hpp"
#include "journal/test_events.hpp"
#include "tests/support/proc.hpp"
#include "tests/support/raw_journal.hpp"

namespace banger::journal {

namespace {

using namespace std::chrono_literals;

using banger::test::temp_dir;

std::unique_ptr<journal> open_ok(const std::filesystem::path& dir, options opts = {}) {
  auto j = journal::open(dir, std::move(opts));
  BOOST_TEST_REQUIRE(j.has_value(), (j ? std::string() : j.err().message));
  return std::move(*j);
}

event note_event(std::string text, std::string op = "op-000001") { return event{std::move(op), note{std::move(text)}}; }

append_request req(std::string stream, std::uint64_t expected, std::vector<std::string> texts) {
  append_request r{std::move(stream), expected, {}};
  for (auto& t : texts)
    r.events.push_back(note_event(t));
  return r;
}

std::string text_of(const stored_event& e) { return std::get<note>(e.body).text; }

using banger::test::be64;
using raw_db = banger::test::raw_journal;

/// Collects what a subscription delivers and lets the test wait for a count.
struct collector {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<stored_event> got;

  bool on_event(const stored_event& e) {
    std::lock_guard lk(mu);
    got.push_back(e);
    cv.notify_all();
    return true;
  }
  bool wait_for_seq(std::uint64_t seq, std::chrono::milliseconds timeout = 20s) {
    std::unique_lock lk(mu);
    return cv.wait_for(lk, timeout, [&] { return !got.empty() && got.back().seq >= seq; });
  }
  std::vector<std::uint64_t> seqs() {
    std::lock_guard lk(mu);
    std::vector<std::uint64_t> out;
    for (auto& e : got)
      out.push_back(e.seq);
    return out;
  }
};

std::vector<std::uint64_t> range(std::uint64_t from, std::uint64_t to) {
  std::vector<std::uint64_t> out;
  for (auto s = from; s <= to; ++s)
    out.push_back(s);
  return out;
}

} // namespace

BOOST_AUTO_TEST_SUITE(journal_store)

BOOST_AUTO_TEST_CASE(append_then_read_back_and_reopen) {
  temp_dir d;
  {
    auto j = open_ok(d.path, options{false, [] { return std::int64_t{1234}; }});
    BOOST_TEST(j->last_seq() == 0u);
    auto r = j->append(req("vm/a", 0, {"a1", "a2", "a3"}));
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST(r->first_seq == 1u);
    BOOST_TEST(r->last_seq == 3u);
    BOOST_TEST(r->stream_version == 3u);
    auto r2 = j->append(req("daemon", 0, {"d1"}));
    BOOST_TEST_REQUIRE(r2.has_value());
    BOOST_TEST(r2->first_seq == 4u);
    BOOST_TEST(r2->stream_version == 1u);
    BOOST_TEST(j->last_seq() == 4u);

    auto all = j->read_all(1);
    BOOST_TEST_REQUIRE(all.has_value());
    BOOST_TEST(all->events.size() == 4u);
    BOOST_TEST(all->next_seq == 5u);
    BOOST_TEST(text_of(all->events[2]) == "a3");
    BOOST_TEST(all->events[2].version == 3u);
    BOOST_TEST(all->events[3].stream == "daemon");
    BOOST_TEST(all->events[0].wall_time_ns == 1234); // the injected clock
    BOOST_TEST(all->events[0].op_id == "op-000001");
  }
  auto j = open_ok(d.path);
  BOOST_TEST(j->last_seq() == 4u);
  BOOST_TEST(*j->stream_version("vm/a") == 3u); // loaded from disk, not from a cache
  BOOST_TEST(*j->stream_version("nope") == 0u);
  auto s = j->streams();
  BOOST_TEST_REQUIRE(s.has_value());
  BOOST_TEST((*s == std::vector<std::string>{"daemon", "vm/a"}));
  auto stream = j->read_stream("vm/a", 2);
  BOOST_TEST_REQUIRE(stream.has_value());
  BOOST_TEST(stream->size() == 2u);
  BOOST_TEST(text_of((*stream)[0]) == "a2");
  BOOST_TEST((*stream)[0].seq == 2u);
  BOOST_TEST(j->read_stream("vm/a", 1, 1)->size() == 1u);
  BOOST_TEST(j->read_stream("vm/a", 4)->empty());
  // After reopening, the version check still sees the old events.
  auto again = j->append(req("vm/a", 0, {"dup"}));
  BOOST_TEST_REQUIRE(!again.has_value());
  BOOST_TEST((again.err().code == errc::conflict));
  BOOST_TEST(j->append(req("vm/a", 3, {"a4"}))->first_seq == 5u);
}

BOOST_AUTO_TEST_CASE(read_all_limits_and_continues) {
  temp_dir d;
  auto j = open_ok(d.path);
  for (int i = 0; i < 5; ++i)
    BOOST_TEST_REQUIRE(j->append(req("s", any_version, {"e" + std::to_string(i)})).has_value());
  auto first = j->read_all(0, 2); // 0 reads from the start
  BOOST_TEST_REQUIRE(first.has_value());
  BOOST_TEST(first->events.size() == 2u);
  BOOST_TEST(first->next_seq == 3u);
  auto rest = j->read_all(first->next_seq);
  BOOST_TEST(rest->events.size() == 3u);
  BOOST_TEST(rest->events.front().seq == 3u);
  BOOST_TEST(rest->next_seq == 6u);
  auto none = j->read_all(6);
  BOOST_TEST(none->events.empty());
  BOOST_TEST(none->next_seq == 6u);
  auto raw = j->read_raw(4);
  BOOST_TEST_REQUIRE(raw.has_value());
  BOOST_TEST(raw->size() == 2u);
  BOOST_TEST((*raw)[0].seq == 4u);
  BOOST_TEST(text_of(*decode(4, (*raw)[0].bytes)) == "e3");
}

BOOST_AUTO_TEST_CASE(stale_expected_version_is_a_conflict_that_writes_nothing) {
  temp_dir d;
  auto j = open_ok(d.path);
  BOOST_TEST_REQUIRE(j->append(req("vm/a", 0, {"1", "2", "3", "4", "5"})).has_value());
  auto r = j->append(append_request{"vm/a", 4, {note_event("late", "op-abc123")}});
  BOOST_TEST_REQUIRE(!r.has_value());
  BOOST_TEST((r.err().code == errc::conflict));
  BOOST_TEST(r.err().message.rfind(R"(journal: stream "vm/a" is at version 5, expected 4)", 0) == 0, r.err().message);
  BOOST_TEST(r.err().op_id == "op-abc123");
  BOOST_TEST(j->last_seq() == 5u);
  BOOST_TEST(*j->stream_version("vm/a") == 5u);
  auto ahead = j->append(req("vm/a", 9, {"x"}));
  BOOST_TEST((ahead.err().code == errc::conflict));
  auto any = j->append(req("vm/a", any_version, {"6"}));
  BOOST_TEST_REQUIRE(any.has_value());
  BOOST_TEST(any->stream_version == 6u);
  BOOST_TEST(any->first_seq == 6u);
}

BOOST_AUTO_TEST_CASE(one_batch_sees_its_own_tentative_versions) {
  temp_dir d;
  auto j = open_ok(d.path);
  std::vector<append_request> batch;
  batch.push_back(req("a", 0, {"a1", "a2"}));
  batch.push_back(req("a", 2, {"a3"}));    // sees the request above
  batch.push_back(req("b", 5, {"never"})); // conflict: b is new
  batch.push_back(req("a", 2, {"stale"})); // conflict: a is at 3 by now
  batch.push_back(req("c", any_version, {"c1"}));
  auto rs = j->append_batch(std::move(batch));
  BOOST_TEST_REQUIRE(rs.size() == 5u);
  BOOST_TEST_REQUIRE(rs[0].has_value());
  BOOST_TEST(rs[0]->first_seq == 1u);
  BOOST_TEST(rs[0]->last_seq == 2u);
  BOOST_TEST_REQUIRE(rs[1].has_value());
  BOOST_TEST(rs[1]->first_seq == 3u);
  BOOST_TEST(rs[1]->stream_version == 3u);
  BOOST_TEST((rs[2].err().code == errc::conflict));
  BOOST_TEST(rs[2].err().message.rfind(R"(journal: stream "b" is at version 0, expected 5)", 0) == 0);
  BOOST_TEST(rs[3].err().message.rfind(R"(journal: stream "a" is at version 3, expected 2)", 0) == 0);
  BOOST_TEST_REQUIRE(rs[4].has_value());
  BOOST_TEST(rs[4]->first_seq == 4u); // gapless: the conflicts took no seqs
  BOOST_TEST(j->last_seq() == 4u);
  BOOST_TEST(*j->stream_version("b") == 0u);
  auto all = j->read_all(1);
  std::vector<std::string> texts;
  for (auto& e : all->events)
    texts.push_back(text_of(e));
  BOOST_TEST((texts == std::vector<std::string>{"a1", "a2", "a3", "c1"}));
}

BOOST_AUTO_TEST_CASE(malformed_requests_are_refused) {
  temp_dir d;
  auto j = open_ok(d.path);
  BOOST_TEST((j->append(append_request{"vm/a", 0, {}}).err().code == errc::bad_request));
  BOOST_TEST((j->append(req("", 0, {"x"})).err().code == errc::bad_request));
  BOOST_TEST((j->append(req(std::string("a\0b", 3), 0, {"x"})).err().code == errc::bad_request));
  BOOST_TEST((j->append(append_request{"vm/a", 0, {event{"", unknown_event{9}}}}).err().code == errc::bad_request));
  BOOST_TEST(j->last_seq() == 0u);
  BOOST_TEST(j->append_batch({}).empty());
}

BOOST_AUTO_TEST_CASE(given_wall_times_are_kept_and_a_wrong_count_writes_nothing) {
  temp_dir d;
  auto j = open_ok(d.path);
  auto r = req("vm/a", 0, {"1", "2"});
  r.wall_times_ns = {1'000'000'000, 2'000'000'005};
  BOOST_TEST_REQUIRE(j->append(r).has_value());
  auto mixed = req("vm/a", 2, {"3"}); // none given: the journal's clock
  BOOST_TEST_REQUIRE(j->append(mixed).has_value());
  auto evs = j->read_stream("vm/a");
  BOOST_TEST_REQUIRE(evs->size() == 3u);
  BOOST_TEST((*evs)[0].wall_time_ns == 1'000'000'000);
  BOOST_TEST((*evs)[1].wall_time_ns == 2'000'000'005);
  BOOST_TEST((*evs)[2].wall_time_ns > 2'000'000'005);
  auto bad = req("vm/a", 3, {"4", "5"});
  bad.wall_times_ns = {7};
  auto refused = j->append(bad);
  BOOST_TEST_REQUIRE(!refused.has_value());
  BOOST_TEST((refused.err().code == errc::bad_request));
  BOOST_TEST(refused.err().message.find("1 wall times for 2 events") != std::string::npos, refused.err().message);
  BOOST_TEST(j->last_seq() == 3u);
}

BOOST_AUTO_TEST_CASE(concurrent_appenders_lose_and_duplicate_nothing) {
  temp_dir d;
  auto j = open_ok(d.path);
  constexpr int threads = 8, per_thread = 60;
  struct done_append {
    std::string stream;
    append_result r;
    std::vector<std::string> texts;
  };
  std::mutex mu;
  std::vector<done_append> done;
  std::atomic<int> conflicts{0};
  std::vector<std::string> failures; // Boost.Test asserts only on the main thread
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      // Threads 0-3 own a stream each; threads 4-7 share one and race on its version.
      bool shared = t >= 4;
      std::string stream = shared ? "shared" : "own/" + std::to_string(t);
      // Shared appenders start from a stale 0 on purpose: all but the first must conflict.
      std::uint64_t version = 0;
      for (int k = 0; k < per_thread; ++k) {
        std::vector<std::string> texts;
        for (int i = 0; i <= k % 3; ++i)
          texts.push_back("t=" + std::to_string(t) + " k=" + std::to_string(k) + " i=" + std::to_string(i));
        for (;;) {
          auto r = j->append(req(stream, version, texts));
          if (r) {
            version = r->stream_version;
            std::lock_guard lk(mu);
            done.push_back({stream, *r, texts});
            break;
          }
          if (r.err().code != errc::conflict || !shared) { // nobody else writes an owned stream
            std::lock_guard lk(mu);
            failures.push_back(r.err().message);
            return;
          }
          ++conflicts;
          version = *j->stream_version(stream);
        }
      }
    });
  }
  for (auto& t : ts)
    t.join();
  BOOST_TEST_REQUIRE(failures.empty(), (failures.empty() ? std::string() : failures.front()));
  BOOST_TEST_MESSAGE("conflicts reported and retried: " << conflicts.load());
  BOOST_TEST(conflicts.load() >= 3);
  BOOST_TEST_REQUIRE(done.size() == std::size_t{threads * per_thread});

  // The acknowledged ranges tile 1..last_seq exactly.
  std::sort(done.begin(), done.end(), [](auto& a, auto& b) { return a.r.first_seq < b.r.first_seq; });
  std::uint64_t next = 1;
  for (auto& a : done) {
    BOOST_TEST_REQUIRE(a.r.first_seq == next);
    BOOST_TEST_REQUIRE(a.r.last_seq == a.r.first_seq + a.texts.size() - 1);
    next = a.r.last_seq + 1;
  }
  BOOST_TEST(j->last_seq() == next - 1);

  // What was read matches what was acknowledged, and every stream's versions are gapless.
  auto all = j->read_all(1);
  BOOST_TEST_REQUIRE(all.has_value());
  BOOST_TEST_REQUIRE(all->events.size() == next - 1);
  std::map<std::string, std::uint64_t> versions;
  for (std::size_t i = 0; i < all->events.size(); ++i) {
    auto& e = all->events[i];
    BOOST_TEST_REQUIRE(e.seq == i + 1);
    BOOST_TEST_REQUIRE(e.version == ++versions[e.stream]);
  }
  for (auto& a : done)
    for (std::size_t i = 0; i < a.texts.size(); ++i) {
      auto& e = all->events[a.r.first_seq - 1 + i];
      BOOST_TEST_REQUIRE(e.stream == a.stream);
      BOOST_TEST_REQUIRE(text_of(e) == a.texts[i]);
    }
  for (auto& [stream, v] : versions) {
    BOOST_TEST(*j->stream_version(stream) == v);
    BOOST_TEST(j->read_stream(stream)->size() == v);
  }
  BOOST_TEST(versions["shared"] == 4u * (per_thread / 3) * (1 + 2 + 3));
}

BOOST_AUTO_TEST_CASE(subscription_hands_over_from_catch_up_to_live_without_gap_or_duplicate) {
  temp_dir d;
  auto j = open_ok(d.path);
  for (int i = 0; i < 50; ++i) // a backlog bigger than one read chunk
    BOOST_TEST_REQUIRE(j->append(req("pre", any_version, std::vector<std::string>(40, "backlog"))).has_value());
  std::mutex listener_mu;
  std::vector<std::uint64_t> committed;
  j->set_commit_listener([&](std::uint64_t last) {
    std::lock_guard lk(listener_mu);
    committed.push_back(last);
  });

  collector from_start, from_middle;
  auto s1 = j->subscribe(1, [&](const stored_event& e) { return from_start.on_event(e); });
  std::atomic<int> failed_appends{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&, t] {
      for (int k = 0; k < 150; ++k)
        if (!j->append(req("live/" + std::to_string(t), any_version, {"x", "y"})))
          ++failed_appends;
    });
  std::this_thread::sleep_for(5ms);
  auto s2 = j->subscribe(1000, [&](const stored_event& e) { return from_middle.on_event(e); });
  for (auto& t : ts)
    t.join();
  BOOST_TEST_REQUIRE(failed_appends.load() == 0);
  auto last = j->last_seq();
  BOOST_TEST_REQUIRE(last == 2000u + 4 * 150 * 2);
  BOOST_TEST_REQUIRE(from_start.wait_for_seq(last));
  BOOST_TEST_REQUIRE(from_middle.wait_for_seq(last));
  BOOST_TEST((from_start.seqs() == range(1, last)));
  BOOST_TEST((from_middle.seqs() == range(1000, last)));
  for (int i = 0; i < 400 && s1.position() != last + 1; ++i) // it moves just after the callback returns
    std::this_thread::sleep_for(5ms);
  BOOST_TEST(s1.position() == last + 1);
  BOOST_TEST(!s1.failure().has_value());

  std::lock_guard lk(listener_mu);
  BOOST_TEST_REQUIRE(!committed.empty());
  BOOST_TEST(std::is_sorted(committed.begin(), committed.end()));
  BOOST_TEST((std::adjacent_find(committed.begin(), committed.end()) == committed.end()));
  BOOST_TEST(committed.back() == last);
}

BOOST_AUTO_TEST_CASE(subscription_ends_when_the_callback_says_so_and_on_cancel) {
  temp_dir d;
  auto j = open_ok(d.path);
  for (int i = 0; i < 20; ++i)
    BOOST_TEST_REQUIRE(j->append(req("s", any_version, {"e"})).has_value());
  std::atomic<int> seen{0};
  auto s = j->subscribe(3, [&](const stored_event&) { return ++seen < 5; });
  for (int i = 0; i < 200 && s.position() != 8; ++i)
    std::this_thread::sleep_for(5ms);
  BOOST_TEST(s.position() == 8u); // delivered 3..7, the fifth returned false
  BOOST_TEST_REQUIRE(j->append(req("s", any_version, {"more"})).has_value());
  std::this_thread::sleep_for(20ms);
  BOOST_TEST(seen.load() == 5);

  collector c;
  auto live = j->subscribe(1, [&](const stored_event& e) { return c.on_event(e); });
  BOOST_TEST_REQUIRE(c.wait_for_seq(21));
  live.cancel(); // joins a thread that is waiting for commits
  BOOST_TEST_REQUIRE(j->append(req("s", any_version, {"after cancel"})).has_value());
  std::this_thread::sleep_for(20ms);
  BOOST_TEST(c.seqs().size() == 21u);
  live.cancel(); // idempotent
}

BOOST_AUTO_TEST_CASE(closing_the_journal_stops_its_subscriptions) {
  temp_dir d;
  auto j = open_ok(d.path);
  collector c;
  auto s = j->subscribe(1, [&](const stored_event& e) { return c.on_event(e); });
  BOOST_TEST_REQUIRE(j->append(req("s", any_version, {"e"})).has_value());
  BOOST_TEST_REQUIRE(c.wait_for_seq(1));
  j.reset(); // must not hang on the waiting subscription thread
  s.cancel();
  BOOST_TEST(c.seqs().size() == 1u);
}

BOOST_AUTO_TEST_CASE(wait_beyond_wakes_on_commit_and_times_out_otherwise) {
  temp_dir d;
  auto j = open_ok(d.path);
  BOOST_TEST(!j->wait_beyond(0, 20ms));
  bool appended = false;
  std::thread t([&] {
    std::this_thread::sleep_for(30ms);
    appended = j->append(req("s", any_version, {"e"})).has_value();
  });
  BOOST_TEST(j->wait_beyond(0, 10s));
  t.join();
  BOOST_TEST_REQUIRE(appended);
  BOOST_TEST(!j->wait_beyond(1, 10ms));
}

BOOST_AUTO_TEST_CASE(snapshots_are_stored_per_stream) {
  temp_dir d;
  {
    auto j = open_ok(d.path);
    BOOST_TEST_REQUIRE(j->append(req("vm/a", 0, {"1", "2"})).has_value());
    BOOST_TEST(!j->get_snapshot("vm/a")->has_value());
    auto ahead = j->put_snapshot("vm/a", snapshot{3, "too new"});
    BOOST_TEST_REQUIRE(!ahead.has_value());
    BOOST_TEST((ahead.err().code == errc::bad_request));
    BOOST_TEST_REQUIRE(j->put_snapshot("vm/a", snapshot{2, std::string("s\0t", 3)}).has_value());
    BOOST_TEST_REQUIRE(j->put_snapshot("vm/a", snapshot{1, "older"}).has_value()); // replaces
  }
  auto j = open_ok(d.path);
  auto s = j->get_snapshot("vm/a");
  BOOST_TEST_REQUIRE(s.has_value());
  BOOST_TEST_REQUIRE(s->has_value());
  BOOST_TEST((*s)->version == 1u);
  BOOST_TEST((*s)->state == "older");
  BOOST_TEST(!j->get_snapshot("vm/b")->has_value());
}

BOOST_AUTO_TEST_CASE(read_only_open_works_beside_a_writer_and_a_second_writer_is_refused) {
  temp_dir d;
  auto w = open_ok(d.path);
  BOOST_TEST_REQUIRE(w->append(req("vm/a", 0, {"1", "2"})).has_value());

  auto second = journal::open(d.path);
  BOOST_TEST_REQUIRE(!second.has_value());
  BOOST_TEST((second.err().code == errc::unavailable));
  BOOST_TEST(second.err().message.find("is in use by another process (is bangerd already running?)") !=
               std::string::npos,
             second.err().message);
  BOOST_TEST(second.err().message.find(d.path.string()) != std::string::npos);

  auto r = open_ok(d.path, options{true, {}});
  BOOST_TEST(r->last_seq() == 2u);
  BOOST_TEST(r->read_all(1)->events.size() == 2u);
  BOOST_TEST(*r->stream_version("vm/a") == 2u);
  auto refused = r->append(req("vm/a", 2, {"3"}));
  BOOST_TEST_REQUIRE(!refused.has_value());
  BOOST_TEST(refused.err().message.find("read-only") != std::string::npos);
  BOOST_TEST(!r->put_snapshot("vm/a", snapshot{1, "x"}).has_value());

  // The writer carries on; the read-only view is a point in time.
  BOOST_TEST_REQUIRE(w->append(req("vm/a", 2, {"3"})).has_value());
  BOOST_TEST(r->read_all(1)->events.size() == 2u);
  BOOST_TEST(open_ok(d.path, options{true, {}})->last_seq() == 3u);
}

BOOST_AUTO_TEST_CASE(read_only_open_of_a_missing_journal_is_not_found) {
  temp_dir d;
  auto r = journal::open(d.path / "nothing-here", options{true, {}});
  BOOST_TEST_REQUIRE(!r.has_value());
  BOOST_TEST((r.err().code == errc::not_found));
  BOOST_TEST(!std::filesystem::exists(d.path / "nothing-here"));
}

BOOST_AUTO_TEST_CASE(newer_schema_version_is_refused) {
  temp_dir d;
  open_ok(d.path).reset();
  {
    raw_db raw(d.path);
    raw.put("meta", "schema_version", std::string("\0\0\0\x63", 4)); // 99
  }
  for (bool read_only : {false, true}) {
    auto j = journal::open(d.path, options{read_only, {}});
    BOOST_TEST_REQUIRE(!j.has_value());
    BOOST_TEST(j.err().message == "journal at " + d.path.string() +
                                    " was written by schema version 99; this banger understands up to 1 — upgrade "
                                    "banger or use a newer banger-replay");
  }
}

BOOST_AUTO_TEST_CASE(schema_version_is_written_on_create) {
  temp_dir d;
  open_ok(d.path).reset();
  raw_db raw(d.path);
  auto v = raw.get("meta", "schema_version");
  BOOST_TEST_REQUIRE(v.has_value());
  BOOST_TEST(*v == std::string("\0\0\0\x01", 4));
}

BOOST_AUTO_TEST_CASE(garbage_values_are_reported_with_their_seq) {
  temp_dir d;
  {
    auto j = open_ok(d.path);
    BOOST_TEST_REQUIRE(j->append(req("vm/a", 0, {"1", "2"})).has_value());
  }
  {
    raw_db raw(d.path);
    raw.put_event(3, "vm/a", 3, "this is not a capnp message!!!!!"); // 32 bytes
  }
  auto j = open_ok(d.path);
  BOOST_TEST(j->last_seq() == 3u);
  auto all = j->read_all(1);
  BOOST_TEST_REQUIRE(!all.has_value());
  BOOST_TEST(all.err().message.find("seq 3") != std::string::npos, all.err().message);
  BOOST_TEST(all.err().message.find(d.path.string()) != std::string::npos, all.err().message);
  BOOST_TEST(j->read_all(1, 2)->events.size() == 2u); // what precedes it still reads
  BOOST_TEST(j->read_raw(3)->front().bytes == "this is not a capnp message!!!!!");
  auto stream = j->read_stream("vm/a");
  BOOST_TEST_REQUIRE(!stream.has_value());
  BOOST_TEST(stream.err().message.find("seq 3") != std::string::npos, stream.err().message);

  collector c;
  auto s = j->subscribe(1, [&](const stored_event& e) { return c.on_event(e); });
  std::optional<error> failed;
  for (int i = 0; i < 400 && !(failed = s.failure()); ++i)
    std::this_thread::sleep_for(5ms);
  BOOST_TEST_REQUIRE(failed.has_value());
  BOOST_TEST(failed->message.find("seq 3") != std::string::npos, failed->message);
  BOOST_TEST((c.seqs() == range(1, 2)));
  BOOST_TEST(s.position() == 3u);
}

BOOST_AUTO_TEST_CASE(a_gap_in_seqs_is_reported) {
  temp_dir d;
  {
    auto j = open_ok(d.path);
    BOOST_TEST_REQUIRE(j->append(req("vm/a", 0, {"1"})).has_value());
  }
  {
    raw_db raw(d.path);
    raw.put_event(3, "vm/a", 2, encode(stored_event{3, "vm/a", 2, 0, "", note{"after a hole"}}));
  }
  auto j = open_ok(d.path);
  auto all = j->read_all(1);
  BOOST_TEST_REQUIRE(!all.has_value());
  BOOST_TEST(all.err().message.find("seq 2 is missing") != std::string::npos, all.err().message);
}

BOOST_AUTO_TEST_CASE(unknown_kinds_are_skipped_by_readers_and_subscriptions) {
  temp_dir d;
  {
    auto j = open_ok(d.path);
    BOOST_TEST_REQUIRE(j->append(req("vm/a", 0, {"1", "2"})).has_value());
  }
  {
    raw_db raw(d.path);
    raw.put_event(3, "vm/a", 3, test::event_with_tag("vm/a", 3, 500)); // from a newer banger
  }
  auto j = open_ok(d.path);
  auto after = j->append(req("vm/a", 3, {"4"})); // the unknown event still counts as a version
  BOOST_TEST_REQUIRE(after.has_value());
  BOOST_TEST(after->first_seq == 4u);

  auto all = j->read_all(1);
  BOOST_TEST_REQUIRE(all.has_value());
  std::vector<std::uint64_t> seqs;
  for (auto& e : all->events)
    seqs.push_back(e.seq);
  BOOST_TEST((seqs == std::vector<std::uint64_t>{1, 2, 4}));
  BOOST_TEST(all->next_seq == 5u);
  auto only_unknown = j->read_all(3, 1);
  BOOST_TEST(only_unknown->events.empty());
  BOOST_TEST(only_unknown->next_seq == 4u); // a caller still makes progress
  BOOST_TEST(j->read_stream("vm/a")->size() == 3u);
  BOOST_TEST(j->read_raw(3)->size() == 2u); // raw reads keep it

  collector c;
  auto s = j->subscribe(1, [&](const stored_event& e) { return c.on_event(e); });
  BOOST_TEST_REQUIRE(c.wait_for_seq(4));
  BOOST_TEST_REQUIRE(j->append(req("vm/a", 4, {"5"})).has_value());
  BOOST_TEST_REQUIRE(c.wait_for_seq(5));
  BOOST_TEST((c.seqs() == std::vector<std::uint64_t>{1, 2, 4, 5}));
  BOOST_TEST(!s.failure().has_value());
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace banger::journal
