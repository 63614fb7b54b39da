// bench-journal: figures for the event journal, printed, never asserted (STYLE: tests never
// assert on wall time).
//   1. baseline: plain RocksDB, one synced WriteBatch per event (the event and its stream
//      index entry, encoded exactly as the journal encodes them), one thread;
//   2. journal::append with 1, 8 and 64 concurrent appenders, each appending single-event
//      requests to its own stream for --seconds; printed next to the baseline with the ratio and
//      the mean number of appends per synced batch (group commit);
//   3. replay: --events note events are written with append_batch (batches of 10 requests x
//      1,000 events, so ~100 syncs: the write phase is not what is measured), the journal is
//      reopened, and read_all is timed in chunks of 65,536 events (decoded, unknown kinds
//      skipped), as banger-replay and recovery read it.
// Usage: bench-journal [--dir DIR] [--seconds S] [--events N]. DIR (default: a fresh directory
// under $TMPDIR or /tmp) must be on the disk you want to measure: fsync on tmpfs is free.
// Single-threaded main; the appender threads are joined before each figure is printed.
#include <rocksdb/db.h>

#include <sys/vfs.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fmt/format.h>
#include <string>
#include <thread>
#include <vector>

#include "journal/journal.hpp"

namespace {

using namespace banger::journal;
using steady = std::chrono::steady_clock;

struct config {
  std::filesystem::path dir;
  double seconds = 3.0;
  std::size_t replay_events = 1'000'000;
};

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "bench-journal: %s\n", what.c_str());
  std::exit(1);
}

double since(steady::time_point t0) { return std::chrono::duration<double>(steady::now() - t0).count(); }

/// A note the size of a typical event (~100 bytes encoded).
note payload(std::size_t i) { return note{fmt::format("bench event {:08} with a little text", i)}; }

std::string be64(std::uint64_t v) {
  std::string s(8, '\0');
  for (int i = 7; i >= 0; --i, v >>= 8)
    s[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xff);
  return s;
}

/// Synced WriteBatches per second from one thread writing to plain RocksDB.
double plain_rocksdb_loop(const std::filesystem::path& dir, double seconds) {
  rocksdb::Options o;
  o.create_if_missing = true;
  o.create_missing_column_families = true;
  std::vector<rocksdb::ColumnFamilyDescriptor> descs = {
    {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()},
    {"events", rocksdb::ColumnFamilyOptions()},
    {"streams", rocksdb::ColumnFamilyOptions()},
  };
  std::vector<rocksdb::ColumnFamilyHandle*> cfs;
  rocksdb::DB* db = nullptr;
  auto s = rocksdb::DB::Open(o, dir.string(), descs, &cfs, &db);
  if (!s.ok())
    die("plain RocksDB open: " + s.ToString());
  rocksdb::WriteOptions w;
  w.sync = true;
  std::uint64_t n = 0;
  auto t0 = steady::now();
  while (since(t0) < seconds) {
    ++n;
    stored_event e{n, "bench/plain", n, 0, "op-000000", payload(n)};
    rocksdb::WriteBatch wb;
    wb.Put(cfs[1], be64(n), encode(e));
    wb.Put(cfs[2], std::string("bench/plain") + '\0' + be64(n), be64(n));
    s = db->Write(w, &wb);
    if (!s.ok())
      die("plain RocksDB write: " + s.ToString());
  }
  double rate = static_cast<double>(n) / since(t0);
  for (auto* h : cfs)
    db->DestroyColumnFamilyHandle(h);
  delete db;
  return rate;
}

struct append_figures {
  double per_second = 0;
  double per_batch = 0;
};

append_figures journal_appenders(const std::filesystem::path& dir, int appenders, double seconds) {
  auto j = journal::open(dir);
  if (!j)
    die(j.err().message);
  std::atomic<std::uint64_t> batches{0};
  (*j)->set_commit_listener([&](std::uint64_t) { ++batches; });
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> total{0};
  std::vector<std::thread> ts;
  auto t0 = steady::now();
  for (int t = 0; t < appenders; ++t)
    ts.emplace_back([&, t] {
      std::string stream = fmt::format("bench/{}", t);
      std::uint64_t version = 0, n = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        auto r = (*j)->append(append_request{stream, version, {event{"op-000000", payload(n)}}});
        if (!r)
          die(r.err().message);
        version = r->stream_version;
        ++n;
      }
      total += n;
    });
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : ts)
    t.join();
  double elapsed = since(t0);
  return {static_cast<double>(total.load()) / elapsed,
          batches.load() ? static_cast<double>(total.load()) / static_cast<double>(batches.load()) : 0.0};
}

void replay(const std::filesystem::path& dir, std::size_t events) {
  {
    auto j = journal::open(dir);
    if (!j)
      die(j.err().message);
    constexpr std::size_t per_request = 1000, per_call = 10, streams = 100;
    auto t0 = steady::now();
    std::size_t written = 0;
    std::vector<std::uint64_t> versions(streams, 0);
    while (written < events) {
      std::vector<append_request> reqs;
      for (std::size_t r = 0; r < per_call && written < events; ++r) {
        std::size_t s = (written / per_request) % streams;
        append_request req{fmt::format("replay/{}", s), versions[s], {}};
        for (std::size_t i = 0; i < per_request && written < events; ++i, ++written)
          req.events.push_back(event{"op-000000", payload(written)});
        versions[s] += req.events.size();
        reqs.push_back(std::move(req));
      }
      for (auto& r : (*j)->append_batch(std::move(reqs)))
        if (!r)
          die(r.err().message);
    }
    fmt::print("  wrote {} events with append_batch in {:.2f} s\n", written, since(t0));
  }
  auto j = journal::open(dir); // reopened: nothing is cached in the journal object
  if (!j)
    die(j.err().message);
  for (int pass = 1; pass <= 2; ++pass) {
    auto t0 = steady::now();
    std::uint64_t next = 1, n = 0, bytes = 0;
    for (;;) {
      auto r = (*j)->read_all(next, 65536);
      if (!r)
        die(r.err().message);
      if (r->events.empty())
        break;
      n += r->events.size();
      for (auto& e : r->events)
        bytes += std::get<note>(e.body).text.size();
      next = r->next_seq;
    }
    double secs = since(t0);
    if (n != events)
      die(fmt::format("replay read {} events, expected {}", n, events));
    fmt::print("  read_all pass {}: {} events in {:.2f} s = {:>10.0f} events/s decoded{}\n", pass, n, secs,
               static_cast<double>(n) / secs, bytes ? "" : " (no payload?)");
  }
  auto t0 = steady::now();
  std::uint64_t next = 1, n = 0;
  for (;;) {
    auto r = (*j)->read_raw(next, 65536);
    if (!r)
      die(r.err().message);
    if (r->empty())
      break;
    n += r->size();
    next = r->back().seq + 1;
  }
  double secs = since(t0);
  fmt::print("  read_raw:         {} events in {:.2f} s = {:>10.0f} events/s undecoded\n", n, secs,
             static_cast<double>(n) / secs);
}

config parse(int argc, char** argv) {
  config c;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc)
        die("missing value after " + a);
      return argv[++i];
    };
    if (a == "--dir")
      c.dir = value();
    else if (a == "--seconds")
      c.seconds = std::stod(value());
    else if (a == "--events")
      c.replay_events = std::stoull(value());
    else
      die("usage: bench-journal [--dir DIR] [--seconds S] [--events N]");
  }
  return c;
}

} // namespace

int main(int argc, char** argv) {
  config c = parse(argc, argv);
  bool own_dir = c.dir.empty();
  if (own_dir) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "bench-journal-XXXXXX").string();
    if (!::mkdtemp(tmpl.data()))
      die(std::string("mkdtemp: ") + std::strerror(errno));
    c.dir = tmpl;
  }
  std::filesystem::create_directories(c.dir);
  struct statfs fs {};
  if (::statfs(c.dir.c_str(), &fs) == 0 && fs.f_type == 0x01021994) // TMPFS_MAGIC
    fmt::print("warning: {} is on tmpfs, where fsync costs nothing; pass --dir on a real disk\n", c.dir.string());
  fmt::print("bench-journal in {} ({:.1f} s per figure, {} events replayed)\n\n", c.dir.string(), c.seconds,
             c.replay_events);

  fmt::print("durable appends (sync=true), one event per request, each appender on its own stream\n");
  double plain = plain_rocksdb_loop(c.dir / "plain", c.seconds);
  fmt::print("  {:<36} {:>10.0f} appends/s\n", "plain RocksDB, 1 WriteBatch/event", plain);
  for (int n : {1, 8, 64}) {
    auto f = journal_appenders(c.dir / fmt::format("appenders-{}", n), n, c.seconds);
    fmt::print("  {:<36} {:>10.0f} appends/s  {:6.2f}x plain  ({:.1f} appends per synced batch)\n",
               fmt::format("journal, {} appender{}", n, n == 1 ? "" : "s"), f.per_second, f.per_second / plain,
               f.per_batch);
  }

  fmt::print("\nreplay\n");
  replay(c.dir / "replay", c.replay_events);

  if (own_dir) {
    std::error_code ec;
    std::filesystem::remove_all(c.dir, ec);
  }
}
