// banger-replay: reads banger's event journal offline (read-only, safe beside a running
// bangerd). `history` prints events (a VM's with stage durations), `state` folds a VM's stream
// to any point, `verify` checks structure and every VM stream's grammar and decisions, `export`
// and `import` move one VM's stream as a portable slice, `rerun` re-decides a recording.
// docs/replay.md describes each. Exit status: 0 ok, 1 a problem or divergence, 2 usage.
#include <fstream>
#include <iostream>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "actors/vm/vm.hpp"
#include "common/paths.hpp"
#include "journal/journal.hpp"
#include "journal/render.hpp"
#include "tools/replay/history.hpp"
#include "tools/replay/rerun.hpp"
#include "tools/replay/slice.hpp"
#include "tools/replay/verify.hpp"

using namespace banger;

namespace {

using ojson = nlohmann::ordered_json;

std::string dump(const ojson& j) { return j.dump(-1, ' ', false, ojson::error_handler_t::replace); }

int fail(const error& e, bool json) {
  if (json)
    std::cout << dump(ojson{{"error", {{"code", std::string(to_string(e.code))}, {"message", e.message}}}}) << "\n";
  else
    std::cerr << "banger-replay: " << e.message << "\n";
  return 1;
}

constexpr const char* footer =
  R"(banger-replay reads the journal bangerd writes, without bangerd: read-only, so it is safe
beside a running daemon (import is the one writer, and refuses a journal bangerd holds). It
finds the journal as bangerd does (your XDG state dir, or /var/lib/banger with --system), or
takes --journal PATH. docs/replay.md describes every subcommand and the slice format.

Examples:
  banger-replay history                    # every event
  banger-replay history --stream daemon --json
  banger-replay history web                # VM web's timeline, with start/stop/resource durations
  banger-replay state web --at 120         # VM web as it was after seq 120
  banger-replay verify                     # exit 1 and say what is wrong, if anything
  banger-replay export web web.slice       # VM web's stream, for a bug report
  banger-replay import web.slice --journal /tmp/j --as web-copy
  banger-replay rerun web.slice            # re-decide the recording; exit 1 at the first divergence
  banger-replay rerun --vm web)";

expected<std::filesystem::path> journal_dir(const std::string& given, bool system_mode) {
  if (!given.empty())
    return std::filesystem::path(given);
  auto d = resolve_dirs(system_mode ? install_mode::system : install_mode::dev, process_env(), ::geteuid());
  if (!d)
    return d.err();
  return d->journal();
}

expected<std::unique_ptr<journal::journal>> open_read_only(const std::filesystem::path& path) {
  if (!std::filesystem::exists(path / "CURRENT"))
    return make_error(errc::not_found,
                      fmt::format("no journal at {} (has bangerd run? pass --journal PATH)", path.string()));
  journal::options opts;
  opts.read_only = true;
  return journal::journal::open(path, opts);
}

expected<std::vector<journal::stored_event>> vm_events(const journal::journal& j, const std::string& vm) {
  if (auto ok = actors::validate_vm_name(vm); !ok)
    return ok.err();
  auto evs = j.read_stream(actors::vm_stream(vm));
  if (!evs)
    return evs;
  if (evs->empty())
    return make_error(errc::not_found, fmt::format("no VM {} in the journal at {} (stream vm/{} has no events); "
                                                   "`banger-replay history` lists every stream's events",
                                                   vm, j.dir().string(), vm));
  return evs;
}

void print_event(const journal::stored_event& e, bool json) {
  std::cout << (json ? journal::to_json_line(e) : journal::to_text_line(e)) << "\n";
}

int history_of_vm(const journal::journal& j, const std::string& vm, bool json) {
  auto evs = vm_events(j, vm);
  if (!evs)
    return fail(evs.err(), json);
  std::int64_t prev = evs->front().wall_time_ns;
  for (const auto& e : *evs) {
    auto delta = e.wall_time_ns - prev;
    prev = e.wall_time_ns;
    if (json) {
      auto in = ojson::parse(journal::to_json_line(e));
      ojson out;
      for (auto it = in.begin(); it != in.end(); ++it) {
        out[it.key()] = it.value();
        if (it.key() == "time")
          out["delta_ms"] = static_cast<double>(delta) / 1e6;
      }
      std::cout << dump(out) << "\n";
      continue;
    }
    // "SEQ  TIME  STREAM@VERSION ..." with the delta after TIME.
    auto line = journal::to_text_line(e);
    auto first = line.find("  ");
    auto second = first == std::string::npos ? first : line.find("  ", first + 2);
    if (second == std::string::npos)
      std::cout << line << "  " << replay::delta_text(delta) << "\n";
    else
      std::cout << line.substr(0, second) << "  " << replay::delta_text(delta) << line.substr(second) << "\n";
  }
  auto stages = replay::stages_of(*evs);
  if (!json && !stages.empty())
    std::cout << "stages:\n";
  for (const auto& s : stages) {
    if (json) {
      std::cout << dump(ojson{{"stage", s.stage},
                              {"resource", s.resource},
                              {"op_id", s.op_id},
                              {"from_seq", s.from_seq},
                              {"to_seq", s.to_seq},
                              {"seconds", s.seconds()},
                              {"outcome", s.outcome}})
                << "\n";
      continue;
    }
    std::cout << fmt::format("  {:<8} {:<28} {:<10} seq {:>6}..{:<6} {:>9.3f}s  {}\n", s.stage,
                             s.resource.empty() ? "-" : s.resource, s.op_id.empty() ? "-" : s.op_id, s.from_seq,
                             s.to_seq, s.seconds(), s.outcome);
  }
  return 0;
}

int print_rerun(const std::string& stream, const replay::rerun_report& r, bool json) {
  if (json) {
    ojson out{{"stream", stream},         {"identical", r.identical()}, {"commands", r.commands},
              {"redecided", r.redecided}, {"effects", r.effects},       {"divergence", nullptr}};
    if (r.diverged)
      out["divergence"] = {{"index", r.diverged->index},       {"seq", r.diverged->seq},
                           {"version", r.diverged->version},   {"recorded", r.diverged->recorded},
                           {"expected", r.diverged->expected}, {"grammar", r.diverged->grammar}};
    std::cout << dump(out) << "\n";
  } else if (r.identical()) {
    fmt::print("identical: {} commands, {} events re-decided ({} effects replayed) in {}\n", r.commands, r.redecided,
               r.effects, stream);
  } else {
    const auto& d = *r.diverged;
    fmt::print("divergent: {} at event {} (seq {}, version {}), after {} commands and {} events re-decided\n"
               "  recorded: {}\n  expected: {}\n",
               stream, d.index, d.seq, d.version, r.commands, r.redecided, d.recorded, d.expected);
  }
  return r.identical() ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"banger-replay: audit banger's event journal offline"};
  app.footer(footer);
  app.require_subcommand(1);
  app.fallthrough(); // --journal/--system may follow the subcommand
  std::string journal_path;
  bool system_mode = false;
  bool json = false;
  std::string stream, vm, file, as_name;
  std::uint64_t at = 0;
  app.add_option("--journal", journal_path, "Journal directory (default: the one bangerd uses)");
  app.add_flag("--system", system_mode, "Use the system daemon's journal (/var/lib/banger/journal)");

  auto* history = app.add_subcommand("history", "Print events: sequence, time, op id, stream, payload; for one VM, "
                                                "with the time since the previous event and stage durations");
  auto* history_vm = history->add_option("vm", vm, "Only this VM's stream (vm/VM), with stage durations");
  history->add_option("--stream", stream, "Only this stream")->excludes(history_vm);
  history->add_flag("--json", json, "JSON lines (schema: docs/events.md, docs/replay.md)");

  auto* state = app.add_subcommand("state", "Fold a VM's stream through its apply() and print the state");
  state->add_option("vm", vm, "The VM")->required();
  auto* at_opt = state->add_option("--at", at, "Only the events with seq <= SEQ (default: all)");
  state->add_flag("--json", json, "Print the state as JSON");

  auto* verify = app.add_subcommand("verify", "Check sequences, stream versions, the index, that every value "
                                              "decodes, and every VM stream's grammar, invariants and decisions");
  verify->add_flag("--json", json, "Print the report as JSON");

  auto* exp = app.add_subcommand("export", "Write a VM's stream to FILE as a portable slice (JSON lines)");
  exp->add_option("vm", vm, "The VM")->required();
  exp->add_option("file", file, "Where to write it ('-': standard output)")->required();

  auto* imp = app.add_subcommand("import", "Append a slice to a journal (--journal DIR, created if needed) as a new "
                                           "stream; refuses to merge and refuses a journal bangerd holds");
  imp->add_option("file", file, "The slice")->required();
  imp->add_option("--as", as_name, "Name the VM NAME in the target (default: the slice's name)");

  auto* rer = app.add_subcommand("rerun", "Re-decide a recording's commands with the same decide()/apply() and report "
                                          "the first divergence");
  auto* rer_file = rer->add_option("file", file, "An exported slice");
  auto* rer_vm = rer->add_option("--vm", vm, "Rerun VM NAME's stream straight from the journal");
  rer_file->excludes(rer_vm);
  rer->add_flag("--json", json, "Print the report as JSON");

  try {
    app.parse(argc, argv);
    if (rer->parsed() && file.empty() && vm.empty())
      throw CLI::RequiredError("rerun needs FILE or --vm NAME");
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }

  auto path = journal_dir(journal_path, system_mode);
  if (!path)
    return fail(path.err(), json);

  if (imp->parsed()) {
    auto s = replay::read_slice(file);
    if (!s)
      return fail(s.err(), json);
    auto r = replay::import_slice(*s, *path, as_name);
    if (!r)
      return fail(r.err(), json);
    fmt::print("imported {} events of {} into the journal at {} as {} (seqs {}..{})\n", r->events, s->stream,
               path->string(), r->stream, r->first_seq, r->last_seq);
    return 0;
  }

  if (rer->parsed() && !file.empty()) {
    auto s = replay::read_slice(file);
    if (!s)
      return fail(s.err(), json);
    std::vector<journal::stored_event> evs;
    for (auto& e : s->events)
      evs.push_back(std::move(e.event));
    return print_rerun(s->stream, replay::rerun(s->stream, evs), json);
  }

  auto j = open_read_only(*path);
  if (!j)
    return fail(j.err(), json);

  if (rer->parsed()) {
    auto evs = vm_events(**j, vm);
    if (!evs)
      return fail(evs.err(), json);
    return print_rerun(actors::vm_stream(vm), replay::rerun(actors::vm_stream(vm), *evs), json);
  }

  if (exp->parsed()) {
    auto s = replay::export_vm(**j, vm);
    if (!s)
      return fail(s.err(), json);
    auto text = replay::write_slice(*s);
    if (file == "-") {
      std::cout << text;
      return 0;
    }
    auto tmp = file + ".tmp";
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      out << text;
      if (!out.flush())
        return fail(make_error(errc::operation_failed, fmt::format("cannot write {}", tmp)), json);
    }
    std::error_code ec;
    std::filesystem::rename(tmp, file, ec);
    if (ec)
      return fail(
        make_error(errc::operation_failed, fmt::format("cannot rename {} to {}: {}", tmp, file, ec.message())), json);
    std::cerr << fmt::format("exported {} events of {} to {}\n", s->events.size(), s->stream, file);
    return 0;
  }

  if (state->parsed()) {
    auto evs = vm_events(**j, vm);
    if (!evs)
      return fail(evs.err(), json);
    actors::vm_state st;
    st.name = vm;
    for (const auto& e : *evs)
      if (!*at_opt || e.seq <= at)
        st = actors::apply(std::move(st), e);
    std::cout << (json ? replay::state_json(st) + "\n" : replay::state_text(st));
    return 0;
  }

  if (history->parsed()) {
    if (!vm.empty())
      return history_of_vm(**j, vm, json);
    if (!stream.empty()) {
      auto evs = (*j)->read_stream(stream);
      if (!evs)
        return fail(evs.err(), json);
      for (const auto& e : *evs)
        print_event(e, json);
      return 0;
    }
    std::uint64_t next = 1;
    for (;;) {
      auto batch = (*j)->read_all(next, 4096);
      if (!batch)
        return fail(batch.err(), json);
      for (const auto& e : batch->events)
        print_event(e, json);
      if (batch->next_seq == next)
        break;
      next = batch->next_seq;
    }
    return 0;
  }

  auto rep = replay::verify(**j);
  if (!rep)
    return fail(rep.err(), json);
  if (json) {
    std::cout << dump(ojson{{"ok", rep->ok()},
                            {"events", rep->events},
                            {"streams", rep->streams},
                            {"unknown_kinds", rep->unknown_kinds},
                            {"vm_streams", rep->vm_streams},
                            {"commands", rep->commands},
                            {"problems", rep->problems}})
              << "\n";
  } else if (rep->ok()) {
    fmt::print("journal {} is consistent: {} events in {} streams; {} VM streams follow the grammar and their {} "
               "commands re-decide as recorded{}\n",
               path->string(), rep->events, rep->streams, rep->vm_streams, rep->commands,
               rep->unknown_kinds ? fmt::format(" ({} of kinds this build does not know)", rep->unknown_kinds) : "");
  } else {
    for (const auto& p : rep->problems)
      std::cerr << "banger-replay: " << p << "\n";
    std::cerr << fmt::format("banger-replay: journal {} has {} problem(s)\n", path->string(), rep->problems.size());
  }
  return rep->ok() ? 0 : 1;
}
