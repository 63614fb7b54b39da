// journal_crash_child DIR RUN: the process journal_crash_test SIGKILLs. Appends forever from
// several threads, multi-event batches whose notes read "batch=<id> i=<k>/<n>", and after each
// append returns prints "<id> <first_seq> <last_seq>" on stdout with one write(2), so every
// line the parent reads names a batch the journal acknowledged as durable. It prints "ready"
// once the journal is open.
// Threads 0-3 append to their own stream "crash/<t>" with exact expected versions; threads
// 4-5 share "crash/shared" with any_version, so batches mix streams.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fmt/format.h>
#include <string>
#include <thread>
#include <vector>

#include "journal/journal.hpp"

namespace {

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "journal_crash_child: %s\n", what.c_str());
  std::fflush(stderr);
  std::_Exit(2);
}

void write_line(const std::string& line) {
  std::size_t done = 0;
  while (done < line.size()) {
    auto n = ::write(STDOUT_FILENO, line.data() + done, line.size() - done);
    if (n < 0)
      die("write to stdout failed");
    done += static_cast<std::size_t>(n);
  }
}

void append_forever(banger::journal::journal& j, const std::string& run, int t) {
  using namespace banger::journal;
  bool shared = t >= 4;
  std::string stream = shared ? "crash/shared" : fmt::format("crash/{}", t);
  std::uint64_t version = any_version;
  if (!shared) {
    auto v = j.stream_version(stream);
    if (!v)
      die(v.err().message);
    version = *v;
  }
  for (std::uint64_t k = 0;; ++k) {
    std::string id = fmt::format("{}.{}.{}", run, t, k);
    std::size_t n = 1 + (k + static_cast<std::uint64_t>(t)) % 5;
    append_request req{stream, version, {}};
    for (std::size_t i = 0; i < n; ++i)
      req.events.push_back(event{"op-c0ffee", note{fmt::format("batch={} i={}/{}", id, i, n)}});
    auto r = j.append(std::move(req));
    if (!r)
      die(r.err().message);
    if (!shared)
      version = r->stream_version;
    write_line(fmt::format("{} {} {}\n", id, r->first_seq, r->last_seq));
  }
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 3)
    die("usage: journal_crash_child DIR RUN");
  auto j = banger::journal::journal::open(argv[1]);
  if (!j)
    die(j.err().message);
  write_line("ready\n"); // the parent times its kill from here
  std::string run = argv[2];
  std::vector<std::thread> ts;
  for (int t = 0; t < 6; ++t)
    ts.emplace_back([&, t] { append_forever(**j, run, t); });
  for (auto& t : ts)
    t.join(); // never: the parent kills us
}
