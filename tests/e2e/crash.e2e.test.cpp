// The crash matrix (issue #5): bangerd SIGKILLed at every stage of a start, during a stop and
// during a delete, then restarted; a host reboot simulated by a new boot id; the first answer
// after a restart already truthful. After each: no tap, NAT rule, QEMU process, overlay, work
// disk or socket left that no VM accounts for; the VM's state says what the host holds; the VM
// starts again cleanly; `banger-replay verify` passes on the journal.
//
// Test-only hooks (actors/vm/crash_point.hpp, daemon/main.cpp): BANGER_TEST_CRASH_AT=<when>:<what>
// makes the daemon SIGKILL itself at that exact point ("before:tap", "after:vmm",
// "release:work_disk", ...); BANGER_TEST_BOOT_ID replaces the host's boot id.
#include "tests/e2e/vm_world.hpp"
#include "tests/support/git_checkout.hpp"

namespace fs = std::filesystem;
using namespace banger;
using namespace banger::test;
using namespace std::chrono_literals;

namespace {

world& the_world() {
  static world w("nat = true\n"); // so the NAT rule is one of the stages
  return w;
}

/// Runs `args` with the daemon (started by this command) set to die at `at`.
run_result crash_at(world& w, const std::string& at, std::vector<std::string> args) {
  BOOST_TEST_REQUIRE(w.cli({"daemon", "stop"}).exit_code == 0);
  w.sb.env["BANGER_TEST_CRASH_AT"] = at;
  auto r = w.cli(std::move(args));
  w.sb.env.erase("BANGER_TEST_CRASH_AT");
  // The crash point SIGKILLs bangerd; its pid file and socket stay behind, as after a real crash.
  return r;
}

nlohmann::json show(world& w, const std::string& name) {
  auto r = w.cli({"vm", "show", name, "--json"});
  BOOST_TEST_REQUIRE(r.exit_code == 0, name + ": " + r.err);
  return nlohmann::json::parse(r.out);
}

void verify_journal(world& w, const std::string& when) {
  auto v = w.sb.replay({"verify", "--journal", (w.sb.state() / "journal").string()});
  BOOST_TEST(v.exit_code == 0, when + ": banger-replay verify: " + v.out + v.err);
}

/// Checks that `info` (a stopped VM) holds no per-run resource and that none is left on the host.
void nothing_of_a_run_left(world& w, const nlohmann::json& info, const std::string& at) {
  std::string h;
  for (const auto& r : info["resources"])
    h += r.get<std::string>() + " ";
  for (std::string per_run : {"tap:", "nat:", "vmm:", "sockets:", "(intended)"})
    BOOST_TEST(h.find(per_run) == std::string::npos, at + ": holds " + h);
  auto l = w.leaks();
  for (std::string kind : {"tap ", "qemu ", "nat rule "})
    BOOST_TEST(l.find(kind) == std::string::npos, at + ": " + l);
}

/// After a settled crash: the VM starts again, runs a command, and a forced delete leaves nothing.
void starts_again_and_goes(world& w, const std::string& name, const std::string& at) {
  auto start = w.cli({"vm", "start", name});
  BOOST_TEST(start.exit_code == 0, at + ": " + start.err);
  BOOST_TEST(w.cli({"vm", "exec", name, "--", "true"}).exit_code == 0, at);
  BOOST_TEST(w.cli({"vm", "delete", "--force", name}).exit_code == 0, at);
  BOOST_TEST(w.leaks() == "", at);
}

/// A stopped or running VM's resources: what `vm show` says it holds, as text.
std::string held(const nlohmann::json& info) {
  std::string out;
  for (const auto& r : info["resources"])
    out += r.get<std::string>() + " ";
  return out;
}

} // namespace

BOOST_AUTO_TEST_SUITE(crash)

BOOST_AUTO_TEST_CASE(a_daemon_killed_at_any_start_stage_is_settled_at_restart) {
  auto& w = the_world();
  // Every stage of the start pipeline (pipeline.hpp): the concurrent group, then nat, vmm, the
  // agent answering, post-start; "after:post_start" is the instant before vm_running is recorded.
  std::vector<std::string> points;
  for (std::string kind : {"overlay", "work_disk", "ip", "tap", "sockets", "nat", "vmm"})
    for (std::string when : {"before:", "after:"})
      points.push_back(when + kind);
  points.push_back("after:agent");
  points.push_back("after:post_start");
  for (const auto& at : points) {
    auto c = crash_at(w, at, {"vm", "create", "--name", "cr1"});
    BOOST_TEST(c.exit_code != 0, at);
    // The first answer of the restarted daemon is already the settled state.
    auto info = show(w, "cr1");
    BOOST_TEST(info["state"] == "stopped", at + ": " + info.dump());
    BOOST_TEST(info["last_error"].get<std::string>().find("interrupted") != std::string::npos, at + ": " + info.dump());
    // Only per-VM resources a finished step made may remain, recorded as held.
    nothing_of_a_run_left(w, info, at);
    BOOST_TEST(!fs::exists(w.sb.runtime() / "vms" / "cr1" / "qmp.sock"), at);
    verify_journal(w, at);
    // It starts again cleanly, and goes without a trace.
    starts_again_and_goes(w, "cr1", at);
  }
  verify_journal(w, "end");
}

BOOST_AUTO_TEST_CASE(a_daemon_killed_during_a_stop_finishes_it_at_restart) {
  auto& w = the_world();
  // A stop releases vmm, then nat and tap, then sockets (process, network, files).
  for (std::string at : {"release:vmm", "release:nat", "release:tap"}) {
    auto c = w.cli({"vm", "create", "--name", "st1"});
    BOOST_TEST_REQUIRE(c.exit_code == 0, c.err);
    auto s = crash_at(w, at, {"vm", "stop", "st1"});
    BOOST_TEST(s.exit_code != 0, at);
    auto info = show(w, "st1");
    BOOST_TEST(info["state"] == "stopped", at + ": " + info.dump());
    nothing_of_a_run_left(w, info, at);
    BOOST_TEST(held(info).find("overlay:") != std::string::npos, at + ": holds " + held(info)); // per-VM: kept
    verify_journal(w, at);
    starts_again_and_goes(w, "st1", at);
  }
}

BOOST_AUTO_TEST_CASE(a_daemon_killed_during_a_delete_finishes_it_at_restart) {
  auto& w = the_world();
  // A delete releases ip, work_disk, overlay (the reverse of the start) and then the dirs.
  for (std::string at : {"release:ip", "release:work_disk", "release:overlay"}) {
    auto c = w.cli({"vm", "create", "--name", "dl1"});
    BOOST_TEST_REQUIRE(c.exit_code == 0, c.err);
    BOOST_TEST_REQUIRE(w.cli({"vm", "stop", "dl1"}).exit_code == 0);
    auto d = crash_at(w, at, {"vm", "delete", "dl1"});
    BOOST_TEST(d.exit_code != 0, at);
    // The restarted daemon finished the delete before answering.
    auto gone = w.cli({"vm", "show", "dl1", "--json"});
    BOOST_TEST(gone.exit_code != 0, at + ": " + gone.out);
    BOOST_TEST(w.leaks() == "", at);
    verify_journal(w, at);
    // The name is free again.
    BOOST_TEST(w.cli({"vm", "create", "--no-start", "--name", "dl1"}).exit_code == 0, at);
    BOOST_TEST(w.cli({"vm", "delete", "dl1"}).exit_code == 0, at);
  }
}

BOOST_AUTO_TEST_CASE(the_first_answer_after_a_restart_is_truthful) {
  auto& w = the_world();
  BOOST_TEST_REQUIRE(w.cli({"vm", "create", "--name", "tr1"}).exit_code == 0);
  BOOST_TEST_REQUIRE(w.cli({"vm", "create", "--name", "tr2"}).exit_code == 0);
  int pid1 = show(w, "tr1")["pid"].get<int>();
  int pid2 = show(w, "tr2")["pid"].get<int>();
  // bangerd dies (SIGKILL, no clean stop) and tr2's VMM goes while no daemon runs.
  int daemon = w.sb.daemon_pid();
  BOOST_TEST_REQUIRE(daemon > 0);
  ::kill(daemon, SIGKILL);
  BOOST_TEST_REQUIRE(eventually([&] { return !process_alive(daemon); }));
  ::kill(pid2, SIGKILL);
  BOOST_TEST_REQUIRE(eventually([&] { return !process_alive(pid2); }));
  // The first RPC of the new daemon: tr1 adopted (same VMM, usable), tr2 stopped with the reason.
  auto list = w.vms();
  BOOST_TEST_REQUIRE(list.size() == 2u);
  for (const auto& v : list) {
    if (v["name"] == "tr1") {
      BOOST_TEST(v["state"] == "running", v.dump());
      BOOST_TEST(v["pid"] == pid1);
    } else {
      BOOST_TEST(v["state"] == "stopped", v.dump());
      BOOST_TEST(v["last_error"].get<std::string>().find("was gone when bangerd started") != std::string::npos,
                 v.dump());
    }
  }
  BOOST_TEST(w.cli({"vm", "exec", "tr1", "--", "true"}).exit_code == 0);
  auto ev = w.cli({"events", "--vm", "tr1", "--json"});
  bool adopted = false;
  for (const auto& e : json_lines(ev.out))
    adopted = adopted || e["kind"] == "vm_adopted";
  BOOST_TEST(adopted, ev.out);
  verify_journal(w, "restart");
  BOOST_TEST(w.cli({"vm", "delete", "--force", "tr1"}).exit_code == 0);
  BOOST_TEST(w.cli({"vm", "delete", "--force", "tr2"}).exit_code == 0);
  BOOST_TEST(w.leaks() == "");
}

// A paused VM is adopted paused: its VMM stays paused through a daemon crash and restart, and
// resumes afterwards. A daemon that dies after pausing the VMM but before recording it (crash
// point after:pause) leaves the journal saying running: the restart makes the VMM match it.
BOOST_AUTO_TEST_CASE(a_paused_vm_survives_a_daemon_restart_paused) {
  auto& w = the_world();
  BOOST_TEST_REQUIRE(w.cli({"vm", "create", "--name", "pz2"}).exit_code == 0);
  int pid = show(w, "pz2")["pid"].get<int>();
  BOOST_TEST_REQUIRE(w.cli({"vm", "pause", "pz2"}).exit_code == 0);
  int daemon = w.sb.daemon_pid();
  BOOST_TEST_REQUIRE(daemon > 0);
  ::kill(daemon, SIGKILL);
  BOOST_TEST_REQUIRE(eventually([&] { return !process_alive(daemon); }));
  auto info = show(w, "pz2"); // the new daemon's first answer
  BOOST_TEST(info["state"] == "paused", info.dump());
  BOOST_TEST(info["pid"] == pid);
  auto exec = w.cli({"vm", "exec", "pz2", "--", "true"});
  BOOST_TEST(exec.err.find("paused: resume it first") != std::string::npos, exec.err);
  BOOST_TEST_REQUIRE(w.cli({"vm", "resume", "pz2"}).exit_code == 0);
  BOOST_TEST(w.cli({"vm", "exec", "pz2", "--", "true"}).exit_code == 0);
  verify_journal(w, "paused restart");

  // Killed between the VMM's pause and its record: still running on record, and running again.
  auto cut = crash_at(w, "after:pause", {"vm", "pause", "pz2"});
  BOOST_TEST(cut.exit_code != 0);
  info = show(w, "pz2");
  BOOST_TEST(info["state"] == "running", info.dump());
  BOOST_TEST(info["pid"] == pid);
  auto after = w.cli({"vm", "exec", "pz2", "--", "true"}, 60s);
  BOOST_TEST(after.exit_code == 0, after.err); // the VMM was resumed to match: the guest answers
  verify_journal(w, "crash after pause");
  BOOST_TEST(w.cli({"vm", "delete", "--force", "pz2"}).exit_code == 0);
  BOOST_TEST(w.leaks() == "");
}

// A daemon killed before, during (the repository and a first file written) and after a
// workspace landing (the tree swapped in, its record not yet written): at restart the
// preparation is on record as failed, the tree at the guest path is a whole one (the previous
// workspace, or after the swap the new one), no staging tree is left, and the work disk is
// clean to e2fsck. Into a stopped VM (the work-disk writer) and a running one (the agent).
BOOST_AUTO_TEST_CASE(a_daemon_killed_during_a_workspace_landing_leaves_a_whole_tree) {
  auto& w = the_world();
  temp_dir tmp{"banger-crash-ws"};
  fs::path repo = tmp.path / "proj";
  fs::create_directories(repo);
  git_sh(repo, "git init -q -b main .");
  put_file(repo / "README", "first\n");
  put_file(repo / "src" / "a.txt", "a\n");
  put_file(repo / "src" / "b.txt", "b\n");
  git_sh(repo, "git add -A && git commit -q -m first");
  BOOST_TEST_REQUIRE(w.cli({"vm", "create", "--name", "wc1"}).exit_code == 0);
  BOOST_TEST_REQUIRE(w.cli({"vm", "workspace", "prepare", "wc1", repo.string()}).exit_code == 0);
  std::string landed = "first"; // README in the workspace on record
  for (std::string phase : {"stopped", "running"}) {
    for (std::string at : {"before:workspace", "during:workspace", "after:workspace"}) {
      auto where = phase + " " + at;
      if (phase == "stopped" && show(w, "wc1")["state"] == "running")
        BOOST_TEST_REQUIRE(w.cli({"vm", "stop", "wc1"}).exit_code == 0, where);
      if (phase == "running" && show(w, "wc1")["state"] != "running")
        BOOST_TEST_REQUIRE(w.cli({"vm", "start", "wc1"}).exit_code == 0, where);
      auto before = show(w, "wc1")["workspace"];
      put_file(repo / "README", where + "\n");
      auto cut = crash_at(w, at, {"vm", "workspace", "prepare", "wc1", repo.string()});
      BOOST_TEST(cut.exit_code != 0, where);
      auto info = show(w, "wc1"); // the restarted daemon's first answer
      BOOST_TEST(info["state"] == phase, where + ": " + info.dump());
      BOOST_TEST(!info["workspace"]["pending"].get<bool>(), where + ": " + info.dump());
      BOOST_TEST(info["workspace"]["digest"] == before["digest"], where + ": the record moved on");
      verify_journal(w, where);
      if (phase == "running") {
        // The running guest had lent its work disk: the restart repaired it and had it mounted.
        std::vector<std::string> kinds;
        for (const auto& e : json_lines(w.cli({"events", "--json", "--vm", "wc1"}).out))
          kinds.push_back(e["kind"].get<std::string>());
        auto last = std::find(kinds.rbegin(), kinds.rend(), "workspace_preparing");
        BOOST_TEST_REQUIRE((last != kinds.rend()), where);
        BOOST_TEST(*(last - 1) == "workspace_disk_released", where);
        auto mounted = w.cli({"vm", "exec", "wc1", "--", "grep", "-c", " /root ext4 ", "/proc/mounts"});
        BOOST_TEST(mounted.out == "1\n", where + ": " + mounted.out + mounted.err);
      }
      if (phase == "stopped") {
        auto fsck = run({"e2fsck", "-fn", (w.sb.state() / "vms" / "wc1" / "work.ext4").string()});
        BOOST_TEST(fsck.exit_code == 0, where + ": " + fsck.out + fsck.err);
        BOOST_TEST_REQUIRE(w.cli({"vm", "start", "wc1"}).exit_code == 0, where);
      }
      auto tree = w.cli({"vm", "exec", "wc1", "--cwd", "/root", "--", "sh", "-c",
                         "ls -A /root | grep -c banger-; cat proj/README proj/src/a.txt proj/src/b.txt"});
      BOOST_TEST_REQUIRE(tree.exit_code == 0, where + ": " + tree.err);
      // No staging tree; a whole tree: the new one only once it was swapped in.
      std::string readme = at == "after:workspace" ? where : landed;
      BOOST_TEST(tree.out == "0\n" + readme + "\na\nb\n", where + ": " + tree.out);
      // The next preparation lands and is on record.
      auto again = w.cli({"vm", "workspace", "prepare", "wc1", repo.string()});
      BOOST_TEST_REQUIRE(again.exit_code == 0, where + ": " + again.err);
      BOOST_TEST(show(w, "wc1")["workspace"]["digest"] != before["digest"], where);
      landed = where;
    }
  }
  BOOST_TEST(w.cli({"vm", "delete", "--force", "wc1"}).exit_code == 0);
  BOOST_TEST(w.leaks() == "");
}

BOOST_AUTO_TEST_CASE(a_host_reboot_is_never_adopted) {
  auto& w = the_world();
  BOOST_TEST_REQUIRE(w.cli({"vm", "create", "--name", "rb1"}).exit_code == 0);
  int pid = show(w, "rb1")["pid"].get<int>();
  // The same VMM, pid, start time and command line all match: only the boot id differs, as it
  // would after a reboot (where the pid would name some other process).
  BOOST_TEST_REQUIRE(w.cli({"daemon", "stop"}).exit_code == 0);
  BOOST_TEST_REQUIRE(process_alive(pid));
  w.sb.env["BANGER_TEST_BOOT_ID"] = "00000000-0000-4000-8000-00000000b007";
  auto info = show(w, "rb1");
  BOOST_TEST(info["state"] == "stopped", info.dump());
  BOOST_TEST(info["last_error"].get<std::string>().find("the host rebooted") != std::string::npos, info.dump());
  BOOST_TEST(eventually([&] { return !process_alive(pid); })); // it matched exactly: not leaked
  nothing_of_a_run_left(w, info, "reboot");
  verify_journal(w, "reboot");
  auto start = w.cli({"vm", "start", "rb1"});
  BOOST_TEST(start.exit_code == 0, start.err);
  BOOST_TEST(w.cli({"vm", "exec", "rb1", "--", "true"}).exit_code == 0);
  BOOST_TEST(w.cli({"vm", "delete", "--force", "rb1"}).exit_code == 0);
  BOOST_TEST(w.cli({"daemon", "stop"}).exit_code == 0);
  w.sb.env.erase("BANGER_TEST_BOOT_ID");
  BOOST_TEST(w.leaks() == "");
}

BOOST_AUTO_TEST_SUITE_END()
