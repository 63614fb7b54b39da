// banger-replay: reads banger's event journal offline (read-only, safe beside a running
// bangerd). `history` prints events; `verify` checks the journal's structure and exits 1
// naming what is wrong.
#include <iostream>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "common/paths.hpp"
#include "journal/journal.hpp"
#include "journal/render.hpp"
#include "tools/replay/verify.hpp"

using namespace banger;

namespace {

int fail(const error& e, bool json) {
  if (json)
    std::cout << nlohmann::json{{"error", {{"code", std::string(to_string(e.code))}, {"message", e.message}}}}.dump()
              << "\n";
  else
    std::cerr << "banger-replay: " << e.message << "\n";
  return 1;
}

constexpr const char* footer =
  R"(banger-replay reads the journal bangerd writes, without bangerd: read-only, so it is safe
beside a running daemon. It finds the journal as bangerd does (your XDG state dir, or
/var/lib/banger with --system), or takes --journal PATH.

Examples:
  banger-replay history                    # every event
  banger-replay history --stream daemon --json
  banger-replay verify                     # exit 1 and say what is wrong, if anything)";

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"banger-replay: audit banger's event journal offline"};
  app.footer(footer);
  app.require_subcommand(1);
  app.fallthrough(); // --journal/--system may follow the subcommand
  std::string journal_path;
  bool system_mode = false;
  bool json = false;
  std::string stream;
  app.add_option("--journal", journal_path, "Journal directory (default: the one bangerd uses)");
  app.add_flag("--system", system_mode, "Use the system daemon's journal (/var/lib/banger/journal)");
  auto* history = app.add_subcommand("history", "Print events: sequence, time, op id, stream, payload");
  history->add_option("--stream", stream, "Only this stream");
  history->add_flag("--json", json, "JSON lines (schema: docs/events.md)");
  auto* verify =
    app.add_subcommand("verify", "Check sequences, stream versions, the index, and that every value decodes");
  verify->add_flag("--json", json, "Print the report as JSON");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }

  std::filesystem::path path = journal_path;
  if (path.empty()) {
    auto d = resolve_dirs(system_mode ? install_mode::system : install_mode::dev, process_env(), ::geteuid());
    if (!d)
      return fail(d.err(), json);
    path = d->journal();
  }
  if (!std::filesystem::exists(path / "CURRENT"))
    return fail(make_error(errc::not_found,
                           fmt::format("no journal at {} (has bangerd run? pass --journal PATH)", path.string())),
                json);
  journal::options opts;
  opts.read_only = true;
  auto j = journal::journal::open(path, opts);
  if (!j)
    return fail(j.err(), json);

  if (history->parsed()) {
    if (!stream.empty()) {
      auto evs = (*j)->read_stream(stream);
      if (!evs)
        return fail(evs.err(), json);
      for (const auto& e : *evs)
        std::cout << (json ? journal::to_json_line(e) : journal::to_text_line(e)) << "\n";
      return 0;
    }
    std::uint64_t next = 1;
    for (;;) {
      auto batch = (*j)->read_all(next, 4096);
      if (!batch)
        return fail(batch.err(), json);
      for (const auto& e : batch->events)
        std::cout << (json ? journal::to_json_line(e) : journal::to_text_line(e)) << "\n";
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
    std::cout << nlohmann::json{{"ok", rep->ok()},
                                {"events", rep->events},
                                {"streams", rep->streams},
                                {"unknown_kinds", rep->unknown_kinds},
                                {"problems", rep->problems}}
                   .dump()
              << "\n";
  } else if (rep->ok()) {
    fmt::print("journal {} is consistent: {} events in {} streams{}\n", path.string(), rep->events, rep->streams,
               rep->unknown_kinds ? fmt::format(" ({} of kinds this build does not know)", rep->unknown_kinds) : "");
  } else {
    for (const auto& p : rep->problems)
      std::cerr << "banger-replay: " << p << "\n";
    std::cerr << fmt::format("banger-replay: journal {} has {} problem(s)\n", path.string(), rep->problems.size());
  }
  return rep->ok() ? 0 : 1;
}
