// VM lifecycle end to end: the real CLI, daemon, root helper, QEMU (TCG here) and guest agent,
// inside a network namespace this test creates (the daemon, the helper's bridge and taps, and
// every guest live in it; it has no route out). A busybox image serves most cases; the ssh case
// builds a debootstrap image (its debootstrap tree is cached across runs in
// $BANGER_TEST_CACHE/xdg-cache, keyed by suite, mirror and packages).
//
// After each case: no VM left unless the case keeps one on purpose, no tap in the namespace, no
// QEMU process of this sandbox, no VM directory.
#include <csignal>
#include <sys/wait.h>
#include <thread>

#include "tests/e2e/vm_world.hpp"

namespace fs = std::filesystem;
using namespace banger;
using namespace banger::test;
using namespace std::chrono_literals;

namespace {

world& the_world() {
  static world w;
  return w;
}

} // namespace

BOOST_AUTO_TEST_SUITE(vm_lifecycle)

BOOST_AUTO_TEST_CASE(run_returns_the_commands_exit_code_and_output) {
  auto& w = the_world();
  auto r = w.cli({"vm", "run", "--rm", "--", "sh", "-c", "echo to-out; echo to-err >&2; exit 42"});
  BOOST_TEST(r.exit_code == 42, r.err);
  BOOST_TEST(r.out == "to-out\n");
  BOOST_TEST(r.err.find("to-err\n") != std::string::npos, r.err);
  BOOST_TEST(r.err.find("to-out") == std::string::npos); // stdout and stderr stay apart
  BOOST_TEST(w.vms().empty());
  BOOST_TEST(w.leaks() == "");
}

BOOST_AUTO_TEST_CASE(exec_exit_codes_and_stdin) {
  auto& w = the_world();
  auto c = w.cli({"vm", "create", "--name", "ex1"});
  BOOST_TEST_REQUIRE(c.exit_code == 0, c.err);
  BOOST_TEST(c.out == "ex1\n");
  BOOST_TEST(c.err.find("[vm create] ready in") != std::string::npos, c.err);
  BOOST_TEST(w.cli({"vm", "exec", "ex1", "--", "true"}).exit_code == 0);
  BOOST_TEST(w.cli({"vm", "exec", "ex1", "--", "false"}).exit_code == 1);
  BOOST_TEST(w.cli({"vm", "exec", "ex1", "--", "sh", "-c", "exit 42"}).exit_code == 42);
  auto missing = w.cli({"vm", "exec", "ex1", "--", "no-such-program"});
  BOOST_TEST(missing.exit_code != 0);
  auto u = w.cli({"vm", "exec", "ex1", "--", "hostname"});
  BOOST_TEST(u.out == "ex1\n");
  // stdin is passed: the guest's cat echoes what the test pipes in.
  auto argv = w.command({"vm", "exec", "ex1", "--", "sh", "-c", "cat > /root/in; wc -c < /root/in"});
  std::string joined;
  for (const auto& a : argv)
    joined += "'" + a + "' ";
  auto piped = run({"/bin/sh", "-c", "printf 'hello from the host' | " + joined}, w.sb.env, 60s);
  BOOST_TEST(piped.exit_code == 0, piped.err);
  BOOST_TEST(piped.out.find("19") != std::string::npos, piped.out);
  // The guest is on the bridge with its leased address; the namespace reaches it.
  auto show = w.cli({"vm", "show", "ex1", "--json"});
  auto info = nlohmann::json::parse(show.out);
  BOOST_TEST(info["ip"].get<std::string>().rfind("172.30.0.", 0) == 0u);
  auto addr = w.cli({"vm", "exec", "ex1", "--", "ip", "-4", "-o", "addr", "show", "eth0"});
  BOOST_TEST(addr.out.find(info["ip"].get<std::string>() + "/24") != std::string::npos, addr.out);
  // The serial console is the VM's log.
  auto logs = w.cli({"vm", "logs", "ex1"});
  BOOST_TEST(logs.exit_code == 0, logs.err);
  BOOST_TEST(logs.out.find("banger-init") != std::string::npos, logs.out);
  // The VM's own events: its stream only, creation through running.
  auto evs = w.cli({"events", "--json", "--vm", "ex1"});
  BOOST_TEST(evs.exit_code == 0, evs.err);
  std::vector<std::string> kinds;
  for (const auto& e : json_lines(evs.out)) {
    BOOST_TEST(e["stream"] == "vm/ex1");
    kinds.push_back(e["kind"].get<std::string>());
  }
  BOOST_TEST_REQUIRE(kinds.size() >= 2u);
  BOOST_TEST(kinds[0] == "vm_command"); // the create, recorded with its decision
  BOOST_TEST(kinds[1] == "vm_created");
  BOOST_TEST(kinds.back() == "vm_running");
  BOOST_TEST(w.cli({"events", "--vm", "Bad_Name"}).exit_code == 2);
  // A kernel or image in use is not removed.
  auto rm = w.cli({"image", "rm", "default"});
  BOOST_TEST(rm.exit_code != 0);
  BOOST_TEST(rm.err.find("used by 1 VM") != std::string::npos, rm.err);
  BOOST_TEST(w.cli({"vm", "delete", "--force", "ex1"}).exit_code == 0);
  BOOST_TEST(w.vms().empty());
  BOOST_TEST(w.leaks() == "");
}

BOOST_AUTO_TEST_CASE(stop_start_keeps_data_and_set_changes_the_shape) {
  auto& w = the_world();
  BOOST_TEST_REQUIRE(w.cli({"vm", "create", "--name", "ss1"}).exit_code == 0);
  BOOST_TEST(
    w.cli({"vm", "exec", "ss1", "--", "sh", "-c", "echo precious > /root/data; echo root > /kept"}).exit_code == 0);
  auto running_set = w.cli({"vm", "set", "ss1", "--vcpu", "2"});
  BOOST_TEST(running_set.exit_code != 0);
  BOOST_TEST(running_set.err.find("stop") != std::string::npos, running_set.err);
  auto stop = w.cli({"vm", "stop", "ss1"});
  BOOST_TEST_REQUIRE(stop.exit_code == 0, stop.err);
  auto vms = w.vms();
  BOOST_TEST_REQUIRE(vms.size() == 1u);
  BOOST_TEST(vms[0]["state"] == "stopped");
  BOOST_TEST(w.leaks().find("tap") == std::string::npos); // the tap goes at stop
  BOOST_TEST(w.leaks().find("qemu") == std::string::npos);
  BOOST_TEST(w.cli({"vm", "exec", "ss1", "--", "true"}).exit_code != 0); // not running
  BOOST_TEST(w.cli({"vm", "set", "ss1", "--vcpu", "2"}).exit_code == 0);
  auto start = w.cli({"vm", "start", "ss1"});
  BOOST_TEST_REQUIRE(start.exit_code == 0, start.err);
  BOOST_TEST(w.cli({"vm", "exec", "ss1", "--", "cat", "/root/data"}).out == "precious\n");
  BOOST_TEST(w.cli({"vm", "exec", "ss1", "--", "cat", "/kept"}).out == "root\n");
  BOOST_TEST(w.cli({"vm", "exec", "ss1", "--", "nproc"}).out == "2\n");
  auto restart = w.cli({"vm", "restart", "ss1"});
  BOOST_TEST(restart.exit_code == 0, restart.err);
  BOOST_TEST(w.cli({"vm", "exec", "ss1", "--", "cat", "/root/data"}).out == "precious\n");
  BOOST_TEST(w.cli({"vm", "kill", "ss1"}).exit_code == 0);
  BOOST_TEST(w.cli({"vm", "delete", "ss1"}).exit_code == 0);
  BOOST_TEST(w.leaks() == "");
}

// A VM's first start resumes the boot snapshot of its shape (docs/boot-snapshots.md), made by the
// first VM of that shape in this world; each restored guest still has its own name, MAC, address,
// clock and random stream, and a later start of the same VM boots.
BOOST_AUTO_TEST_CASE(first_starts_resume_one_boot_snapshot_with_their_own_identity) {
  auto& w = the_world();
  BOOST_TEST_REQUIRE(w.cli({"vm", "create", "--name", "bs1"}).exit_code == 0);
  // One snapshot for the shape, complete (no build left half-done).
  std::vector<fs::path> snapshots;
  for (const auto& e : fs::recursive_directory_iterator(w.sb.state() / "cache" / "vm-templates"))
    if (e.is_directory() && e.path().filename().string().rfind("boot-", 0) == 0)
      snapshots.push_back(e.path());
  BOOST_TEST_REQUIRE(snapshots.size() == 1u);
  for (auto f : {"ram", "state", "overlay.qcow2"})
    BOOST_TEST(fs::exists(snapshots[0] / f), f);
  BOOST_TEST(snapshots[0].filename().string().find(".tmp") == std::string::npos);
  // A guest resumes with the clock it was saved with: let the snapshot age past the skew
  // allowed below, so that a restored clock left alone shows.
  auto age = fs::file_time_type::clock::now() - fs::last_write_time(snapshots[0] / "state");
  if (age < 8s)
    std::this_thread::sleep_for(8s - age);
  BOOST_TEST_REQUIRE(w.cli({"vm", "create", "--name", "bs2"}).exit_code == 0);

  struct seen {
    std::string ip, mac, random;
    long clock_skew;
  };
  auto look = [&](const std::string& vm) {
    // Restored, not booted: the console has no boot of its own, only the settings it was given.
    auto logs = w.cli({"vm", "logs", vm});
    BOOST_TEST(logs.out.find("] started") == std::string::npos, logs.out);
    BOOST_TEST(logs.out.find("settings from the host: banger.hostname=" + vm + " ") != std::string::npos, logs.out);
    BOOST_TEST(w.cli({"vm", "exec", vm, "--", "grep", "-q", "banger.await", "/proc/cmdline"}).exit_code == 0);
    BOOST_TEST(w.cli({"vm", "exec", vm, "--", "hostname"}).out == vm + "\n");
    seen s;
    s.ip = nlohmann::json::parse(w.cli({"vm", "show", vm, "--json"}).out)["ip"].get<std::string>();
    auto addr = w.cli({"vm", "exec", vm, "--", "ip", "-4", "-o", "addr", "show", "eth0"});
    BOOST_TEST(addr.out.find(s.ip + "/24") != std::string::npos, addr.out);
    s.mac = w.cli({"vm", "exec", vm, "--", "cat", "/sys/class/net/eth0/address"}).out;
    BOOST_TEST(logs.out.find("banger.mac=" + s.mac.substr(0, 17)) != std::string::npos, s.mac);
    s.random = w.cli({"vm", "exec", vm, "--", "sh", "-c", "head -c 16 /dev/urandom | od -An -tx1"}).out;
    auto guest_now = w.cli({"vm", "exec", vm, "--", "date", "+%s"}).out;
    s.clock_skew = std::labs(std::atol(guest_now.c_str()) - static_cast<long>(::time(nullptr)));
    return s;
  };
  auto a = look("bs1");
  auto b = look("bs2");
  BOOST_TEST(a.ip != b.ip);
  BOOST_TEST(a.mac != b.mac);
  BOOST_TEST(a.random != b.random); // the snapshot's random state was reseeded in each
  BOOST_TEST(a.clock_skew <= 3);    // the wall clock is the host's, not the snapshot's
  BOOST_TEST(b.clock_skew <= 3);
  // Both on the bridge at once, each reachable at its own address (no MAC or address clash).
  auto ping = w.cli({"vm", "exec", "bs1", "--", "ping", "-c", "1", "-W", "3", b.ip});
  BOOST_TEST(ping.exit_code == 0, ping.out + ping.err);
  auto gw = w.cli({"vm", "exec", "bs2", "--", "ping", "-c", "1", "-W", "3", "172.30.0.1"});
  BOOST_TEST(gw.exit_code == 0, gw.out + gw.err);

  // Its second start boots from its own disk, keeping what the restored guest wrote.
  BOOST_TEST(w.cli({"vm", "exec", "bs1", "--", "sh", "-c", "echo kept > /root/note; echo kept > /note"}).exit_code ==
             0);
  BOOST_TEST_REQUIRE(w.cli({"vm", "stop", "bs1"}).exit_code == 0);
  BOOST_TEST_REQUIRE(w.cli({"vm", "start", "bs1"}).exit_code == 0);
  BOOST_TEST(w.cli({"vm", "logs", "bs1"}).out.find("] started") != std::string::npos);
  BOOST_TEST(w.cli({"vm", "exec", "bs1", "--", "grep", "-q", "banger.await", "/proc/cmdline"}).exit_code == 1);
  BOOST_TEST(w.cli({"vm", "exec", "bs1", "--", "cat", "/root/note", "/note"}).out == "kept\nkept\n");
  BOOST_TEST(w.cli({"vm", "exec", "bs1", "--", "hostname"}).out == "bs1\n");
  BOOST_TEST(w.cli({"vm", "delete", "--force", "bs1"}).exit_code == 0);
  BOOST_TEST(w.cli({"vm", "delete", "--force", "bs2"}).exit_code == 0);

  // A snapshot QEMU cannot load (as after a QEMU upgrade): the VM boots instead, says why in
  // its console, and the snapshot is dropped; the next first start makes a new one.
  fs::resize_file(snapshots[0] / "state", 100);
  auto bs3 =
    w.cli({"vm", "run", "--rm", "--name", "bs3", "--", "sh", "-c", "hostname; grep -c banger.await /proc/cmdline"});
  BOOST_TEST(bs3.exit_code == 1, bs3.err); // grep -c found none: booted
  BOOST_TEST(bs3.out == "bs3\n0\n", bs3.out);
  BOOST_TEST(!fs::exists(snapshots[0]));
  // Two first starts at once with no snapshot: one makes it while the other waits, and both
  // resume it.
  temp_dir out{"banger-bs"};
  std::vector<int> pids;
  for (std::string vm : {"bs4", "bs5"}) {
    fs::create_directories(out.path / vm);
    pids.push_back(
      spawn(w.command({"vm", "run", "--rm", "--name", vm, "--", "grep", "-c", "banger.await", "/proc/cmdline"}),
            w.sb.env, out.path / vm));
  }
  for (int pid : pids) {
    int status = 0;
    BOOST_TEST_REQUIRE(::waitpid(pid, &status, 0) == pid);
    BOOST_TEST((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  }
  for (std::string vm : {"bs4", "bs5"})
    BOOST_TEST(slurp(out.path / vm / "spawn.out") == "1\n", slurp(out.path / vm / "spawn.err"));
  BOOST_TEST(fs::exists(snapshots[0] / "state"));
  BOOST_TEST(fs::file_size(snapshots[0] / "state") > 100u);
  std::size_t made = 0;
  for (const auto& e : fs::directory_iterator(snapshots[0].parent_path()))
    made += e.path().filename().string().rfind("boot-", 0) == 0 && e.is_directory();
  BOOST_TEST(made == 1u);
  BOOST_TEST(w.leaks() == "");
}

// `vm pause` / `vm resume` (QMP stop/cont): a paused VM keeps its VMM, memory and resources, is
// shown as paused, refuses what needs its guest with a message that says to resume it, is not
// taken for dead by the liveness check, and stops and force-deletes cleanly.
BOOST_AUTO_TEST_CASE(pause_and_resume) {
  auto& w = the_world();
  BOOST_TEST_REQUIRE(w.cli({"vm", "create", "--name", "pz1"}).exit_code == 0);
  BOOST_TEST_REQUIRE(w.cli({"vm", "exec", "pz1", "--", "sh", "-c", "echo kept > /root/p"}).exit_code == 0);
  auto pause = w.cli({"vm", "pause", "pz1"});
  BOOST_TEST_REQUIRE(pause.exit_code == 0, pause.err);
  BOOST_TEST(pause.out.find("paused pz1") != std::string::npos, pause.out);
  auto ps = w.cli({"ps"});
  BOOST_TEST(ps.out.find("paused") != std::string::npos, ps.out);
  auto info = nlohmann::json::parse(w.cli({"vm", "show", "pz1", "--json"}).out);
  BOOST_TEST(info["state"] == "paused");
  BOOST_TEST(info["pid"].get<int>() > 0);
  int pid = info["pid"].get<int>();
  BOOST_TEST(process_alive(pid));
  for (auto refused : {std::vector<std::string>{"vm", "exec", "pz1", "--", "true"},
                       std::vector<std::string>{"vm", "ssh", "pz1", "--", "true"}}) {
    auto r = w.cli(refused);
    BOOST_TEST(r.exit_code != 0, refused[1]);
    BOOST_TEST(r.err.find("paused: resume it first (`banger vm resume pz1`)") != std::string::npos, r.err);
  }
  auto again = w.cli({"vm", "pause", "pz1"});
  BOOST_TEST(again.exit_code != 0);
  BOOST_TEST(again.err.find("paused already") != std::string::npos, again.err);
  BOOST_TEST(w.cli({"vm", "set", "pz1", "--vcpu", "2"}).exit_code != 0);
  BOOST_TEST(w.cli({"vm", "delete", "pz1"}).exit_code != 0); // without --force: still there
  // Several liveness checks (every 2 s) later it is still paused, with the same VMM.
  std::this_thread::sleep_for(5s);
  info = nlohmann::json::parse(w.cli({"vm", "show", "pz1", "--json"}).out);
  BOOST_TEST(info["state"] == "paused", info.dump());
  BOOST_TEST(info["pid"] == pid);
  auto resume = w.cli({"vm", "resume", "pz1"});
  BOOST_TEST_REQUIRE(resume.exit_code == 0, resume.err);
  BOOST_TEST(w.cli({"vm", "exec", "pz1", "--", "cat", "/root/p"}).out == "kept\n");
  BOOST_TEST(w.cli({"vm", "resume", "pz1"}).err.find("not paused") != std::string::npos);
  // A paused VM stops cleanly (it runs again for its poweroff) and keeps its data.
  BOOST_TEST_REQUIRE(w.cli({"vm", "pause", "pz1"}).exit_code == 0);
  auto stop = w.cli({"vm", "stop", "pz1", "--json"});
  BOOST_TEST_REQUIRE(stop.exit_code == 0, stop.err);
  auto stopped = nlohmann::json::parse(stop.out);
  BOOST_TEST(stopped["state"] == "stopped");
  BOOST_TEST(stopped["last_error"] == "", stopped.dump()); // a clean stop, not a kill
  BOOST_TEST(w.leaks().find("tap") == std::string::npos);
  // Started again, paused, and deleted with --force: nothing is left.
  BOOST_TEST_REQUIRE(w.cli({"vm", "start", "pz1"}).exit_code == 0);
  BOOST_TEST(w.cli({"vm", "exec", "pz1", "--", "cat", "/root/p"}).out == "kept\n");
  BOOST_TEST_REQUIRE(w.cli({"vm", "pause", "pz1"}).exit_code == 0);
  auto del = w.cli({"vm", "delete", "--force", "pz1"});
  BOOST_TEST(del.exit_code == 0, del.err);
  BOOST_TEST(w.leaks() == "");
  // The journal has the pauses and resumes, and its recorded commands re-decide as recorded.
  auto evs = w.cli({"events", "--json", "--vm", "pz1"});
  std::size_t paused = 0, resumed = 0;
  for (const auto& e : json_lines(evs.out)) {
    paused += e["kind"] == "vm_paused";
    resumed += e["kind"] == "vm_resumed";
  }
  BOOST_TEST(paused == 3u);
  BOOST_TEST(resumed == 1u);
  auto v = w.sb.replay({"verify", "--journal", (w.sb.state() / "journal").string()});
  BOOST_TEST(v.exit_code == 0, v.out + v.err);
}

BOOST_AUTO_TEST_CASE(ping_and_health) {
  auto& w = the_world();
  BOOST_TEST_REQUIRE(w.cli({"vm", "create", "--name", "hp1"}).exit_code == 0);
  auto ping = w.cli({"vm", "ping", "hp1", "--count", "2", "--interval", "10", "--json"});
  BOOST_TEST_REQUIRE(ping.exit_code == 0, ping.err);
  auto p = nlohmann::json::parse(ping.out);
  BOOST_TEST(p["hostname"] == "hp1");
  BOOST_TEST(p["version"] == BANGER_VERSION);
  BOOST_TEST(p["rtt_ms"].size() == 2u);
  BOOST_TEST(p["rtt_ms"][0].get<double>() > 0);
  BOOST_TEST(p["uptime_ms"].get<std::uint64_t>() > 0u);
  auto text = w.cli({"vm", "ping", "hp1", "-c", "1"});
  BOOST_TEST_MESSAGE("vm ping: " << text.out);
  BOOST_TEST(text.out.find("hp1: banger-agent \"" BANGER_VERSION "\" (hostname \"hp1\"") == 0, text.out);
  BOOST_TEST(text.out.find("\n1 reply: min ") != std::string::npos, text.out);
  auto h = w.cli({"vm", "health", "hp1"});
  BOOST_TEST(h.exit_code == 0, h.err);
  BOOST_TEST(h.out.find("hp1: healthy: the agent answered in ") == 0, h.out);
  // A guest that stops answering (its VMM frozen from outside, so banger still thinks it runs):
  // unhealthy after vmPing's bound, and ping fails.
  int pid = nlohmann::json::parse(w.cli({"vm", "show", "hp1", "--json"}).out)["pid"].get<int>();
  BOOST_TEST_REQUIRE(::kill(pid, SIGSTOP) == 0);
  auto hung = w.cli({"vm", "health", "hp1", "--json"});
  ::kill(pid, SIGCONT);
  BOOST_TEST(hung.exit_code == 1, hung.out << hung.err);
  auto hj = nlohmann::json::parse(hung.out);
  BOOST_TEST(hj["healthy"] == false);
  BOOST_TEST(hj["state"] == "running");
  BOOST_TEST(hj["reason"].get<std::string>().find("did not answer a ping") != std::string::npos, hj.dump());
  BOOST_TEST(w.cli({"vm", "health", "hp1"}).exit_code == 0); // answering again
  BOOST_TEST_REQUIRE(w.cli({"vm", "stop", "hp1"}).exit_code == 0);
  auto stopped = w.cli({"vm", "health", "hp1"});
  BOOST_TEST(stopped.exit_code == 1);
  BOOST_TEST(stopped.out == "hp1: unhealthy: it is stopped (`banger vm start hp1`)\n", stopped.out);
  auto no_ping = w.cli({"vm", "ping", "hp1"});
  BOOST_TEST(no_ping.exit_code != 0);
  BOOST_TEST(no_ping.err.find("hp1") != std::string::npos, no_ping.err);
  BOOST_TEST(w.cli({"vm", "health", "nosuch"}).exit_code == 1);
  BOOST_TEST(w.cli({"vm", "delete", "hp1"}).exit_code == 0);
  BOOST_TEST(w.leaks() == "");
}

BOOST_AUTO_TEST_CASE(ports_lists_sockets_and_finds_web_servers) {
  auto& w = the_world();
  BOOST_TEST_REQUIRE(w.cli({"vm", "create", "--name", "pt1"}).exit_code == 0);
  // A web server for the host, one for the guest only, and a UDP server (busybox's udhcpd, on lo
  // so that it answers nobody on the bridge).
  auto up = w.cli({"vm", "exec", "pt1", "--", "sh", "-c",
                   "mkdir -p /root/www && echo hi > /root/www/index.html && httpd -p 8080 -h /root/www && "
                   "httpd -p 127.0.0.1:9000 -h /root/www && "
                   "printf 'interface lo\\nstart 127.0.9.10\\nend 127.0.9.20\\nlease_file /tmp/leases\\n' > /tmp/u.conf"
                   " && touch /tmp/leases && udhcpd -S /tmp/u.conf && sleep 0.5"});
  BOOST_TEST_REQUIRE(up.exit_code == 0, up.err);
  auto r = w.cli({"vm", "ports", "pt1", "--json"});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.err);
  auto rows = nlohmann::json::parse(r.out);
  auto ip = nlohmann::json::parse(w.cli({"vm", "show", "pt1", "--json"}).out)["ip"].get<std::string>();
  auto find = [&](const std::string& proto, int port) {
    for (const auto& row : rows)
      if (row["protocol"] == proto && row["port"] == port)
        return row;
    return nlohmann::json();
  };
  auto web = find("tcp", 8080), local = find("tcp", 9000), dhcp = find("udp", 67);
  BOOST_TEST_REQUIRE(!web.is_null(), r.out);
  BOOST_TEST(web["url"] == "http://" + ip + ":8080/", r.out);
  BOOST_TEST(web["process"].get<std::string>().ends_with("/httpd"), r.out);
  BOOST_TEST_REQUIRE(!local.is_null(), r.out);
  BOOST_TEST(local["from_host"] == false);
  BOOST_TEST(local["url"].is_null());
  BOOST_TEST(!dhcp.is_null(), r.out);
  // The agent's own virtio-serial is no socket; nothing else listens on TCP in a busybox guest.
  auto table = w.cli({"vm", "ports", "pt1", "--no-probe"});
  BOOST_TEST(table.out.find("PROTO  PORT") == 0, table.out);
  BOOST_TEST(table.out.find("http://") == std::string::npos, table.out);
  BOOST_TEST(w.cli({"vm", "delete", "--force", "pt1"}).exit_code == 0);
  BOOST_TEST(w.leaks() == "");
}

BOOST_AUTO_TEST_CASE(a_daemon_restart_keeps_running_vms) {
  auto& w = the_world();
  BOOST_TEST_REQUIRE(w.cli({"vm", "create", "--name", "dr1"}).exit_code == 0);
  auto before = nlohmann::json::parse(w.cli({"vm", "show", "dr1", "--json"}).out);
  BOOST_TEST_REQUIRE(w.cli({"daemon", "stop"}).exit_code == 0);
  int pid = before["pid"].get<int>();
  BOOST_TEST(process_alive(pid)); // the VMM runs in its own session
  // The next command starts a new daemon, which finds the VM running and reaches its agent.
  auto after = nlohmann::json::parse(w.cli({"vm", "show", "dr1", "--json"}).out);
  BOOST_TEST(after["state"] == "running");
  BOOST_TEST(after["pid"].get<int>() == pid);
  BOOST_TEST(w.cli({"vm", "exec", "dr1", "--", "true"}).exit_code == 0);
  auto stop = w.cli({"vm", "stop", "dr1"});
  BOOST_TEST(stop.exit_code == 0, stop.err);
  BOOST_TEST(!process_alive(pid));
  BOOST_TEST(w.cli({"vm", "delete", "dr1"}).exit_code == 0);
  BOOST_TEST(w.leaks() == "");
}

BOOST_AUTO_TEST_CASE(a_vmm_that_goes_away_is_noticed) {
  auto& w = the_world();
  BOOST_TEST_REQUIRE(w.cli({"vm", "create", "--name", "gone1"}).exit_code == 0);
  BOOST_TEST_REQUIRE(w.cli({"vm", "create", "--name", "gone2"}).exit_code == 0);
  // One guest powers itself off; the other's QEMU is killed from outside.
  w.cli({"vm", "exec", "gone1", "--", "poweroff"});
  int pid = nlohmann::json::parse(w.cli({"vm", "show", "gone2", "--json"}).out)["pid"].get<int>();
  BOOST_TEST_REQUIRE(pid > 0);
  ::kill(pid, SIGKILL);
  for (std::string name : {"gone1", "gone2"}) {
    nlohmann::json info;
    bool stopped = eventually(
      [&] {
        info = nlohmann::json::parse(w.cli({"vm", "show", name, "--json"}).out);
        return info["state"] == "stopped";
      },
      30s);
    BOOST_TEST(stopped, name + ": " + info.dump());
    BOOST_TEST(info["last_error"].get<std::string>().find("exited unexpectedly") != std::string::npos, info.dump());
  }
  BOOST_TEST(w.leaks().find("tap") == std::string::npos, w.leaks());
  // It starts again cleanly.
  auto again = w.cli({"vm", "start", "gone2"});
  BOOST_TEST(again.exit_code == 0, again.err);
  BOOST_TEST(w.cli({"vm", "exec", "gone2", "--", "true"}).exit_code == 0);
  BOOST_TEST(w.cli({"vm", "delete", "--force", "gone1"}).exit_code == 0);
  BOOST_TEST(w.cli({"vm", "delete", "--force", "gone2"}).exit_code == 0);
  BOOST_TEST(w.leaks() == "");
}

BOOST_AUTO_TEST_CASE(no_start_then_prune) {
  auto& w = the_world();
  for (std::string n : {"pr1", "pr2"}) {
    auto c = w.cli({"vm", "create", "--no-start", "--name", n, "--disk-size", "256"});
    BOOST_TEST_REQUIRE(c.exit_code == 0, c.err);
  }
  auto vms = w.vms();
  BOOST_TEST_REQUIRE(vms.size() == 2u);
  for (const auto& v : vms) {
    BOOST_TEST(v["state"] == "stopped");
    BOOST_TEST(v["resources"].empty(), v.dump()); // nothing is made before the first start
    BOOST_TEST(v["disk_mib"] == 256);
  }
  auto ps = w.cli({"ps"}); // running VMs only
  BOOST_TEST(ps.out.find("pr1") == std::string::npos, ps.out);
  auto all = w.cli({"vm", "list", "-a"});
  BOOST_TEST(all.out.find("pr1") != std::string::npos, all.out);
  auto prune = w.cli({"vm", "prune", "-f"});
  BOOST_TEST(prune.exit_code == 0, prune.err);
  BOOST_TEST(w.vms().empty());
  BOOST_TEST(w.leaks() == "");
}

BOOST_AUTO_TEST_CASE(invalid_specs_leave_nothing) {
  auto& w = the_world();
  auto zero = w.cli({"vm", "create", "--name", "bad1", "--vcpu", "0"});
  BOOST_TEST(zero.exit_code != 0);
  auto name = w.cli({"vm", "create", "--name", "Bad_Name"});
  BOOST_TEST(name.exit_code != 0);
  BOOST_TEST(name.err.find("invalid VM name") != std::string::npos, name.err);
  // Passes the CLI's checks, refused by the daemon's.
  auto mem = w.cli({"vm", "create", "--name", "bad2", "--memory", "16"});
  BOOST_TEST(mem.exit_code != 0);
  BOOST_TEST(mem.err.find("--memory 16") != std::string::npos, mem.err);
  auto image = w.cli({"vm", "create", "--name", "bad3", "--image", "nope"});
  BOOST_TEST(image.exit_code != 0);
  BOOST_TEST(image.err.find("no image named nope") != std::string::npos, image.err);
  for (std::string n : {"bad1", "Bad_Name", "bad2", "bad3"})
    BOOST_TEST(!w.journal_mentions("vm/" + n), n);
  BOOST_TEST(w.vms().empty());
  BOOST_TEST(w.leaks() == "");
}

BOOST_AUTO_TEST_CASE(four_parallel_runs) {
  auto& w = the_world();
  temp_dir logs{"banger-par"};
  std::vector<int> pids;
  for (int i = 0; i < 4; ++i) {
    auto dir = logs.path / std::to_string(i);
    fs::create_directories(dir);
    pids.push_back(spawn(w.command({"vm", "run", "--rm", "--name", fmt::format("par{}", i), "--", "sh", "-c",
                                    fmt::format("exit {}", 10 + i)}),
                         w.sb.env, dir));
  }
  for (int i = 0; i < 4; ++i) {
    int status = 0;
    BOOST_TEST_REQUIRE(::waitpid(pids[i], &status, 0) == pids[i]);
    BOOST_TEST(WIFEXITED(status));
    BOOST_TEST(WEXITSTATUS(status) == 10 + i, slurp(logs.path / std::to_string(i) / "spawn.err"));
  }
  BOOST_TEST(w.vms().empty());
  BOOST_TEST(w.leaks() == "");
}

BOOST_AUTO_TEST_CASE(ctrl_c_during_run_leaves_nothing) {
  auto& w = the_world();
  temp_dir logs{"banger-int"};
  int pid = spawn(w.command({"vm", "run", "--rm", "--name", "int1", "--", "sleep", "300"}), w.sb.env, logs.path);
  bool running = eventually(
    [&] {
      auto r = w.cli({"vm", "show", "int1", "--json"});
      return r.exit_code == 0 && nlohmann::json::parse(r.out)["state"] == "running";
    },
    120s);
  BOOST_TEST_REQUIRE(running, slurp(logs.path / "spawn.err"));
  std::this_thread::sleep_for(500ms); // the command is running in the guest
  ::kill(pid, SIGINT);
  int status = 0;
  BOOST_TEST_REQUIRE(::waitpid(pid, &status, 0) == pid);
  BOOST_TEST(WIFEXITED(status));
  BOOST_TEST(WEXITSTATUS(status) == 130);
  BOOST_TEST(w.vms().empty(), slurp(logs.path / "spawn.err"));
  BOOST_TEST(w.leaks() == "");
}

BOOST_AUTO_TEST_CASE(nat_rule_lives_with_the_vm) {
  auto& w = the_world();
  // config.toml is read at daemon start: restart it with NAT on, and off again at the end.
  auto config = fs::path(w.sb.env.at("XDG_CONFIG_HOME")) / "banger" / "config.toml";
  fs::create_directories(config.parent_path());
  BOOST_TEST_REQUIRE(w.cli({"daemon", "stop"}).exit_code == 0);
  { std::ofstream(config) << "nat = true\n"; }
  auto nft = [&] {
    auto argv = w.ns.exec();
    argv.insert(argv.end(), {"nft", "list", "table", "ip", "banger"});
    return run(argv);
  };
  BOOST_TEST_REQUIRE(w.cli({"vm", "create", "--name", "nat1"}).exit_code == 0);
  auto ip = nlohmann::json::parse(w.cli({"vm", "show", "nat1", "--json"}).out)["ip"].get<std::string>();
  auto on = nft();
  BOOST_TEST(on.exit_code == 0, on.err);
  BOOST_TEST(on.out.find(ip) != std::string::npos, on.out);
  BOOST_TEST(on.out.find("masquerade") != std::string::npos, on.out);
  BOOST_TEST(w.cli({"vm", "stop", "nat1"}).exit_code == 0);
  BOOST_TEST(nft().out.find(ip) == std::string::npos); // the rule goes with the run
  BOOST_TEST(w.cli({"vm", "delete", "nat1"}).exit_code == 0);
  BOOST_TEST(w.cli({"daemon", "stop"}).exit_code == 0);
  fs::remove(config);
  BOOST_TEST(w.leaks() == "");
}

BOOST_AUTO_TEST_CASE(ssh_with_a_debootstrap_image) {
  auto& w = the_world();
  w.build_debootstrap_image("deb");
  auto c = w.cli({"vm", "create", "--name", "sh1", "--image", "deb"}, 300s);
  BOOST_TEST_REQUIRE(c.exit_code == 0, c.err);
  auto hi = w.cli({"vm", "ssh", "sh1", "--", "echo", "hello from ssh"});
  BOOST_TEST(hi.exit_code == 0, hi.err);
  BOOST_TEST(hi.out == "hello from ssh\n");
  // Arguments are quoted for the remote shell: the command sees exactly these words.
  BOOST_TEST(w.cli({"vm", "ssh", "sh1", "--", "sh", "-c", "exit 42"}).exit_code == 42);
  auto words = w.cli({"vm", "ssh", "sh1", "--", "printf", "%s|", "a b", "it's", "$HOME"});
  BOOST_TEST(words.out == "a b|it's|$HOME|", words.err);
  // The host key is the VM's own (verified against banger's known_hosts, not trusted on first
  // use): the one the daemon made and wrote into the work disk, recorded from its own copy. The
  // guest made none (no ssh-keygen -A), and it knows its own name.
  auto kh = slurp(w.sb.state() / "ssh" / "known_hosts");
  auto pub = slurp(w.sb.state() / "vms" / "sh1" / "ssh_host_ed25519_key.pub");
  BOOST_TEST_REQUIRE(pub.starts_with("ssh-ed25519 "), pub);
  BOOST_TEST(kh.find("sh1.vm " + pub.substr(0, pub.rfind(' ')) + "\n") != std::string::npos, kh << "\n" << pub);
  auto keys = w.cli({"vm", "exec", "sh1", "--", "sh", "-c", "ls /etc/ssh | grep -c ^ssh_host_ || true"});
  BOOST_TEST(keys.out == "0\n", keys.out << keys.err);
  BOOST_TEST(slurp(w.sb.state() / "vms" / "sh1" / "console.log").find("generating ssh host keys") == std::string::npos);
  auto named = w.cli({"vm", "exec", "sh1", "--", "getent", "hosts", "sh1"});
  BOOST_TEST(named.out == "127.0.1.1       sh1\n", named.out << named.err);
  // The key is the VM's for its life: a cold boot after a stop serves the same one.
  BOOST_TEST_REQUIRE(w.cli({"vm", "stop", "sh1"}).exit_code == 0);
  BOOST_TEST_REQUIRE(w.cli({"vm", "start", "sh1"}, 300s).exit_code == 0);
  BOOST_TEST(slurp(w.sb.state() / "ssh" / "known_hosts") == kh);
  auto again = w.cli({"vm", "ssh", "sh1", "--", "hostname"});
  BOOST_TEST(again.out == "sh1\n", again.err);
  // A busybox VM has no sshd: a clear refusal.
  BOOST_TEST_REQUIRE(w.cli({"vm", "create", "--name", "sh2"}).exit_code == 0);
  auto no = w.cli({"vm", "ssh", "sh2", "--", "true"});
  BOOST_TEST(no.exit_code != 0);
  BOOST_TEST(no.err.find("no sshd") != std::string::npos, no.err);
  BOOST_TEST(w.cli({"vm", "delete", "--force", "sh1"}).exit_code == 0);
  BOOST_TEST(w.cli({"vm", "delete", "--force", "sh2"}).exit_code == 0);
  BOOST_TEST(kh.find("sh1.vm") != std::string::npos);
  BOOST_TEST(slurp(w.sb.state() / "ssh" / "known_hosts").find("sh1.vm") == std::string::npos);
  BOOST_TEST(w.leaks() == "");
}

BOOST_AUTO_TEST_SUITE_END()
