// Drives the real banger-agent binary, serving on a unix socket on the host (its --listen
// mode), through a Cap'n Proto client: the same RPCs the daemon makes over virtio-serial.
#include <csignal>
#include <fstream>
#include <map>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include "tests/support/agent_client.hpp"
#include "tests/support/mise.hpp"
#include "tests/support/proc.hpp"

namespace fs = std::filesystem;
using namespace banger;
using namespace std::chrono_literals;

namespace {

struct agent_fixture {
  test::temp_dir dir{"banger-agent"};
  fs::path sock = dir.path / "agent.sock";
  pid_t pid = -1;
  kj::AsyncIoContext io = kj::setupAsyncIo();
  test::agent_connection conn;

  agent_fixture() {
    pid = test::spawn({(test::bin_dir() / "banger-agent").string(), "--listen", sock.string()}, {}, dir.path);
    for (int i = 0; i < 500 && !fs::exists(sock); ++i)
      std::this_thread::sleep_for(10ms);
    BOOST_TEST_REQUIRE(fs::exists(sock));
    conn.open(io, sock);
  }
  ~agent_fixture() {
    conn.close();
    ::kill(pid, SIGTERM);
    ::waitpid(pid, nullptr, 0);
  }
  agent_rpc::Agent::Client& agent() { return conn.agent(); }

  /// A second agent, serving in `d` with `env` (what banger-init gives it), connected as `c`.
  pid_t second_agent(const test::temp_dir& d, const std::map<std::string, std::string>& env,
                     test::agent_connection& c) {
    auto sock2 = d.path / "agent.sock";
    pid_t p2 = test::spawn({(test::bin_dir() / "banger-agent").string(), "--listen", sock2.string()}, env, d.path);
    for (int i = 0; i < 500 && !fs::exists(sock2); ++i)
      std::this_thread::sleep_for(10ms);
    BOOST_TEST_REQUIRE(fs::exists(sock2));
    c.open(io, sock2);
    return p2;
  }

  test::exec_result run(const std::vector<std::string>& argv, const std::string& stdin_data = {}, bool tty = false,
                        const std::string& cwd = "/", const std::vector<std::string>& env = {},
                        const std::string& workspace = {}) {
    return conn.run(io, argv, stdin_data, tty, cwd, env, workspace);
  }
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(guest_agent, agent_fixture)

// banger-init starts the agent before eth0 and /root are ready and creates a file once they are:
// ping answers at once, commands wait for the file.
BOOST_AUTO_TEST_CASE(commands_wait_for_the_ready_file) {
  test::temp_dir d{"banger-agent-ready"};
  auto ready = d.path / "ready";
  test::agent_connection c2;
  pid_t p2 = second_agent(d, {{"BANGER_READY_FILE", ready.string()}}, c2);
  auto ping = c2.agent().pingRequest().send().wait(io.waitScope);
  BOOST_TEST(ping.getUptimeMs() > 0u);
  std::thread maker([&] {
    std::this_thread::sleep_for(300ms);
    std::ofstream(ready.string()) << "";
  });
  // Run before the file exists, this would fail: the gate holds it until the file is there.
  auto t0 = std::chrono::steady_clock::now();
  auto r = c2.run(io, {"sh", "-c", "test -e '" + ready.string() + "'"}, {}, false);
  auto waited = std::chrono::steady_clock::now() - t0;
  maker.join();
  BOOST_TEST(r.code == 0);
  // Opened by the file appearing (inotify), not by the 30 s give-up that also lets it run.
  BOOST_TEST(waited < 20s);
  c2.close();
  ::kill(p2, SIGTERM);
  ::waitpid(p2, nullptr, 0);
}

// A guest restored from a boot snapshot gets its settings through configure: once, in one
// line, and only where init waits for them (BANGER_SETTINGS_FILE).
BOOST_AUTO_TEST_CASE(configure_writes_the_settings_once_and_only_where_init_waits) {
  auto configure = [&](agent_rpc::Agent::Client& a, const std::string& settings, std::size_t entropy_bytes) {
    auto req = a.configureRequest();
    req.setSettings(settings);
    req.setRealtimeNs(0); // the host's clock is not the test's to set
    std::vector<kj::byte> bytes(entropy_bytes, 0x5a);
    req.setEntropy(kj::arrayPtr(bytes.data(), bytes.size()));
    auto r = req.send().wait(io.waitScope);
    return std::make_pair(r.getFailure().getCode(), std::string(r.getFailure().getMessage().cStr()));
  };
  // The fixture's agent has no settings file: it booted with its settings.
  auto refused = configure(agent(), "banger.hostname=x", 0);
  BOOST_TEST(refused.first == 6); // unavailable
  BOOST_TEST(refused.second.find("not waiting") != std::string::npos);

  test::temp_dir d{"banger-agent-settings"};
  auto settings = d.path / "settings";
  test::agent_connection c2;
  pid_t p2 = second_agent(d, {{"BANGER_SETTINGS_FILE", settings.string()}}, c2);
  BOOST_TEST(configure(c2.agent(), "banger.hostname=a\nbanger.ip=x", 0).first == 3); // two lines
  BOOST_TEST(configure(c2.agent(), "banger.hostname=a", 513).first == 3);            // too much entropy
  BOOST_TEST(!fs::exists(settings));
  auto ok = configure(c2.agent(), "banger.hostname=restored banger.mac=52:54:00:00:00:01", 64);
  BOOST_TEST(ok.first == 0, ok.second);
  std::ifstream in(settings);
  std::string line;
  std::getline(in, line);
  BOOST_TEST(line == "banger.hostname=restored banger.mac=52:54:00:00:00:01");
  auto again = configure(c2.agent(), "banger.hostname=other", 0);
  BOOST_TEST(again.first == 2); // already_exists
  std::ifstream in2(settings);
  std::getline(in2, line);
  BOOST_TEST(line == "banger.hostname=restored banger.mac=52:54:00:00:00:01");
  for (const auto& e : fs::directory_iterator(d.path)) // no temporaries left
    BOOST_TEST(e.path().filename().string().find(".tmp") == std::string::npos, e.path());
  c2.close();
  ::kill(p2, SIGTERM);
  ::waitpid(p2, nullptr, 0);
}

BOOST_AUTO_TEST_CASE(ping_answers_with_version) {
  auto r = agent().pingRequest().send().wait(io.waitScope);
  BOOST_TEST(std::string(r.getVersion().cStr()).size() > 0u);
  BOOST_TEST(r.getUptimeMs() > 0u);
}

BOOST_AUTO_TEST_CASE(exit_codes_and_signals) {
  BOOST_TEST(run({"sh", "-c", "exit 0"}).code == 0);
  BOOST_TEST(run({"sh", "-c", "exit 1"}).code == 1);
  auto r42 = run({"sh", "-c", "exit 42"});
  BOOST_TEST(!r42.signaled);
  BOOST_TEST(r42.code == 42);
  auto killed = run({"sh", "-c", "kill -9 $$"});
  BOOST_TEST(killed.signaled);
  BOOST_TEST(killed.code == 9);
}

BOOST_AUTO_TEST_CASE(stdout_and_stderr_are_kept_apart) {
  auto r = run({"sh", "-c", "echo to-out; echo to-err >&2; echo more-out"});
  BOOST_TEST(r.out == "to-out\nmore-out\n");
  BOOST_TEST(r.err == "to-err\n");
}

BOOST_AUTO_TEST_CASE(ten_megabytes_of_output_arrive_intact) {
  auto r = run({"seq", "1", "1400000"});
  std::string expected;
  expected.reserve(11u << 20);
  for (int i = 1; i <= 1400000; ++i) {
    expected += std::to_string(i);
    expected += '\n';
  }
  BOOST_TEST(expected.size() > 10u * 1000 * 1000);
  BOOST_TEST(r.out.size() == expected.size());
  BOOST_TEST((r.out == expected));
  BOOST_TEST(r.code == 0);
}

BOOST_AUTO_TEST_CASE(stdin_is_passed) {
  auto r = run({"cat"}, "hello from the host\n");
  BOOST_TEST(r.out == "hello from the host\n");
  BOOST_TEST(r.code == 0);
}

BOOST_AUTO_TEST_CASE(tty_runs_on_a_terminal) {
  auto r = run({"sh", "-c", "tty; test -t 0 && exit 7"}, {}, true);
  BOOST_TEST(r.out.find("/dev/pts/") != std::string::npos, r.out);
  BOOST_TEST(r.code == 7);
}

// Plain commands are started with posix_spawn, terminal ones with fork: both give the child a
// session of its own, default signal dispositions (the agent ignores SIGPIPE), /dev/null as
// stdin when none is passed, and the cwd asked for.
BOOST_AUTO_TEST_CASE(commands_get_their_own_session_default_signals_and_no_stdin) {
  auto r =
    run({"sh", "-c", "test \"$(cut -d' ' -f6 /proc/$$/stat)\" = \"$$\" || exit 3; yes | head -n1; cat; pwd; exit 5"},
        {}, false, "/tmp");
  BOOST_TEST(r.out == "y\n/tmp\n");
  BOOST_TEST(r.err == ""); // with SIGPIPE ignored, yes would report a broken pipe
  BOOST_TEST(r.code == 5);
  auto t =
    run({"sh", "-c", "test \"$(cut -d' ' -f6 /proc/$$/stat)\" = \"$$\" || exit 3; pwd; exit 6"}, {}, true, "/tmp");
  BOOST_TEST(t.out.find("/tmp") != std::string::npos, t.out);
  BOOST_TEST(t.code == 6);
}

BOOST_AUTO_TEST_CASE(a_missing_cwd_is_a_not_found_failure_naming_it) {
  for (bool tty : {false, true}) {
    auto r = run({"true"}, {}, tty, "/no/such/dir");
    BOOST_TEST(r.failure_code == 1); // errc::not_found
    BOOST_TEST(r.failure.find("/no/such/dir") != std::string::npos, r.failure);
  }
}

BOOST_AUTO_TEST_CASE(missing_program_is_a_not_found_failure) {
  auto r = run({"/no/such/program"});
  BOOST_TEST(r.failure_code == 1); // errc::not_found
  BOOST_TEST(r.failure.find("/no/such/program") != std::string::npos, r.failure);
}

// The real mise (tests/support/mise.hpp): in a workspace, a guest with mise runs the command
// through `mise exec --` with the workspace trusted first; elsewhere, or without mise, as it is.
BOOST_AUTO_TEST_CASE(commands_in_a_workspace_run_through_mise_when_the_guest_has_it) {
  auto mise = test::mise_binary();
  test::temp_dir d{"banger-agent-mise"};
  auto bin = d.path / "bin";
  fs::create_directories(bin);
  fs::create_symlink(mise, bin / "mise");
  auto ws = d.path / "ws";
  fs::create_directories(ws / "sub");
  std::ofstream(ws / ".mise.toml") << "[env]\nGREETING = \"from mise\"\n";
  // Paranoid mode: `mise exec` does not trust a config itself, so the command sees the
  // workspace's environment only when the agent trusted it first.
  std::vector<std::string> env{"PATH=" + bin.string() + ":/usr/bin:/bin", "HOME=" + (d.path / "home").string(),
                               "MISE_PARANOID=1"};
  auto trusted = [&] { return run({"sh", "-c", "mise trust --show"}, {}, false, ws.string(), env).out; };
  BOOST_TEST(trusted().find("untrusted") != std::string::npos, trusted());
  auto in_ws = run({"sh", "-c", "echo \"$GREETING\""}, {}, false, (ws / "sub").string(), env, ws.string());
  BOOST_TEST(in_ws.code == 0, in_ws.err);
  BOOST_TEST(in_ws.out == "from mise\n", in_ws.out << in_ws.err);
  BOOST_TEST(trusted().find(": trusted") != std::string::npos, trusted());
  // The exit code and stderr come through mise as they are.
  auto failed = run({"sh", "-c", "echo oops >&2; exit 7"}, {}, false, ws.string(), env, ws.string());
  BOOST_TEST(failed.code == 7);
  BOOST_TEST(failed.err == "oops\n");
  // Not in a workspace: no mise.
  BOOST_TEST(run({"sh", "-c", "echo \"[$GREETING]\""}, {}, false, ws.string(), env).out == "[]\n");
  // A guest without mise: the command as it is.
  std::vector<std::string> plain{"PATH=/usr/bin:/bin", "HOME=" + (d.path / "home").string()};
  auto without = run({"sh", "-c", "echo \"[$GREETING]\""}, {}, false, ws.string(), plain, ws.string());
  BOOST_TEST(without.code == 0, without.err);
  BOOST_TEST(without.out == "[]\n");
}

BOOST_AUTO_TEST_CASE(file_round_trip_with_mode_and_owner) {
  auto path = (dir.path / "sub/dir/file.txt").string();
  std::string content = "line one\nline two\n";
  auto w = agent().writeFileRequest();
  w.setPath(path);
  w.setData(kj::arrayPtr(reinterpret_cast<const kj::byte*>(content.data()), content.size()));
  w.setMode(0640);
  w.setUid(1234);
  w.setGid(5678);
  w.setMakeParents(true);
  auto wr = w.send().wait(io.waitScope);
  BOOST_TEST_REQUIRE(wr.getFailure().getCode() == 0, wr.getFailure().getMessage().cStr());
  struct stat st {};
  BOOST_REQUIRE(::stat(path.c_str(), &st) == 0);
  BOOST_TEST((st.st_mode & 07777) == 0640u);
  if (::geteuid() == 0) {
    BOOST_TEST(st.st_uid == 1234u);
    BOOST_TEST(st.st_gid == 5678u);
  }
  auto r = agent().readFileRequest();
  r.setPath(path);
  auto rr = r.send().wait(io.waitScope);
  BOOST_TEST_REQUIRE(rr.getFailure().getCode() == 0, rr.getFailure().getMessage().cStr());
  auto data = rr.getData();
  BOOST_TEST(std::string(reinterpret_cast<const char*>(data.begin()), data.size()) == content);
  BOOST_TEST(rr.getMode() == 0640u);

  auto bad = agent().writeFileRequest();
  bad.setPath((dir.path / "../escape").string());
  BOOST_TEST(bad.send().wait(io.waitScope).getFailure().getCode() == 3); // bad_request
  auto missing = agent().readFileRequest();
  missing.setPath((dir.path / "nope").string());
  BOOST_TEST(missing.send().wait(io.waitScope).getFailure().getCode() == 1);
}

BOOST_AUTO_TEST_CASE(ports_lists_a_listener) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  BOOST_REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  BOOST_REQUIRE(::listen(fd, 1) == 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  auto r = agent().portsRequest().send().wait(io.waitScope);
  bool found = false;
  for (auto p : r.getPorts())
    if (p.getPort() == port && std::string(p.getAddress().cStr()) == "127.0.0.1") {
      found = true;
      BOOST_TEST(std::string(p.getProcess().cStr()).find(std::to_string(::getpid()) + "/") == 0u);
    }
  BOOST_TEST(found);
  ::close(fd);
}

BOOST_AUTO_TEST_CASE(stats_are_plausible_and_poweroff_and_mounts_are_refused_on_the_host) {
  auto s = agent().statsRequest().send().wait(io.waitScope).getStats();
  BOOST_TEST(s.getCpuCount() >= 1u);
  BOOST_TEST(s.getMemTotalBytes() > s.getMemAvailableBytes());
  BOOST_TEST(s.getRootTotalBytes() > 0u);
  auto p = agent().poweroffRequest().send().wait(io.waitScope);
  BOOST_TEST(p.getFailure().getCode() == 6); // unavailable
  // The host's /root is never unmounted or mounted over by a test's agent.
  auto r = agent().releaseWorkDiskRequest().send().wait(io.waitScope);
  BOOST_TEST(r.getFailure().getCode() == 6);
  BOOST_TEST(std::string(r.getFailure().getMessage().cStr()).find("not running in a guest") != std::string::npos);
  auto a = agent().attachWorkDiskRequest().send().wait(io.waitScope);
  BOOST_TEST(a.getFailure().getCode() == 6);
}

BOOST_AUTO_TEST_CASE(dropping_the_process_kills_it) {
  std::string out, err;
  auto req = agent().execRequest();
  auto a = req.initSpec().initArgv(3);
  a.set(0, "sh");
  a.set(1, "-c");
  a.set(2, "echo $$; exec sleep 100");
  req.setStdout(kj::heap<test::collect_sink>(out));
  req.setStderr(kj::heap<test::collect_sink>(err));
  {
    auto resp = req.send().wait(io.waitScope);
    auto proc = resp.getProcess();
    for (int i = 0; i < 200 && out.empty(); ++i)
      io.provider->getTimer().afterDelay(10 * kj::MILLISECONDS).wait(io.waitScope);
  }
  BOOST_REQUIRE(!out.empty());
  int child = std::stoi(out);
  // The capability is released; the agent kills and reaps the child.
  bool gone = false;
  for (int i = 0; i < 300 && !gone; ++i) {
    agent().pingRequest().send().wait(io.waitScope);
    gone = !fs::exists("/proc/" + std::to_string(child));
    if (!gone)
      std::this_thread::sleep_for(10ms);
  }
  BOOST_TEST(gone);
}

BOOST_AUTO_TEST_SUITE_END()
