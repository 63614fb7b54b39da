// Crash durability of the journal: run journal_crash_child (several appending threads) on one
// journal directory, SIGKILL it at a random moment, reopen the journal and check that every
// batch the child acknowledged is wholly present, that no batch is partial, that seqs are
// gapless and that every stream's versions are gapless. 50 rounds on the same directory.
// Seed: BANGER_CRASH_SEED (printed on every run).
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>

#include "journal/journal.hpp"
#include "tests/support/proc.hpp"

#ifndef BANGER_JOURNAL_CRASH_CHILD
#error "BANGER_JOURNAL_CRASH_CHILD must name the journal_crash_child executable"
#endif

namespace banger::journal {

namespace {

using clock_type = std::chrono::steady_clock;

using banger::test::temp_dir;

struct ack {
  std::uint64_t first_seq = 0, last_seq = 0;
};

/// Runs the child, SIGKILLs it `delay` after it reports the journal open (or after it was
/// spawned, when `from_spawn`: the kill may then land inside RocksDB's recovery), and returns
/// the acknowledgements it printed.
std::map<std::string, ack> run_and_kill(const std::filesystem::path& dir, int run, std::chrono::microseconds delay,
                                        bool from_spawn) {
  int fds[2];
  BOOST_TEST_REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  pid_t pid = ::fork();
  BOOST_TEST_REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    std::string run_id = std::to_string(run);
    ::execl(BANGER_JOURNAL_CRASH_CHILD, BANGER_JOURNAL_CRASH_CHILD, dir.c_str(), run_id.c_str(), nullptr);
    ::_exit(127);
  }
  ::close(fds[1]);
  std::string out;
  char buf[65536];
  std::optional<clock_type::time_point> deadline;
  if (from_spawn)
    deadline = clock_type::now() + delay;
  auto give_up = clock_type::now() + std::chrono::seconds(20); // a child that never gets ready
  bool killed = false;
  for (;;) {
    int wait_ms = -1;
    if (!killed) {
      if (!deadline && out.find("ready\n") != std::string::npos)
        deadline = clock_type::now() + delay;
      auto until = deadline ? *deadline : give_up;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - clock_type::now()).count();
      if (left <= 0) {
        ::kill(pid, SIGKILL);
        killed = true;
      } else {
        wait_ms = static_cast<int>(left);
      }
    }
    pollfd p{fds[0], POLLIN, 0};
    int r = ::poll(&p, 1, wait_ms);
    if (r < 0 && errno == EINTR)
      continue;
    if (r == 0)
      continue;
    auto n = ::read(fds[0], buf, sizeof buf);
    if (n > 0) {
      out.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    break; // EOF: the child is gone (killed, or it died on its own)
  }
  ::close(fds[0]);
  if (!killed)
    ::kill(pid, SIGKILL);
  int status = 0;
  BOOST_TEST_REQUIRE(::waitpid(pid, &status, 0) == pid);
  BOOST_TEST_REQUIRE((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL),
                     "journal_crash_child died on its own (status " << status << "); see its stderr above");

  std::map<std::string, ack> acks;
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    if (lines.eof())
      break; // a line cut short by the kill is not an acknowledgement
    if (line == "ready")
      continue;
    std::istringstream f(line);
    std::string id;
    ack a;
    BOOST_TEST_REQUIRE(static_cast<bool>(f >> id >> a.first_seq >> a.last_seq), "bad child line: " << line);
    acks[id] = a;
  }
  return acks;
}

struct batch_seen {
  std::string stream;
  std::uint64_t first_seq = 0, last_seq = 0, first_version = 0;
  std::size_t n = 0, got = 0;
};

/// Parses "batch=<id> i=<k>/<n>".
bool parse_note(const std::string& text, std::string& id, std::size_t& i, std::size_t& n) {
  auto sp = text.find(' ');
  auto slash = text.find('/');
  if (text.rfind("batch=", 0) != 0 || sp == std::string::npos || slash == std::string::npos ||
      text.compare(sp, 3, " i=") != 0)
    return false;
  id = text.substr(6, sp - 6);
  i = std::stoul(text.substr(sp + 3, slash - sp - 3));
  n = std::stoul(text.substr(slash + 1));
  return true;
}

/// Checks the journal after a crash; returns every batch it holds.
std::map<std::string, batch_seen> verify(const std::filesystem::path& dir) {
  auto j = journal::open(dir);
  BOOST_TEST_REQUIRE(j.has_value(), (j ? std::string() : j.err().message));
  auto all = (*j)->read_all(1);
  BOOST_TEST_REQUIRE(all.has_value(), (all ? std::string() : all.err().message));
  BOOST_TEST_REQUIRE(all->events.size() == (*j)->last_seq());
  std::map<std::string, batch_seen> batches;
  std::map<std::string, std::uint64_t> versions;
  batch_seen* open_batch = nullptr;
  std::string open_id;
  for (std::size_t k = 0; k < all->events.size(); ++k) {
    auto& e = all->events[k];
    BOOST_TEST_REQUIRE(e.seq == k + 1, "seq gap: position " << k << " holds seq " << e.seq);
    BOOST_TEST_REQUIRE(e.version == ++versions[e.stream], "version gap in " << e.stream << " at seq " << e.seq);
    std::string id;
    std::size_t i = 0, n = 0;
    BOOST_TEST_REQUIRE(parse_note(std::get<note>(e.body).text, id, i, n), std::get<note>(e.body).text);
    if (i == 0) {
      BOOST_TEST_REQUIRE((open_batch == nullptr),
                         "batch " << open_id << " is partial: seq " << e.seq << " starts another");
      BOOST_TEST_REQUIRE(batches.count(id) == 0u, "batch " << id << " appears twice");
      open_batch = &batches[id];
      *open_batch = batch_seen{e.stream, e.seq, e.seq, e.version, n, 0};
      open_id = id;
    }
    BOOST_TEST_REQUIRE((open_batch != nullptr && id == open_id && open_batch->got == i && open_batch->n == n &&
                        open_batch->stream == e.stream),
                       "seq " << e.seq << " (batch " << id << " event " << i << ") does not continue its batch");
    open_batch->got++;
    open_batch->last_seq = e.seq;
    if (open_batch->got == n)
      open_batch = nullptr;
  }
  BOOST_TEST_REQUIRE((open_batch == nullptr), "the last batch, " << open_id << ", is partial");
  for (auto& [stream, v] : versions) {
    auto sv = (*j)->stream_version(stream);
    BOOST_TEST_REQUIRE((sv.has_value() && *sv == v), "stream " << stream << " version");
  }
  return batches;
}

} // namespace

BOOST_AUTO_TEST_CASE(acknowledged_batches_survive_sigkill_and_no_batch_is_partial) {
  std::uint64_t seed = std::random_device{}();
  if (const char* s = std::getenv("BANGER_CRASH_SEED"))
    seed = std::stoull(s);
  BOOST_TEST_MESSAGE("BANGER_CRASH_SEED=" << seed);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> delay_us(2'000, 100'000);
  std::uniform_int_distribution<int> early_us(500, 30'000);

  temp_dir d;
  journal::open(d.path).value().reset(); // created here, so a kill never lands in creation

  std::map<std::string, ack> acked;
  std::size_t runs_with_acks = 0;
  for (int run = 0; run < 50; ++run) {
    bool from_spawn = run % 5 == 4; // one run in five may die while opening the journal
    auto delay = std::chrono::microseconds(from_spawn ? early_us(rng) : delay_us(rng));
    auto acks = run_and_kill(d.path, run, delay, from_spawn);
    runs_with_acks += acks.empty() ? 0 : 1;
    acked.insert(acks.begin(), acks.end());
    auto batches = verify(d.path);
    for (auto& [id, a] : acked) {
      auto it = batches.find(id);
      BOOST_TEST_REQUIRE((it != batches.end()), "acknowledged batch " << id << " is missing after run " << run);
      BOOST_TEST_REQUIRE((it->second.first_seq == a.first_seq && it->second.last_seq == a.last_seq),
                         "batch " << id << " moved");
    }
  }
  BOOST_TEST_MESSAGE(acked.size() << " acknowledged batches checked; " << runs_with_acks
                                  << " of 50 runs were killed after acknowledging");
  BOOST_TEST(runs_with_acks >= 30u); // the kills land mid-append, not only during start-up
}

} // namespace banger::journal
