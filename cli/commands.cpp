// The CLI's commands over RPC; see commands.hpp. Human output to stdout, errors to stderr as
// `banger: <message> (op-xxxxxx)`; with --json, one JSON document (or JSON lines for events)
// on stdout, errors included, carrying the error code.
#include "cli/commands.hpp"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <fstream>
#include <iostream>
#include <thread>
#include <unistd.h>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "cli/client.hpp"
#include "cli/connection.hpp"
#include "cli/output.hpp"
#include "common/process.hpp"
#include "journal/codec.hpp"
#include "journal/render.hpp"

namespace banger::cli {

using json = nlohmann::json;
using namespace std::chrono_literals;

int report(const error& e, const output_opts& o) {
  if (o.json) {
    json j = {{"error", {{"code", std::string(to_string(e.code))}, {"message", e.message}}}};
    if (!e.op_id.empty())
      j["error"]["op_id"] = e.op_id;
    std::cout << j.dump() << "\n";
  } else {
    bool c = use_colour(2);
    std::cerr << paint("banger:", "1;31", c) << " " << e.message;
    if (!e.op_id.empty())
      std::cerr << " (" << e.op_id << ")";
    std::cerr << "\n";
  }
  return 1;
}

namespace {

json status_json(rpc::Status::Reader s) {
  json entities = json::object();
  for (auto e : s.getEntities())
    entities[std::string(e.getKind())] = e.getCount();
  return {{"version", std::string(s.getVersion())},
          {"pid", s.getPid()},
          {"uptime_ms", s.getUptimeMs()},
          {"journal_seq", s.getJournalSeq()},
          {"entities", entities},
          {"state_dir", std::string(s.getStateDir())},
          {"runtime_dir", std::string(s.getRuntimeDir())},
          {"log_file", std::string(s.getLogFile())}};
}

void print_status(rpc::Status::Reader s, const char* headline) {
  bool c = use_colour(1);
  std::string entities;
  for (auto e : s.getEntities())
    entities += fmt::format("{}{} {}", entities.empty() ? "" : ", ", e.getKind().cStr(), e.getCount());
  fmt::print("{} {}  pid {}  up {}\n", paint(headline, "1;32", c), s.getVersion().cStr(), s.getPid(),
             human_duration_ms(s.getUptimeMs()));
  fmt::print("  journal   seq {}\n", s.getJournalSeq());
  fmt::print("  entities  {}\n", entities.empty() ? "none" : entities);
  fmt::print("  state     {}\n", s.getStateDir().cStr());
  fmt::print("  runtime   {}\n", s.getRuntimeDir().cStr());
  fmt::print("  log       {}\n", s.getLogFile().cStr());
}

} // namespace

int cmd_ping(const dirs& d, const output_opts& o) {
  return with_daemon(d, o, [&](client& c) {
    auto t0 = std::chrono::steady_clock::now();
    auto r = c.conn().daemon.pingRequest().send().wait(c.conn().io.waitScope);
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (failed(r.getError()))
      return report(from_rpc(r.getError()), o);
    if (o.json)
      std::cout << json{{"ok", true}, {"op_id", std::string(r.getOpId())}, {"rtt_ms", ms}}.dump() << "\n";
    else
      fmt::print("pong from bangerd in {:.2f} ms ({})\n", ms, r.getOpId().cStr());
    return 0;
  });
}

int cmd_version(const dirs& d, const output_opts& o) {
  return with_daemon(d, o, [&](client& c) {
    auto r = c.conn().daemon.versionRequest().send().wait(c.conn().io.waitScope);
    if (failed(r.getError()))
      return report(from_rpc(r.getError()), o);
    if (o.json)
      std::cout << json{{"client", BANGER_VERSION},
                        {"daemon", std::string(r.getVersion())},
                        {"journal_schema", r.getJournalSchema()}}
                     .dump()
                << "\n";
    else
      fmt::print("banger  {}\nbangerd {} (journal schema {})\n", BANGER_VERSION, r.getVersion().cStr(),
                 r.getJournalSchema());
    return 0;
  });
}

int cmd_status(const dirs& d, const output_opts& o) {
  return with_daemon(d, o, [&](client& c) {
    auto r = c.conn().daemon.statusRequest().send().wait(c.conn().io.waitScope);
    if (failed(r.getError()))
      return report(from_rpc(r.getError()), o);
    if (o.json)
      std::cout << status_json(r.getStatus()).dump() << "\n";
    else
      print_status(r.getStatus(), "bangerd");
    return 0;
  });
}

namespace {

/// Prints pushed events; `end()` resolves `done`.
class printing_sink final : public rpc::EventSink::Server {
public:
  /// `last_seq` (owned by the caller, outliving the connection) is raised to each event received.
  printing_sink(bool json_lines, kj::Own<kj::PromiseFulfiller<std::string>> done, std::uint64_t& last_seq)
    : json_(json_lines), done_(kj::mv(done)), last_seq_(last_seq) {}

  kj::Promise<void> push(PushContext ctx) override {
    for (auto e : ctx.getParams().getEvents()) {
      last_seq_ = std::max(last_seq_, e.getSeq());
      auto bytes = e.getEvent();
      auto ev =
        journal::decode(e.getSeq(), std::string_view(reinterpret_cast<const char*>(bytes.begin()), bytes.size()));
      if (!ev) {
        std::cerr << "banger: " << ev.err().message << "\n";
        continue;
      }
      if (std::holds_alternative<journal::unknown_event>(ev->body))
        continue; // written by a newer banger: skipped, not fatal
      std::cout << (json_ ? journal::to_json_line(*ev) : journal::to_text_line(*ev)) << "\n";
    }
    std::cout.flush();
    return kj::READY_NOW;
  }

  kj::Promise<void> end(EndContext ctx) override {
    if (done_->isWaiting())
      done_->fulfill(std::string(ctx.getParams().getReason()));
    return kj::READY_NOW;
  }

private:
  bool json_;
  kj::Own<kj::PromiseFulfiller<std::string>> done_;
  std::uint64_t& last_seq_;
};

/// How one events call on one connection ended.
enum class stream_end { finished, refused, daemon_gone };

/// Streams events with seq > `last_seq` on `c`, raising `last_seq` as they arrive. finished:
/// not following and caught up; refused: the daemon answered with an error (reported, `code`
/// set); daemon_gone: following, and the daemon stopped or the connection was lost.
stream_end stream_events(client& c, const output_opts& o, const events_opts& e, std::uint64_t& last_seq, int& code,
                         std::string& reason) {
  try {
    auto& ws = c.conn().io.waitScope;
    auto done = kj::newPromiseAndFulfiller<std::string>();
    auto req = c.conn().daemon.eventsRequest();
    req.setSince(last_seq);
    req.setFollow(e.follow);
    auto f = req.initFilter();
    auto streams = f.initStreams(static_cast<unsigned>(e.streams.size()));
    for (unsigned i = 0; i < e.streams.size(); ++i)
      streams.set(i, e.streams[i]);
    auto kinds = f.initKinds(static_cast<unsigned>(e.kinds.size()));
    for (unsigned i = 0; i < e.kinds.size(); ++i)
      kinds.set(i, e.kinds[i]);
    req.setSink(kj::heap<printing_sink>(o.json, kj::mv(done.fulfiller), last_seq));
    auto r = req.send().wait(ws);
    if (failed(r.getError())) {
      if (e.follow && errc_from_number(r.getError().getCode()) == errc::unavailable) { // a daemon on its way out
        reason = r.getError().getMessage();
        return stream_end::daemon_gone;
      }
      code = report(from_rpc(r.getError()), o);
      return stream_end::refused;
    }
    if (!e.follow)
      return stream_end::finished;
    auto handle = r.getHandle(); // kept alive while following; dropping it stops the stream
    auto disconnected = c.conn().twoparty->onDisconnect().then([] { return std::string("connection closed"); });
    reason = done.promise.exclusiveJoin(kj::mv(disconnected)).wait(ws);
    return stream_end::daemon_gone;
  } catch (const kj::Exception& ex) {
    if (!e.follow)
      throw;
    reason = lost(ex).message;
    return stream_end::daemon_gone;
  }
}

} // namespace

int cmd_events(const dirs& d, const output_opts& o, const events_opts& e) {
  std::uint64_t last_seq = e.since; // the newest event received: a resumed call asks for what follows it
  int code = 0;
  std::string reason;
  auto first = with_daemon(d, o, [&](client& c) {
    auto end = stream_events(c, o, e, last_seq, code, reason);
    return end == stream_end::refused ? code : end == stream_end::daemon_gone ? -1 : 0;
  });
  if (first != -1 || !e.follow)
    return first;
  // Following: the daemon stopped or went away. Wait for it to come back (never start it from
  // here: whoever stopped it decides) and resume right after the last event received, so the
  // output has no gap and no duplicate across restarts.
  for (;;) {
    std::cerr << "banger: bangerd stopped (" << reason << "); waiting for it to come back to resume after seq "
              << last_seq << " (Ctrl-C to stop)\n";
    std::unique_ptr<client> c;
    for (;;) {
      connect_failure why{};
      auto got = try_connect(d, why);
      if (got) {
        c = std::move(*got);
        break;
      }
      if (why != connect_failure::not_running)
        return report(got.err(), o);
      std::this_thread::sleep_for(200ms);
    }
    std::cerr << "banger: bangerd is back; resuming after seq " << last_seq << "\n";
    auto end = stream_events(*c, o, e, last_seq, code, reason);
    if (end == stream_end::refused)
      return code;
    c.reset();
    std::this_thread::sleep_for(200ms); // a daemon that accepts and closes at once is not spun on
  }
}

int cmd_daemon_start(const dirs& d, const output_opts& o) {
  connect_failure why{};
  if (auto c = try_connect(d, why); c) {
    auto pid = recorded_pid(d);
    if (o.json)
      std::cout << json{{"started", false}, {"pid", pid.value_or(0)}, {"socket", d.socket().string()}}.dump() << "\n";
    else
      fmt::print("bangerd is already running (pid {}, socket {})\n", pid.value_or(0), d.socket().string());
    return 0;
  } else if (why != connect_failure::not_running) {
    return report(c.err(), o);
  }
  auto pid = start_daemon(d, 15s);
  if (!pid)
    return report(pid.err(), o);
  if (o.json)
    std::cout << json{{"started", true}, {"pid", *pid}, {"socket", d.socket().string()}}.dump() << "\n";
  else
    fmt::print("bangerd started (pid {}, socket {})\n", *pid, d.socket().string());
  return 0;
}

int cmd_daemon_stop(const dirs& d, const output_opts& o) {
  connect_failure why{};
  auto c = try_connect(d, why);
  if (!c) {
    if (why != connect_failure::not_running)
      return report(c.err(), o);
    if (o.json)
      std::cout << json{{"stopped", false}, {"running", false}}.dump() << "\n";
    else
      fmt::print("bangerd is not running\n");
    return 0;
  }
  auto pid = recorded_pid(d);
  try {
    auto r = (*c)->conn().daemon.shutdownRequest().send().wait((*c)->conn().io.waitScope);
    if (failed(r.getError()))
      return report(from_rpc(r.getError()), o);
  } catch (const kj::Exception& e) {
    return report(lost(e), o);
  }
  c->reset();
  // Wait until the daemon has released its state: its socket is gone and its pid has exited.
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline) {
    bool sock_gone = !std::filesystem::exists(d.socket());
    bool pid_gone = !pid || !process_alive(*pid);
    if (sock_gone && pid_gone) {
      if (o.json)
        std::cout << json{{"stopped", true}, {"pid", pid.value_or(0)}}.dump() << "\n";
      else
        fmt::print("bangerd stopped (pid {})\n", pid.value_or(0));
      return 0;
    }
    std::this_thread::sleep_for(50ms);
  }
  return report(make_error(errc::operation_failed, fmt::format("bangerd (pid {}) did not stop within 20 s; see {}",
                                                               pid.value_or(0), d.log_file().string())),
                o);
}

int cmd_daemon_status(const dirs& d, const output_opts& o) {
  connect_failure why{};
  auto c = try_connect(d, why);
  if (!c) {
    if (why != connect_failure::not_running)
      return report(c.err(), o);
    if (o.json)
      std::cout << json{{"running", false}, {"socket", d.socket().string()}}.dump() << "\n";
    else
      fmt::print("bangerd is not running (socket {})\n", d.socket().string());
    return 3;
  }
  try {
    auto r = (*c)->conn().daemon.statusRequest().send().wait((*c)->conn().io.waitScope);
    if (failed(r.getError()))
      return report(from_rpc(r.getError()), o);
    if (o.json) {
      auto j = status_json(r.getStatus());
      j["running"] = true;
      j["socket"] = d.socket().string();
      std::cout << j.dump() << "\n";
    } else {
      print_status(r.getStatus(), "bangerd running");
      fmt::print("  socket    {}\n", d.socket().string());
    }
    return 0;
  } catch (const kj::Exception& e) {
    return report(lost(e), o);
  }
}

namespace {

/// A log line for people: "TIME LEVEL [op] msg"; lines that are not our JSON pass through.
std::string humanize_log_line(const std::string& line) {
  auto j = json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return line;
  std::string op = j.value("op", "");
  return fmt::format("{} {:<5} {}{}", j.value("time", ""), j.value("level", ""), op.empty() ? "" : op + " ",
                     j.value("msg", ""));
}

} // namespace

int cmd_daemon_logs(const dirs& d, const logs_opts& l) {
  auto path = d.log_file();
  std::ifstream in(path);
  if (!in)
    return report(make_error(errc::not_found,
                             fmt::format("no daemon log at {}; has bangerd run with this state dir?", path.string())),
                  {});
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line))
    lines.push_back(line);
  std::size_t from = lines.size() > l.lines ? lines.size() - l.lines : 0;
  for (std::size_t i = from; i < lines.size(); ++i)
    std::cout << (l.raw ? lines[i] : humanize_log_line(lines[i])) << "\n";
  std::cout.flush();
  if (!l.follow)
    return 0;
  in.clear();
  for (;;) {
    while (std::getline(in, line)) {
      std::cout << (l.raw ? line : humanize_log_line(line)) << "\n";
    }
    std::cout.flush();
    in.clear();
    std::this_thread::sleep_for(200ms);
  }
}

} // namespace banger::cli
