// Workspaces end to end (docs/workspaces.md): a real git checkout shipped by the real CLI into
// real guests (busybox image, QEMU under TCG) through the daemon, its work-disk writer and the
// guest agent, in the network namespace of vm_world.hpp. The busybox guest has no git: what
// git makes of the workspace is tested on the host (workspace/land.test.cpp) and in the
// debootstrap case; here, that the files, modes, links and the repository are in the guest,
// that both landings make the same tree, where commands start, and what the journal and `ps` say.
#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "common/process.hpp"
#include "tests/e2e/vm_world.hpp"
#include "tests/support/git_checkout.hpp"
#include "tests/support/mise.hpp"

namespace fs = std::filesystem;
using namespace banger;
using namespace banger::test;
using namespace std::chrono_literals;

namespace {

world& the_world() {
  static world w;
  return w;
}

/// A checkout with a commit and uncommitted edits.
struct checkout {
  temp_dir tmp{"banger-ws-e2e"};
  fs::path repo = tmp.path / "proj";
  checkout() {
    fs::create_directories(repo);
    git_sh(repo, "git init -q -b main .");
    put_file(repo / "README", "committed\n");
    put_file(repo / "src" / "hello.sh", "#!/bin/sh\necho hello from the workspace\n");
    ::chmod((repo / "src" / "hello.sh").c_str(), 0755);
    BOOST_TEST_REQUIRE(::symlink("/etc/passwd", (repo / "passwd-link").c_str()) == 0);
    git_sh(repo, "git add -A && git commit -q -m first");
    put_file(repo / "README", "committed\nand edited, not committed\n");
    put_file(repo / "scratch.txt", "untracked\n");
  }
};

} // namespace

BOOST_AUTO_TEST_SUITE(workspace_e2e)

BOOST_AUTO_TEST_CASE(vm_run_ships_the_checkout_and_runs_the_command_in_it) {
  auto& w = the_world();
  checkout co;
  auto r = w.cli({"vm", "run", "--rm", co.repo.string(), "--", "sh", "-c",
                  "pwd; cat README; ./src/hello.sh; readlink passwd-link; ls scratch.txt 2>&1; "
                  "cat .git/HEAD; test -s .git/index && echo index-ok; ls .git/objects/pack | grep -c '[.]pack$'"});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.out << r.err);
  BOOST_TEST_MESSAGE("vm run's stderr:\n" << r.err);
  BOOST_TEST(r.out.find("/root/proj\n") == 0u, r.out);                             // starts in the workspace
  BOOST_TEST(r.out.find("and edited, not committed") != std::string::npos, r.out); // the working tree's content
  BOOST_TEST(r.out.find("hello from the workspace") != std::string::npos, r.out);  // the executable bit kept
  BOOST_TEST(r.out.find("/etc/passwd\n") != std::string::npos, r.out);             // a link, as a link
  BOOST_TEST(r.out.find("scratch.txt: No such file") != std::string::npos, r.out); // untracked: not shipped
  BOOST_TEST(r.out.find("ref: refs/heads/main") != std::string::npos, r.out);
  BOOST_TEST(r.out.find("index-ok") != std::string::npos, r.out);
  BOOST_TEST(r.err.find("[vm run] workspace: 3 files") != std::string::npos, r.err);
  BOOST_TEST(w.vms().empty());
  BOOST_TEST(w.leaks() == "");
}

BOOST_AUTO_TEST_CASE(untracked_files_on_request_a_subdirectory_and_the_journal) {
  auto& w = the_world();
  checkout co;
  auto r = w.cli({"vm", "run", "--name", "ws2", "--include-untracked", "--guest-path", "/root/src/p",
                  (co.repo / "src").string(), "--", "sh", "-c", "pwd; cat ../scratch.txt"});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.out << r.err);
  BOOST_TEST(r.out == "/root/src/p/src\nuntracked\n");
  // Kept (stopped), with its workspace on record: ps -a shows it, show gives the details.
  auto ps = w.cli({"ps", "-a"});
  BOOST_TEST(ps.out.find("WORKSPACE") != std::string::npos, ps.out);
  BOOST_TEST(ps.out.find("/root/src/p") != std::string::npos, ps.out);
  auto show = w.cli({"vm", "show", "ws2", "--json"});
  auto info = nlohmann::json::parse(show.out);
  BOOST_TEST(info["workspace"]["guest_path"] == "/root/src/p");
  BOOST_TEST(info["workspace"]["host_path"] == fs::canonical(co.repo).string());
  BOOST_TEST(info["workspace"]["files"] == 4);
  BOOST_TEST(info["workspace"]["branch"] == "main");
  BOOST_TEST(info["workspace"]["head"].get<std::string>().size() == 40u);
  BOOST_TEST(info["workspace"]["digest"].get<std::string>().size() == 64u);
  std::vector<std::string> kinds;
  for (const auto& e : json_lines(w.cli({"events", "--json", "--vm", "ws2"}).out))
    kinds.push_back(e["kind"].get<std::string>());
  auto at = std::find(kinds.begin(), kinds.end(), "workspace_preparing");
  BOOST_TEST_REQUIRE((at != kinds.end()));
  // The work disk is made by the preparation; the start that follows keeps it.
  BOOST_TEST(*(at + 1) == "resource_intended");
  BOOST_TEST(*(at + 3) == "workspace_prepared");
  // workspace show; prepare into the stopped VM replaces the recorded workspace.
  auto wshow = w.cli({"vm", "workspace", "show", "ws2", "--json"});
  BOOST_TEST(nlohmann::json::parse(wshow.out)["guest_path"] == "/root/src/p", wshow.out);
  put_file(co.repo / "later.txt", "prepared later\n");
  git_sh(co.repo, "git add later.txt");
  auto prep = w.cli({"vm", "workspace", "prepare", "ws2", co.repo.string(), "--guest-path", "/root/again"});
  BOOST_TEST_REQUIRE(prep.exit_code == 0, prep.err);
  BOOST_TEST(prep.out.find("prepared ws2: 4 files") == 0u, prep.out);
  BOOST_TEST(w.cli({"vm", "workspace", "show", "ws2"}).out.find("guest path: /root/again") == 0u);
  BOOST_TEST(w.cli({"vm", "start", "ws2"}).exit_code == 0);
  // exec starts in the workspace; --cwd still wins.
  auto in_ws = w.cli({"vm", "exec", "ws2", "--", "pwd"});
  BOOST_TEST(in_ws.out == "/root/again\n");
  BOOST_TEST(in_ws.err.find("warning") == std::string::npos, in_ws.err); // the checkout is as shipped
  BOOST_TEST(w.cli({"vm", "exec", "ws2", "--", "cat", "later.txt"}).out == "prepared later\n");
  BOOST_TEST(w.cli({"vm", "exec", "ws2", "--cwd", "/tmp", "--", "pwd"}).out == "/tmp\n");
  // Into the running VM: the guest lends its work disk (nothing uses /root), the host writes it.
  auto live = w.cli({"vm", "workspace", "prepare", "ws2", co.repo.string(), "--guest-path", "/root/live"});
  BOOST_TEST_REQUIRE(live.exit_code == 0, live.err);
  BOOST_TEST(live.out.find("prepared ws2: 4 files") == 0u, live.out);
  auto last_kinds = [&](std::size_t n) {
    std::vector<std::string> k;
    for (const auto& e : json_lines(w.cli({"events", "--json", "--vm", "ws2"}).out))
      k.push_back(e["kind"].get<std::string>());
    return std::vector<std::string>(k.end() - static_cast<long>(std::min(n, k.size())), k.end());
  };
  std::vector<std::string> lent{"workspace_preparing", "workspace_disk_released", "workspace_prepared"};
  BOOST_TEST(last_kinds(3) == lent, boost::test_tools::per_element());
  BOOST_TEST(w.cli({"vm", "exec", "ws2", "--", "grep", "-c", " /root ext4 ", "/proc/mounts"}).out == "1\n");
  // While a process works in /root the guest keeps its disk: the stream goes through the agent.
  std::thread busy([&] { (void)w.cli({"vm", "exec", "ws2", "--cwd", "/root/live", "--", "sleep", "12"}); });
  std::this_thread::sleep_for(3s);
  auto streamed = w.cli({"vm", "workspace", "prepare", "ws2", co.repo.string(), "--guest-path", "/root/streamed"});
  busy.join();
  BOOST_TEST_REQUIRE(streamed.exit_code == 0, streamed.err);
  std::vector<std::string> through_agent{"vm_command", "workspace_preparing", "workspace_prepared"};
  BOOST_TEST(last_kinds(3) == through_agent, boost::test_tools::per_element());
  auto again_live = w.cli({"vm", "workspace", "prepare", "ws2", co.repo.string(), "--guest-path", "/root/live"});
  BOOST_TEST_REQUIRE(again_live.exit_code == 0, again_live.err);
  auto tree = [&](const std::string& dir) {
    auto listed = w.cli({"vm", "exec", "ws2", "--cwd", dir, "--", "sh", "-c",
                         "find . | sort | while read -r f; do [ \"$f\" = ./.git/index ] && continue; "
                         "if [ -L \"$f\" ]; then echo \"L $f $(readlink \"$f\")\"; "
                         "elif [ -d \"$f\" ]; then echo \"D $f $(stat -c %a \"$f\")\"; "
                         "else echo \"F $f $(stat -c '%a %s' \"$f\") $(sha1sum < \"$f\")\"; fi; done"});
    BOOST_TEST_REQUIRE(listed.exit_code == 0, listed.err);
    return listed.out;
  };
  auto on_disk = tree("/root/again");
  BOOST_TEST(on_disk.find("F ./README 644") != std::string::npos, on_disk);
  BOOST_TEST(on_disk.find("L ./passwd-link /etc/passwd") != std::string::npos, on_disk);
  BOOST_TEST(tree("/root/live") == on_disk);
  BOOST_TEST(tree("/root/streamed") == on_disk);
  BOOST_TEST(w.cli({"vm", "exec", "ws2", "--", "pwd"}).out == "/root/live\n");
  // A host commit after the preparation: exec says the checkout moved on, and how to re-sync;
  // --auto-prepare re-syncs first, into the running VM.
  git_sh(co.repo, "git commit -q -am 'on the host'");
  auto moved = w.cli({"vm", "exec", "ws2", "--", "true"});
  BOOST_TEST(moved.exit_code == 0);
  BOOST_TEST(moved.err.find("moved on since VM ws2's workspace was prepared (HEAD ") != std::string::npos, moved.err);
  BOOST_TEST(moved.err.find("--auto-prepare") != std::string::npos, moved.err);
  auto synced = w.cli({"vm", "exec", "--auto-prepare", "ws2", "--", "cat", ".git/shallow"});
  BOOST_TEST_REQUIRE(synced.exit_code == 0, synced.err);
  BOOST_TEST(synced.out == git_sh(co.repo, "git rev-parse HEAD"));
  BOOST_TEST(synced.err.find("[vm exec] workspace: 4 files") != std::string::npos, synced.err);
  BOOST_TEST(w.cli({"vm", "exec", "ws2", "--", "true"}).err.find("warning") == std::string::npos);
  // The edit in the guest survives a stop and a start.
  BOOST_TEST(w.cli({"vm", "exec", "ws2", "--", "sh", "-c", "echo guest-edit >> README"}).exit_code == 0);
  BOOST_TEST(w.cli({"vm", "stop", "ws2"}).exit_code == 0);
  BOOST_TEST(w.cli({"vm", "start", "ws2"}).exit_code == 0);
  auto kept = w.cli({"vm", "exec", "ws2", "--", "cat", "/root/live/README"});
  BOOST_TEST(kept.out.find("guest-edit") != std::string::npos, kept.out);
  BOOST_TEST(w.cli({"vm", "delete", "--force", "ws2"}).exit_code == 0);
  auto verify = w.sb.replay({"verify"});
  BOOST_TEST(verify.exit_code == 0, verify.out << verify.err);
  BOOST_TEST(w.leaks() == "");
}

BOOST_AUTO_TEST_CASE(file_sync_and_the_git_identity_reach_the_guest) {
  auto& w = the_world();
  // A home of the test's own, with a synced tree holding a link out of it, and sources that
  // are outside it or lead out of it.
  temp_dir tmp{"banger-home-e2e"};
  fs::path home = tmp.path / "home";
  put_file(home / ".config/tool/settings", "from the host\n");
  ::chmod((home / ".config/tool/settings").c_str(), 0600);
  put_file(tmp.path / "secret", "outside the home\n");
  BOOST_TEST_REQUIRE(::symlink((tmp.path / "secret").c_str(), (home / ".config/tool/escape").c_str()) == 0);
  BOOST_TEST_REQUIRE(::symlink((tmp.path / "secret").c_str(), (home / ".netrc").c_str()) == 0);
  auto identity = [&](const std::string& email) {
    put_file(home / ".gitconfig", "[user]\n\tname = Host User\n\temail = " + email + "\n");
  };
  identity("host@example.invalid");
  std::string config_before;
  if (auto c = read_file(w.config_file()))
    config_before = *c;
  fs::create_directories(w.config_file().parent_path());
  std::ofstream(w.config_file(), std::ios::app)
    << "\n[[file_sync]]\nhost = \"~/.config/tool\"\nguest = \"/root/.config/tool\"\n"
    << "[[file_sync]]\nhost = \"~/missing\"\nguest = \"/root/missing\"\n"
    << "[[file_sync]]\nhost = \"~/.netrc\"\nguest = \"/root/.netrc\"\n"
    << "[[file_sync]]\nhost = \"" << (tmp.path / "secret").string() << "\"\nguest = \"/root/secret\"\n";
  w.sb.env["HOME"] = home.string();
  w.sb.env["GIT_CONFIG_GLOBAL"] = (home / ".gitconfig").string();
  struct restore {
    world& w;
    std::string config;
    ~restore() {
      std::ofstream(w.config_file(), std::ios::trunc) << config;
      w.sb.env.erase("HOME");
      w.sb.env.erase("GIT_CONFIG_GLOBAL");
    }
  } restored{w, config_before};

  auto r = w.cli({"vm", "run", "--rm", "--", "sh", "-c",
                  "cat /root/.config/tool/settings; stat -c %a /root/.config/tool/settings; ls -A /root/.config/tool; "
                  "ls /root/missing /root/.netrc /root/secret 2>&1 | grep -c 'No such file'; cat /root/.gitconfig"});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.out << r.err);
  BOOST_TEST(r.out.find("from the host\n600\nsettings\n3\n") == 0u, r.out); // the link in the tree not synced
  BOOST_TEST(r.out.find("# Written by banger from the host's git identity") != std::string::npos, r.out);
  BOOST_TEST(r.out.find("name = \"Host User\"") != std::string::npos, r.out);
  BOOST_TEST(r.out.find("email = \"host@example.invalid\"") != std::string::npos, r.out);
  for (auto warning : {"tool/escape is a symlink; not synced", "~/missing does not exist",
                       "~/.netrc leads out of your home through a symlink", "secret is not inside your home"})
    BOOST_TEST(r.err.find(warning) != std::string::npos, warning << " in:\n" << r.err);

  // A kept VM: every start syncs again. banger's .gitconfig follows the host; the user's own stays.
  auto created = w.cli({"vm", "create", "--name", "fs1"});
  BOOST_TEST_REQUIRE(created.exit_code == 0, created.err);
  put_file(home / ".config/tool/settings", "edited on the host\n");
  identity("moved@example.invalid");
  BOOST_TEST_REQUIRE(w.cli({"vm", "stop", "fs1"}).exit_code == 0);
  BOOST_TEST_REQUIRE(w.cli({"vm", "start", "fs1"}).exit_code == 0);
  BOOST_TEST(w.cli({"vm", "exec", "fs1", "--", "cat", "/root/.config/tool/settings"}).out == "edited on the host\n");
  auto id = w.cli({"vm", "exec", "fs1", "--", "cat", "/root/.gitconfig"});
  BOOST_TEST(id.out.find("moved@example.invalid") != std::string::npos, id.out);
  BOOST_TEST(w.cli({"vm", "exec", "fs1", "--", "sh", "-c", "printf '[user]\\n\\tname = mine\\n' > /root/.gitconfig"})
               .exit_code == 0);
  // Into the running VM, a prepare syncs too.
  checkout co;
  put_file(home / ".config/tool/settings", "prepared\n");
  auto prep = w.cli({"vm", "workspace", "prepare", "fs1", co.repo.string()});
  BOOST_TEST_REQUIRE(prep.exit_code == 0, prep.err);
  BOOST_TEST(prep.err.find("/root/.gitconfig is the guest's own") != std::string::npos, prep.err);
  BOOST_TEST(w.cli({"vm", "exec", "fs1", "--", "cat", "/root/.config/tool/settings"}).out == "prepared\n");
  BOOST_TEST(w.cli({"vm", "exec", "fs1", "--", "cat", "/root/.gitconfig"}).out == "[user]\n\tname = mine\n");
  BOOST_TEST(w.cli({"vm", "delete", "--force", "fs1"}).exit_code == 0);
  BOOST_TEST(w.leaks() == "");
}

BOOST_AUTO_TEST_CASE(what_is_not_a_checkout_makes_no_vm) {
  auto& w = the_world();
  temp_dir plain{"banger-ws-plain"};
  auto r = w.cli({"vm", "run", "--rm", plain.path.string(), "--", "true"});
  BOOST_TEST(r.exit_code == 1);
  BOOST_TEST(r.err.find("not in a git checkout") != std::string::npos, r.err);
  BOOST_TEST(w.vms().empty());
  // A workspace too big for the work disk is refused before anything is written; --rm cleans up.
  checkout co;
  {
    std::ofstream big(co.repo / "big.bin", std::ios::binary);
    big.seekp((80 << 20) - 1);
    big.put('x');
  }
  git_sh(co.repo, "git add big.bin");
  auto full = w.cli({"vm", "run", "--rm", "--disk-size", "64", co.repo.string(), "--", "true"});
  BOOST_TEST(full.exit_code == 1);
  BOOST_TEST(full.err.find("the work disk has") != std::string::npos, full.err);
  BOOST_TEST(w.vms().empty());
  BOOST_TEST(w.leaks() == "");
}

BOOST_AUTO_TEST_CASE(git_in_a_debootstrap_guest_sees_the_hosts_checkout_without_rehashing) {
  auto& w = the_world();
  w.build_debootstrap_image("deb");
  checkout co;
  auto host = [&](const std::string& q) { return git_sh(co.repo, q); };
  // The index is written with the stat data of the landed files: `git status` must not need to
  // refresh (and so rewrite) it; and it reports exactly the host's uncommitted state.
  auto r = w.cli({"vm", "run", "--rm", "--image", "deb", co.repo.string(), "--", "sh", "-c",
                  "sha1sum .git/index; git status --porcelain --untracked-files=no; sha1sum .git/index; "
                  "echo ---; git rev-parse HEAD; git diff --stat; "
                  "git -c user.name=g -c user.email=g@example.invalid commit -qam 'in the guest' && "
                  "git rev-list --count HEAD"},
                 600s);
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.out << r.err);
  auto lines = [](const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    for (std::string l; std::getline(in, l);)
      out.push_back(l);
    return out;
  };
  auto out = lines(r.out);
  BOOST_TEST_REQUIRE(out.size() >= 6u, r.out);
  BOOST_TEST(out[0] == out[2], "git status rewrote the index:\n" << r.out); // nothing was re-hashed
  BOOST_TEST(out[1] == lines(host("git status --porcelain --untracked-files=no"))[0]);
  BOOST_TEST(out[4] == lines(host("git rev-parse HEAD"))[0]);
  BOOST_TEST(r.out.find(host("git diff --stat")) != std::string::npos, r.out << "\nhost:\n" << host("git diff --stat"));
  BOOST_TEST(out.back() == "2"); // a commit in the guest works, on top of the shallow HEAD
  BOOST_TEST(w.vms().empty());
  // vm ssh starts in the workspace too (the real OpenSSH client and the guest's sshd).
  auto kept = w.cli({"vm", "run", "--name", "gitws", "--image", "deb", co.repo.string(), "--", "true"}, 600s);
  BOOST_TEST_REQUIRE(kept.exit_code == 0, kept.err);
  BOOST_TEST_REQUIRE(w.cli({"vm", "start", "gitws"}, 300s).exit_code == 0);
  auto where = w.cli({"vm", "ssh", "gitws", "--", "pwd"});
  BOOST_TEST(where.out == "/root/proj\n", where.err);
  // The guest's edits come back: a patch that applies to the host checkout and makes it the
  // guest's tree, and the guest's commits as a series `git am` takes.
  auto edit = w.cli({"vm", "exec", "gitws", "--", "sh", "-c",
                     "echo from the guest >> README && printf '\\000\\001\\002' > data.bin && chmod -x src/hello.sh "
                     "&& rm passwd-link && git add -A && git -c user.name=g -c user.email=g@example.invalid commit -qm "
                     "'guest commit' && echo uncommitted > later.txt"});
  BOOST_TEST_REQUIRE(edit.exit_code == 0, edit.err);
  auto patch = co.tmp.path / "guest.patch";
  auto exported = w.cli({"vm", "workspace", "export", "gitws", "-o", patch.string()});
  BOOST_TEST_REQUIRE(exported.exit_code == 0, exported.err);
  BOOST_TEST(exported.err.find("warning") == std::string::npos, exported.err); // it applies
  host("git apply '" + patch.string() + "'");
  auto guest_tree = w.cli({"vm", "exec", "gitws", "--", "sh", "-c",
                           "git add -A && git write-tree && git reset -q && git rev-parse HEAD^{tree}"});
  BOOST_TEST_REQUIRE(guest_tree.exit_code == 0, guest_tree.err);
  BOOST_TEST(guest_tree.out.substr(0, 41) == host("rm scratch.txt && git add -A && git write-tree"));
  auto mbox = co.tmp.path / "guest.mbox";
  auto series = w.cli({"vm", "workspace", "export", "gitws", "--commits", "-o", mbox.string()});
  BOOST_TEST_REQUIRE(series.exit_code == 0, series.err);
  BOOST_TEST(series.err.find("not committed") != std::string::npos, series.err); // later.txt
  auto clone = co.tmp.path / "clone";
  git_sh(co.tmp.path, "git clone -q proj clone");
  git_sh(clone, "git am -q '" + mbox.string() + "'");
  BOOST_TEST(git_sh(clone, "git rev-parse HEAD^{tree}") == guest_tree.out.substr(41));
  // A guest with mise (the real release, put where mise installs itself) and a checkout with a
  // .mise.toml: commands in the workspace run through `mise exec`, the landed workspace trusted
  // first (paranoid mode refuses an untrusted .mise.toml); elsewhere they do not.
  std::string put;
  for (const auto& a : w.command({"vm", "exec", "gitws", "--", "sh", "-c",
                                  "mkdir -p /root/.local/bin && cat > /root/.local/bin/mise && chmod 755 "
                                  "/root/.local/bin/mise"}))
    put += "'" + a + "' ";
  auto copied = run({"sh", "-c", put + "< '" + mise_binary().string() + "'"}, w.sb.env, 600s);
  BOOST_TEST_REQUIRE(copied.exit_code == 0, copied.err);
  put_file(co.repo / ".mise.toml", "[env]\nGREETING = \"from mise\"\n");
  host("git add .mise.toml");
  auto reshipped = w.cli({"vm", "workspace", "prepare", "gitws", co.repo.string()});
  BOOST_TEST_REQUIRE(reshipped.exit_code == 0, reshipped.err);
  auto via = w.cli({"vm", "exec", "gitws", "-e", "MISE_PARANOID=1", "--", "sh", "-c", "echo \"[$GREETING]\""});
  BOOST_TEST(via.out == "[from mise]\n", via.out << via.err);
  auto outside = w.cli({"vm", "exec", "gitws", "--cwd", "/tmp", "--", "sh", "-c", "echo \"[$GREETING]\""});
  BOOST_TEST(outside.out == "[]\n", outside.out << outside.err);
  BOOST_TEST(w.cli({"vm", "delete", "--force", "gitws"}).exit_code == 0);
  BOOST_TEST(w.leaks() == "");
}

BOOST_AUTO_TEST_SUITE_END()
