// Integration tests: the real banger, bangerd and banger-replay binaries, each test in its own
// XDG directories under /tmp. The non-owner tests use real second UIDs (65534 nobody and 65533)
// through setpriv, so they need root; they skip with a message otherwise.
#include <csignal>
#include <fstream>
#include <functional>
#include <regex>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "common/process.hpp"
#include "journal/journal.hpp"
#include "tests/support/proc.hpp"
#include "tests/support/sandbox.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace banger;
using namespace std::chrono_literals;

using test::eventually;
using test::json_lines;
using test::sandbox;

BOOST_AUTO_TEST_SUITE(daemon_and_cli)

BOOST_AUTO_TEST_CASE(start_ping_status_events_stop) {
  sandbox sb;
  auto start = sb.banger({"daemon", "start", "--json"});
  BOOST_REQUIRE_MESSAGE(start.exit_code == 0, start.err);
  auto started = json::parse(start.out);
  BOOST_TEST(started["started"].get<bool>());
  int pid = started["pid"].get<int>();
  BOOST_TEST(process_alive(pid));

  // The socket is 0600 and owned by us.
  struct stat st {};
  BOOST_REQUIRE(::stat(sb.socket().c_str(), &st) == 0);
  BOOST_TEST((st.st_mode & 0777) == 0600u);

  auto ping = sb.banger({"ping", "--json"});
  BOOST_REQUIRE_MESSAGE(ping.exit_code == 0, ping.err);
  std::string op = json::parse(ping.out)["op_id"];
  BOOST_TEST(std::regex_match(op, std::regex("op-[0-9a-f]{6}")), op);
  // The op id is on the log line of that request.
  auto log = read_file(sb.state() / "bangerd.log");
  BOOST_REQUIRE(log.has_value());
  BOOST_TEST(log->find("\"op\":\"" + op + "\"") != std::string::npos);
  // Every log line is a JSON object.
  for (const auto& line : json_lines(*log))
    BOOST_TEST(line.contains("level"));

  auto status = sb.banger({"status", "--json"});
  BOOST_REQUIRE_MESSAGE(status.exit_code == 0, status.err);
  auto s = json::parse(status.out);
  BOOST_TEST(s["pid"].get<int>() == pid);
  BOOST_TEST(s["journal_seq"].get<std::uint64_t>() >= 1u);
  BOOST_TEST(s["state_dir"].get<std::string>() == sb.state().string());

  auto events = sb.banger({"events", "--json"});
  BOOST_REQUIRE_MESSAGE(events.exit_code == 0, events.err);
  auto evs = json_lines(events.out);
  BOOST_REQUIRE(!evs.empty());
  BOOST_TEST(evs.back()["kind"] == "daemon_started");
  BOOST_TEST(evs.back()["payload"]["pid"].get<int>() == pid);
  for (std::size_t i = 0; i < evs.size(); ++i)
    BOOST_TEST(evs[i]["seq"].get<std::uint64_t>() == i + 1);

  auto stop = sb.banger({"daemon", "stop"});
  BOOST_REQUIRE_MESSAGE(stop.exit_code == 0, stop.err);
  BOOST_TEST(!process_alive(pid));
  BOOST_TEST(!fs::exists(sb.socket()));
  auto dstatus = sb.banger({"daemon", "status", "--json"});
  BOOST_TEST(dstatus.exit_code == 3);
  BOOST_TEST(json::parse(dstatus.out)["running"].get<bool>() == false);

  // The stop is journaled with the op id of the shutdown request; the journal verifies.
  auto hist = sb.replay({"history", "--json"});
  BOOST_REQUIRE_MESSAGE(hist.exit_code == 0, hist.err);
  auto h = json_lines(hist.out);
  BOOST_REQUIRE(h.size() >= 2u);
  BOOST_TEST(h.back()["kind"] == "daemon_stopped");
  BOOST_TEST(std::regex_match(h.back()["op_id"].get<std::string>(), std::regex("op-[0-9a-f]{6}")));
  auto verify = sb.replay({"verify"});
  BOOST_TEST(verify.exit_code == 0, verify.err);
}

BOOST_AUTO_TEST_CASE(commands_autostart_the_daemon_and_events_resume_from_since) {
  sandbox sb;
  auto st = sb.banger({"daemon", "status"});
  BOOST_TEST(st.exit_code == 3);
  auto ping = sb.banger({"ping"});
  BOOST_REQUIRE_MESSAGE(ping.exit_code == 0, ping.err);
  BOOST_TEST(ping.out.find("pong") != std::string::npos);
  BOOST_TEST(sb.banger({"daemon", "status"}).exit_code == 0);
  // A second start is a no-op that says so.
  auto again = sb.banger({"daemon", "start", "--json"});
  BOOST_TEST(again.exit_code == 0);
  BOOST_TEST(json::parse(again.out)["started"].get<bool>() == false);

  // Restart twice to have a few events, then read from a midpoint.
  BOOST_REQUIRE(sb.banger({"daemon", "stop"}).exit_code == 0);
  BOOST_REQUIRE(sb.banger({"daemon", "start"}).exit_code == 0);
  auto all = json_lines(sb.banger({"events", "--json"}).out);
  BOOST_REQUIRE(all.size() == 3u); // started, stopped, started
  auto tail = json_lines(sb.banger({"events", "--json", "--since", "1"}).out);
  BOOST_REQUIRE(tail.size() == 2u);
  BOOST_TEST(tail[0]["seq"].get<int>() == 2);
  auto only_stops = json_lines(sb.banger({"events", "--json", "--type", "daemon_stopped"}).out);
  BOOST_REQUIRE(only_stops.size() == 1u);
  BOOST_TEST(only_stops[0]["kind"] == "daemon_stopped");
  auto human = sb.banger({"events"});
  BOOST_TEST(human.out.find("daemon@2") != std::string::npos, human.out);
}

// Several commands at once with no daemon up each start one; one wins the state dir's lock, and
// the others use it instead of failing on "already running".
BOOST_AUTO_TEST_CASE(concurrent_autostarts_share_one_daemon) {
  sandbox sb;
  std::vector<test::run_result> results(4);
  std::vector<std::thread> threads;
  for (auto& r : results)
    threads.emplace_back([&sb, &r] { r = sb.banger({"ping"}); });
  for (auto& t : threads)
    t.join();
  for (const auto& r : results)
    BOOST_TEST(r.exit_code == 0, r.err);
  auto started = json_lines(sb.banger({"events", "--json", "--type", "daemon_started"}).out);
  BOOST_TEST(started.size() == 1u); // one daemon ever ran
}

namespace {

/// A follower: `banger events --follow --json ARGS` in the background, its output in `dir`.
struct follower {
  fs::path dir;
  int pid = -1;
  follower(sandbox& sb, const std::string& name, std::vector<std::string> args) : dir(sb.root.path / name) {
    fs::create_directories(dir);
    std::vector<std::string> argv{(sb.bin / "banger").string(), "events", "--follow", "--json"};
    argv.insert(argv.end(), args.begin(), args.end());
    pid = test::spawn(argv, sb.env, dir);
  }
  ~follower() { stop(); }
  std::vector<json> lines() const { return json_lines(text("spawn.out")); }
  std::string err() const { return text("spawn.err"); }
  std::string text(const char* file) const {
    auto s = read_file(dir / file);
    return s ? *s : std::string();
  }
  bool running() { return pid > 0 && ::waitpid(pid, nullptr, WNOHANG) == 0; }
  void stop() {
    if (pid <= 0)
      return;
    ::kill(pid, SIGINT);
    ::waitpid(pid, nullptr, 0);
    pid = -1;
  }
};

/// Appends events to stream vm/web while no daemon holds the journal: VM events the daemon did
/// not make, for the --vm filter to choose.
void append_vm_events(sandbox& sb, std::vector<journal::payload> ps) {
  auto j = journal::journal::open(sb.state() / "journal");
  BOOST_REQUIRE_MESSAGE(j.has_value(), (j ? std::string() : j.err().message));
  auto v = (*j)->stream_version("vm/web");
  BOOST_REQUIRE(v.has_value());
  journal::append_request r{"vm/web", *v, {}};
  for (auto& p : ps)
    r.events.push_back({"op-test01", std::move(p)});
  BOOST_REQUIRE((*j)->append(std::move(r)).has_value());
}

/// A kernel import that fails at once, journaling artifact_started, artifact_stage and
/// artifact_failed on kernel/NAME.
void failed_import(sandbox& sb, const std::string& name) {
  auto bogus = sb.root.path / "not-a-kernel";
  std::ofstream(bogus) << "hi\n";
  auto r = sb.banger({"kernel", "import", name, "--vmlinux", bogus.string(), "--initrd", bogus.string()});
  BOOST_REQUIRE_MESSAGE(r.exit_code != 0, r.out);
}

std::vector<json> select(const std::vector<json>& all, std::uint64_t after,
                         const std::function<bool(const json&)>& keep = {}) {
  std::vector<json> out;
  for (const auto& e : all)
    if (e["seq"].get<std::uint64_t>() > after && (!keep || keep(e)))
      out.push_back(e);
  return out;
}

/// Same events (seq, stream, version, kind), in order, each once.
void same_events(const std::vector<json>& got, const std::vector<json>& want, const std::string& who) {
  BOOST_TEST_REQUIRE(got.size() == want.size(), who << ": " << got.size() << " lines, want " << want.size());
  for (std::size_t i = 0; i < got.size(); ++i)
    for (const char* k : {"seq", "stream", "version", "kind"})
      BOOST_TEST(got[i][k] == want[i][k], who << " line " << i << " " << k);
}

} // namespace

BOOST_AUTO_TEST_CASE(follow_resumes_across_daemon_restarts_with_no_gap_and_no_duplicate) {
  sandbox sb;
  BOOST_REQUIRE(sb.banger({"daemon", "start"}).exit_code == 0);
  follower all_kinds(sb, "all", {});
  follower starts(sb, "starts", {"--type", "daemon_started"});
  follower web(sb, "web", {"--vm", "web"});
  BOOST_REQUIRE(eventually([&] { return all_kinds.lines().size() == 1u; }));
  failed_import(sb, "k0");

  std::unique_ptr<follower> resumed; // --since K, started mid-way: resumes exactly after K
  std::uint64_t since = 0;
  for (int round = 1; round <= 2; ++round) {
    auto stop = sb.banger({"daemon", "stop"});
    // The daemon's log goes with the sandbox: on failure its tail is the only account left.
    BOOST_REQUIRE_MESSAGE(stop.exit_code == 0, "round " << round << ": " << stop.out << stop.err << "\nbangerd.log:\n"
                                                        << test::slurp(sb.state() / "bangerd.log"));
    // The followers outlive the daemon and say they wait for it.
    BOOST_REQUIRE(eventually([&] { return all_kinds.err().find("waiting for it to come back") != std::string::npos; }));
    BOOST_TEST(all_kinds.running());
    BOOST_TEST(starts.running());
    BOOST_TEST(web.running());
    if (round == 1)
      append_vm_events(sb, {journal::vm_command{"create", "{}", "bad_request: test"}, journal::note{"one"}});
    else
      append_vm_events(sb, {journal::note{"two"}});
    BOOST_REQUIRE(sb.banger({"daemon", "start"}).exit_code == 0);
    failed_import(sb, "k" + std::to_string(round));
    if (round == 1) {
      since = all_kinds.lines().size() > 3 ? all_kinds.lines()[3]["seq"].get<std::uint64_t>() : 3;
      resumed = std::make_unique<follower>(sb, "since", std::vector<std::string>{"--since", std::to_string(since)});
      // Connected before the next stop: a first connect that found no daemon would start one.
      BOOST_REQUIRE(eventually([&] { return !resumed->lines().empty(); }));
    }
  }
  auto all = json_lines(sb.banger({"events", "--json"}).out);
  auto last = all.back()["seq"].get<std::uint64_t>();
  BOOST_REQUIRE(eventually([&] {
    auto l = all_kinds.lines();
    auto r = resumed->lines();
    return !l.empty() && l.back()["seq"] == last && !r.empty() && r.back()["seq"] == last;
  }));
  std::this_thread::sleep_for(200ms); // anything extra (a duplicate) would arrive now
  for (auto* f : {&all_kinds, &starts, &web, resumed.get()})
    f->stop();

  // Every event from the first line through the last, once each, seq strictly +1.
  auto got = all_kinds.lines();
  BOOST_TEST(got.front()["seq"].get<std::uint64_t>() == 1u);
  for (std::size_t i = 1; i < got.size(); ++i)
    BOOST_TEST(got[i]["seq"].get<std::uint64_t>() == got[i - 1]["seq"].get<std::uint64_t>() + 1);
  same_events(got, all, "--follow");
  std::size_t stops = 0;
  for (const auto& e : got)
    stops += e["kind"] == "daemon_stopped";
  BOOST_TEST(stops == 2u);
  same_events(resumed->lines(), select(all, since), "--follow --since");
  same_events(starts.lines(), select(all, 0, [](const json& e) { return e["kind"] == "daemon_started"; }),
              "--follow --type daemon_started");
  BOOST_TEST(starts.lines().size() == 3u);
  same_events(web.lines(), select(all, 0, [](const json& e) { return e["stream"] == "vm/web"; }), "--follow --vm web");
  BOOST_TEST(web.lines().size() == 3u);
  BOOST_TEST(all_kinds.err().find("resuming after seq") != std::string::npos, all_kinds.err());
}

BOOST_AUTO_TEST_CASE(follow_does_not_start_the_daemon_it_waits_for) {
  sandbox sb;
  BOOST_REQUIRE(sb.banger({"daemon", "start"}).exit_code == 0);
  follower f(sb, "f", {});
  BOOST_REQUIRE(eventually([&] { return f.lines().size() == 1u; }));
  BOOST_REQUIRE(sb.banger({"daemon", "stop"}).exit_code == 0);
  BOOST_REQUIRE(eventually([&] { return f.err().find("waiting for it to come back") != std::string::npos; }));
  std::this_thread::sleep_for(1s);
  BOOST_TEST(sb.banger({"daemon", "status"}).exit_code == 3); // still not running
  BOOST_TEST(f.running());
  auto evs = f.lines();
  BOOST_REQUIRE(evs.size() == 2u);
  BOOST_TEST(evs[1]["kind"] == "daemon_stopped"); // delivered live, before the wait
  BOOST_TEST(evs[1]["seq"].get<int>() == evs[0]["seq"].get<int>() + 1);
  f.stop();
}

BOOST_AUTO_TEST_CASE(second_daemon_refused_and_stale_socket_replaced) {
  sandbox sb;
  // A stale socket file from a crashed daemon: bound, never unlinked, nobody listening.
  fs::create_directories(sb.runtime());
  fs::permissions(sb.runtime(), fs::perms::owner_all);
  {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, sb.socket().c_str());
    BOOST_REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    ::close(fd);
  }
  BOOST_REQUIRE(fs::exists(sb.socket()));
  auto start = sb.banger({"daemon", "start"});
  BOOST_REQUIRE_MESSAGE(start.exit_code == 0, start.err);
  BOOST_TEST(sb.banger({"ping"}).exit_code == 0);

  auto second = test::run({(sb.bin / "bangerd").string(), "--foreground"}, sb.env, 10s);
  BOOST_TEST(second.exit_code == 1);
  BOOST_TEST(second.err.find("already running") != std::string::npos, second.err);
  // The first daemon is unharmed.
  BOOST_TEST(sb.banger({"ping"}).exit_code == 0);
}

BOOST_AUTO_TEST_CASE(sigterm_stops_cleanly) {
  sandbox sb;
  BOOST_REQUIRE(sb.banger({"daemon", "start"}).exit_code == 0);
  int pid = sb.daemon_pid();
  BOOST_REQUIRE(pid > 0);
  BOOST_REQUIRE(::kill(pid, SIGTERM) == 0);
  BOOST_REQUIRE(eventually([&] { return !process_alive(pid); }));
  BOOST_TEST(!fs::exists(sb.socket()));
  auto h = json_lines(sb.replay({"history", "--json"}).out);
  BOOST_REQUIRE(!h.empty());
  BOOST_TEST(h.back()["kind"] == "daemon_stopped");
  BOOST_TEST(h.back()["payload"]["reason"] == "sigterm");
  BOOST_TEST(sb.replay({"verify"}).exit_code == 0);
}

BOOST_AUTO_TEST_CASE(usage_errors_exit_2_and_help_exits_0) {
  sandbox sb;
  BOOST_TEST(sb.banger({"no-such-command"}).exit_code == 2);
  BOOST_TEST(sb.banger({"events", "--since", "minus-five"}).exit_code == 2);
  BOOST_TEST(sb.banger({}).exit_code == 2);
  auto help = sb.banger({"daemon", "--help"});
  BOOST_TEST(help.exit_code == 0);
  BOOST_TEST(help.out.find("Examples:") != std::string::npos);
  BOOST_TEST(!fs::exists(sb.socket())); // none of that started a daemon
}

BOOST_AUTO_TEST_CASE(non_owner_is_refused) {
  if (::geteuid() != 0) {
    BOOST_TEST_MESSAGE("SKIPPED: non-owner tests switch to uids 65534/65533 with setpriv and need root");
    return;
  }
  // Binaries readable by other uids, whatever the build dir's permissions.
  test::temp_dir world{"banger-world"};
  fs::permissions(world.path, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                fs::perms::others_read | fs::perms::others_exec);
  for (const char* b : {"banger", "bangerd"})
    fs::copy_file(test::bin_dir() / b, world.path / b);

  // 1. A root daemon; uid 65534 cannot even reach its socket (0600 in a 0700 dir).
  sandbox rootsb;
  rootsb.bin = world.path;
  BOOST_REQUIRE(rootsb.banger({"daemon", "start"}).exit_code == 0);
  fs::permissions(rootsb.root.path, fs::perms::owner_all | fs::perms::others_exec | fs::perms::group_exec);
  auto nobody = rootsb.banger({"ping", "--json"}, {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"});
  BOOST_TEST(nobody.exit_code == 1);
  auto j = json::parse(nobody.out);
  BOOST_TEST(j["error"]["code"] == "unauthorized");
  BOOST_TEST(j["error"]["message"].get<std::string>().find("permission denied") != std::string::npos);

  // 2. A daemon owned by 65534, whose socket a careless admin made world-writable: 65533 connects,
  //    and SO_PEERCRED refuses it; root and the owner are served.
  test::temp_dir base{"banger-nobody"};
  fs::permissions(base.path, fs::perms::all);
  BOOST_REQUIRE(::chown(base.path.c_str(), 65534, 65534) == 0);
  sandbox owned(base.path);
  owned.bin = world.path;
  std::vector<std::string> as_owner{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"};
  std::vector<std::string> as_other{"setpriv", "--reuid=65533", "--regid=65533", "--clear-groups"};
  auto st = owned.banger({"daemon", "start"}, as_owner);
  BOOST_REQUIRE_MESSAGE(st.exit_code == 0, st.err);
  fs::permissions(owned.runtime(), fs::perms::owner_all | fs::perms::others_exec);
  fs::permissions(owned.socket(), fs::perms::all);

  auto other = owned.banger({"ping"}, as_other);
  BOOST_TEST(other.exit_code == 1);
  BOOST_TEST(
    std::regex_search(other.err, std::regex(R"(^banger: uid 65533 may not use this bangerd.*\(op-[0-9a-f]{6}\)\n$)")),
    other.err);
  auto other_json = owned.banger({"status", "--json"}, as_other);
  BOOST_TEST(json::parse(other_json.out)["error"]["code"] == "unauthorized");
  BOOST_TEST(owned.banger({"ping"}, as_owner).exit_code == 0);
  BOOST_TEST(owned.banger({"ping"}).exit_code == 0); // root
  auto log = read_file(owned.state() / "bangerd.log");
  BOOST_TEST(log->find("refused peer") != std::string::npos);
  BOOST_TEST(owned.banger({"daemon", "stop"}, as_owner).exit_code == 0);
}

BOOST_AUTO_TEST_SUITE_END()
