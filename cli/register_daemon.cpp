// The daemon's and the journal's commands (register.hpp): ping, version, status, events, daemon
// start|stop|status|logs.
#include <CLI/CLI.hpp>

#include "cli/register.hpp"
#include "cli/vm.hpp"

namespace banger::cli {

namespace {

constexpr const char* daemon_footer =
  R"(bangerd is the per-user daemon that owns banger's state: the event journal, VMs, images and
kernels. Other commands start it on demand; these commands manage it explicitly.

Examples:
  banger daemon start           # start it detached; returns once it answers
  banger daemon status          # running? pid, uptime, journal position
  banger daemon logs -n 100 -f  # follow its log
  banger daemon stop            # stop it cleanly (VMs keep running; the next daemon adopts them))";

constexpr const char* events_footer =
  R"(Every state change banger makes is an event in its journal, numbered by a global sequence.
Without --follow this prints the events there are and exits; with it, it keeps printing new
ones, and when the daemon stops it waits for it to come back and resumes right after the last
event it printed (Ctrl-C to stop). Resume a later run with --since <last seq you saw>: nothing
is skipped or repeated.

Examples:
  banger events                          # everything so far
  banger events --follow --json          # JSON lines, for automation
  banger events --since 120 --type daemon_started
Next: `banger-replay history` reads the same journal offline.)";

struct daemon_options {
  events_opts ev;
  logs_opts lg;
  std::vector<std::string> event_vms;
};

} // namespace

void register_daemon_commands(CLI::App& app, parsed_command& p) {
  auto& st = p.keep<daemon_options>();
  auto& ev = st.ev;
  auto& lg = st.lg;
  auto* ping = app.add_subcommand("ping", "Check that the daemon answers, and how fast");
  ping->add_flag("--json", p.out.json, "Print JSON");
  ping->footer("Example:\n  banger ping");
  ping->callback([&] { p.action = [&](const dirs& d) { return cmd_ping(d, p.out); }; });

  auto* version = app.add_subcommand("version", "Show the client's and the daemon's versions");
  version->add_flag("--json", p.out.json, "Print JSON");
  version->callback([&] { p.action = [&](const dirs& d) { return cmd_version(d, p.out); }; });

  auto* status = app.add_subcommand("status", "Show the daemon's state: uptime, journal position, entities");
  status->add_flag("--json", p.out.json, "Print JSON");
  status->footer("Example:\n  banger status --json | jq .journal_seq");
  status->callback([&] { p.action = [&](const dirs& d) { return cmd_status(d, p.out); }; });

  auto* events = app.add_subcommand("events", "Print the event journal; --follow to stream it live");
  events->footer(events_footer);
  events->add_flag("--json", p.out.json, "JSON lines, one event per line (schema: docs/events.md)");
  events->add_flag("-f,--follow", ev.follow, "Keep printing new events until interrupted");
  events->add_option("--since", ev.since, "Only events with a sequence number above this")
    ->check(CLI::NonNegativeNumber);
  events->add_option("--stream", ev.streams, "Only this stream (e.g. daemon); repeatable");
  events->add_option("--type", ev.kinds, "Only this event kind (e.g. daemon_started); repeatable");
  auto& event_vms = st.event_vms;
  events->add_option("--vm", event_vms, "Only this VM's events (its stream vm/NAME); repeatable")
    ->check([](const std::string& name) {
      auto ok = validate_vm_name(name);
      return ok ? std::string{} : ok.err().message;
    });
  events->callback([&] {
    for (const auto& name : event_vms)
      ev.streams.push_back("vm/" + name);
    p.action = [&](const dirs& d) { return cmd_events(d, p.out, ev); };
  });

  auto* daemon = app.add_subcommand("daemon", "Start, stop and inspect bangerd");
  daemon->footer(daemon_footer);
  daemon->require_subcommand(1);
  auto* dstart = daemon->add_subcommand("start", "Start bangerd detached; returns once it answers");
  dstart->add_flag("--json", p.out.json, "Print JSON");
  dstart->callback([&] { p.action = [&](const dirs& d) { return cmd_daemon_start(d, p.out); }; });
  auto* dstop = daemon->add_subcommand("stop", "Stop bangerd and wait until it has exited");
  dstop->add_flag("--json", p.out.json, "Print JSON");
  dstop->callback([&] { p.action = [&](const dirs& d) { return cmd_daemon_stop(d, p.out); }; });
  auto* dstatus = daemon->add_subcommand("status", "Is bangerd running? (exit 3 when not)");
  dstatus->add_flag("--json", p.out.json, "Print JSON");
  dstatus->callback([&] { p.action = [&](const dirs& d) { return cmd_daemon_status(d, p.out); }; });
  auto* dlogs = daemon->add_subcommand("logs", "Print bangerd's log");
  dlogs->add_option("-n,--lines", lg.lines, "How many of the last lines to print")->capture_default_str();
  dlogs->add_flag("-f,--follow", lg.follow, "Keep printing new lines");
  dlogs->add_flag("--raw", lg.raw, "Print the JSON lines as stored");
  dlogs->callback([&] { p.action = [&](const dirs& d) { return cmd_daemon_logs(d, lg); }; });
}

} // namespace banger::cli
