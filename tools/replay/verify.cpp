// See verify.hpp. One pass over the events (bounded batches), then one read per stream to
// cross-check the streams index, and the VM streams' audit on those reads.
#include "tools/replay/verify.hpp"

#include <map>

#include <fmt/core.h>

#include "actors/vm/vm.hpp"
#include "journal/journal.hpp"
#include "tools/replay/rerun.hpp"

namespace banger::replay {

namespace {

struct stream_seen {
  std::uint64_t last_version = 0;
  std::vector<std::uint64_t> seqs; // seqs[v-1] = seq of version v
};

} // namespace

std::vector<std::string> audit_vm_stream(std::string_view stream, const std::vector<journal::stored_event>& events,
                                         std::uint64_t* commands) {
  std::vector<std::string> out;
  actors::vm_state s;
  s.name = std::string(stream.substr(stream.rfind("vm/", 0) == 0 ? 3 : 0));
  bool commands_seen = false;
  for (const auto& e : events) {
    bool is_command = std::holds_alternative<journal::vm_command>(e.body);
    if (auto why = actors::vm_grammar_violation(s, e, commands_seen || is_command); !why.empty())
      out.push_back(fmt::format("stream \"{}\": seq {} (version {}): {}", stream, e.seq, e.version, why));
    commands_seen = commands_seen || is_command;
    s = actors::apply(std::move(s), e);
  }
  for (std::size_t i = 0; i < events.size(); ++i)
    if (events[i].version != i + 1)
      return out; // kinds this build does not know were skipped: their decisions cannot be re-run
  auto r = rerun(stream, events);
  if (commands)
    *commands += r.commands;
  if (r.diverged && !r.diverged->grammar)
    out.push_back(fmt::format("stream \"{}\": seq {} (version {}): the recording diverges from decide(): recorded "
                              "{}; {}",
                              stream, r.diverged->seq, r.diverged->version, r.diverged->recorded,
                              r.diverged->expected));
  return out;
}

expected<verify_report> verify(const journal::journal& j, std::size_t max_problems) {
  verify_report rep;
  auto problem = [&](std::string s) {
    if (rep.problems.size() < max_problems)
      rep.problems.push_back(std::move(s));
  };
  std::map<std::string, stream_seen> streams;
  std::uint64_t expect_seq = 1;
  for (;;) {
    auto batch = j.read_raw(expect_seq, 4096);
    if (!batch) {
      // The journal refuses to read across damage (a missing seq); report it and stop here.
      problem(batch.err().message);
      break;
    }
    if (batch->empty())
      break;
    for (const auto& raw : *batch) {
      if (raw.seq != expect_seq)
        problem(fmt::format("sequence gap: expected seq {}, found {}", expect_seq, raw.seq));
      expect_seq = raw.seq + 1;
      ++rep.events;
      auto e = journal::decode(raw.seq, raw.bytes);
      if (!e) {
        problem(e.err().message);
        continue;
      }
      if (std::holds_alternative<journal::unknown_event>(e->body))
        ++rep.unknown_kinds;
      auto& s = streams[e->stream];
      if (e->version != s.last_version + 1)
        problem(fmt::format("stream \"{}\": seq {} has version {}, expected {}", e->stream, raw.seq, e->version,
                            s.last_version + 1));
      s.last_version = e->version;
      s.seqs.push_back(raw.seq);
    }
  }
  if (rep.problems.empty() && j.last_seq() != expect_seq - 1)
    problem(fmt::format("journal reports last seq {}, but events end at {}", j.last_seq(), expect_seq - 1));

  auto index = j.streams();
  if (!index)
    return std::move(index).err();
  rep.streams = index->size();
  for (const auto& name : *index) {
    auto it = streams.find(name);
    if (it == streams.end()) {
      problem(fmt::format("stream \"{}\" is in the streams index but has no events", name));
      continue;
    }
    auto evs = j.read_stream(name);
    if (!evs) {
      problem(fmt::format("stream \"{}\": {}", name, evs.err().message));
      continue;
    }
    // read_stream skips unknown kinds, so compare by the seqs it returns.
    std::size_t vi = 0;
    for (const auto& e : *evs) {
      while (vi < it->second.seqs.size() && it->second.seqs[vi] < e.seq)
        ++vi;
      if (vi >= it->second.seqs.size() || it->second.seqs[vi] != e.seq || e.version != vi + 1)
        problem(fmt::format("stream \"{}\": index maps version {} to seq {}, which is not that event", name, e.version,
                            e.seq));
    }
    if (name.rfind("vm/", 0) == 0) {
      ++rep.vm_streams;
      for (auto& p : audit_vm_stream(name, *evs, &rep.commands))
        problem(std::move(p));
    }
    streams.erase(it);
  }
  for (const auto& [name, _] : streams)
    problem(fmt::format("stream \"{}\" has events but is missing from the streams index", name));
  return rep;
}

} // namespace banger::replay
