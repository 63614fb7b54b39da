// Unit tests of the pure parts of the vm commands (vm.hpp): names, env, ping summaries, ages, shell quoting
// (checked by a real /bin/sh), the ssh command line, the list table, and the JSON of a VmInfo
// built in memory and converted as the commands convert it.
#include <cstdio>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <capnp/message.h>
#include <nlohmann/json.hpp>

#include "cli/vm.hpp"
#include "cli/vm_rpc.hpp"

using namespace banger;
using namespace banger::cli;

namespace {

constexpr std::int64_t sec = 1'000'000'000;

/// Runs `/bin/sh -c "printf '%s\n' <line>"`, returning what it printed: how a shell splits `line`.
std::string sh_split(const std::string& line) {
  int out[2];
  BOOST_REQUIRE(::pipe(out) == 0);
  pid_t pid = ::fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::close(out[0]);
    std::string script = "printf '%s\\n' " + line;
    ::execl("/bin/sh", "sh", "-c", script.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(out[1]);
  std::string got;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(out[0], buf, sizeof buf)) > 0)
    got.append(buf, static_cast<std::size_t>(n));
  ::close(out[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  BOOST_TEST(WIFEXITED(status));
  return got;
}

vm_info sample(std::string name, std::string state, std::int64_t created_ns) {
  vm_info v;
  v.name = std::move(name);
  v.state = std::move(state);
  v.image = "default";
  v.vcpus = 2;
  v.memory_mib = 512;
  v.created_ns = created_ns;
  return v;
}

} // namespace

BOOST_AUTO_TEST_SUITE(vm_cli)

BOOST_AUTO_TEST_CASE(names_are_dns_labels) {
  for (const char* ok :
       {"a", "web", "web-1", "0abc", "a-b-c", "x23456789012345678901234567890123456789012345678901234567890123"})
    BOOST_TEST(validate_vm_name(ok).has_value(), ok);
  for (const char* bad : {"", "-a", "a-", "Web", "a_b", "a.b", "a b", "é",
                          "x234567890123456789012345678901234567890123456789012345678901234"}) {
    auto r = validate_vm_name(bad);
    BOOST_TEST(!r.has_value(), bad);
    if (!r)
      BOOST_TEST((r.err().code == errc::bad_request));
  }
  BOOST_TEST(validate_vm_name("Web").err().message.find("upper-case") != std::string::npos);
  BOOST_TEST(validate_vm_name(std::string(64, 'a')).err().message.find("64 characters") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(env_needs_key_and_equals) {
  for (const char* ok : {"A=1", "LANG=C.UTF-8", "EMPTY=", "_X=a=b"})
    BOOST_TEST(validate_env(ok).has_value(), ok);
  for (const char* bad : {"A", "=1", "1A=2", "A-B=1", ""})
    BOOST_TEST(!validate_env(bad).has_value(), bad);
}

BOOST_AUTO_TEST_CASE(ping_summaries_give_min_median_max) {
  BOOST_TEST(ping_summary({}) == "no replies");
  BOOST_TEST(ping_summary({1500}) == "1 reply: min 1.50 / median 1.50 / max 1.50 ms");
  BOOST_TEST(ping_summary({3000, 1000, 2000}) == "3 replies: min 1.00 / median 2.00 / max 3.00 ms");
  BOOST_TEST(ping_summary({4000, 1000, 2000, 3000}) == "4 replies: min 1.00 / median 2.50 / max 4.00 ms");
}

BOOST_AUTO_TEST_CASE(ports_merge_ipv4_and_ipv6_and_say_what_the_host_reaches) {
  std::vector<guest_port> listed{{"tcp6", "::", 22, "90/sshd"},           {"tcp", "0.0.0.0", 22, "90/sshd"},
                                 {"udp", "0.0.0.0", 5353, "7/avahi"},     {"tcp", "127.0.0.1", 5432, "55/postgres"},
                                 {"tcp6", "::1", 5432, "55/postgres"},    {"tcp", "0.0.0.0", 8080, ""},
                                 {"tcp", "0.0.0.0", 8080, "12/a\x1b[2Jb"}};
  auto rows = merge_ports(listed);
  BOOST_TEST_REQUIRE(rows.size() == 5u);
  BOOST_TEST(rows[0].protocol == "tcp");
  BOOST_TEST(rows[0].port == 22);
  BOOST_TEST((rows[0].addresses == std::vector<std::string>{"0.0.0.0", "::"}));
  BOOST_TEST(rows[0].from_host);
  BOOST_TEST(rows[1].port == 5432);
  BOOST_TEST((rows[1].addresses == std::vector<std::string>{"127.0.0.1", "::1"}));
  BOOST_TEST(!rows[1].from_host);
  BOOST_TEST(rows[2].port == 8080); // two processes on one port: two rows
  BOOST_TEST(rows[3].port == 8080);
  BOOST_TEST(rows[4].protocol == "udp");
  rows[0].url = "http://10.0.0.2:22/";
  auto table = ports_table(rows);
  BOOST_TEST(table.find("PROTO  PORT  ADDRESS") == 0, table);
  BOOST_TEST(table.find("\ntcp    22    0.0.0.0,::     90/sshd         http://10.0.0.2:22/\n") != std::string::npos,
             table);
  BOOST_TEST(table.find("(guest only)") != std::string::npos, table);
  BOOST_TEST(table.find('\x1b') == std::string::npos, table); // guest text cannot drive the terminal
  BOOST_TEST(table.find("\"12/a\\x1b[2Jb\"") != std::string::npos, table);
  auto j = nlohmann::json::parse(ports_json(rows));
  BOOST_TEST(j.size() == 5u);
  BOOST_TEST(j[0]["url"] == "http://10.0.0.2:22/");
  BOOST_TEST(j[1]["url"].is_null());
  BOOST_TEST(j[1]["from_host"] == false);
  BOOST_TEST(j[4]["addresses"][0] == "0.0.0.0");
}

BOOST_AUTO_TEST_CASE(ages_use_one_unit) {
  std::int64_t now = 1'700'000'000 * sec;
  BOOST_TEST(format_age(0, now) == "-");
  BOOST_TEST(format_age(now, now) == "0s");
  BOOST_TEST(format_age(now - 5 * sec, now) == "5s");
  BOOST_TEST(format_age(now - 59 * sec, now) == "59s");
  BOOST_TEST(format_age(now - 60 * sec, now) == "1m");
  BOOST_TEST(format_age(now - 3 * 60 * sec - 59 * sec, now) == "3m");
  BOOST_TEST(format_age(now - 2 * 3600 * sec, now) == "2h");
  BOOST_TEST(format_age(now - 4 * 86400 * sec - 3600 * sec, now) == "4d");
  BOOST_TEST(format_age(now + 10 * sec, now) == "0s"); // clock skew: never negative
}

BOOST_AUTO_TEST_CASE(shell_quoting_survives_a_real_shell) {
  BOOST_TEST(shell_quote("ls") == "ls");
  BOOST_TEST(shell_quote("/root/a.txt") == "/root/a.txt");
  BOOST_TEST(shell_quote("") == "''");
  BOOST_TEST(shell_quote("exit 42") == "'exit 42'");
  BOOST_TEST(shell_quote("it's") == "'it'\\''s'");
  std::vector<std::string> args{"sh", "-c",          "exit 42", "it's", "",   "$HOME", "`id`", "a\"b", "tab\tx", "*",
                                "~",  "a;b|c&d>e<f", "\\",      "'",    "''", "!x",    "-n",   "{a}",  "#"};
  std::string expected;
  for (const auto& a : args)
    expected += a + "\n";
  BOOST_TEST(sh_split(shell_join(args)) == expected);
  BOOST_TEST(shell_join({"sh", "-c", "exit 42"}) == "sh -c 'exit 42'");
}

BOOST_AUTO_TEST_CASE(ssh_command_line) {
  ssh_target t{"10.0.0.2", "root", "/k/id", "/k/known_hosts", "web.vm", ""};
  auto a = ssh_argv(t, false, {"sh", "-c", "exit 42"});
  std::vector<std::string> want{"ssh",
                                "-i",
                                "/k/id",
                                "-o",
                                "UserKnownHostsFile=/k/known_hosts",
                                "-o",
                                "StrictHostKeyChecking=yes",
                                "-o",
                                "HostKeyAlias=web.vm",
                                "-o",
                                "IdentitiesOnly=yes",
                                "-o",
                                "BatchMode=yes",
                                "-o",
                                "LogLevel=ERROR",
                                "root@10.0.0.2",
                                "--",
                                "sh -c 'exit 42'"};
  BOOST_TEST(a == want, boost::test_tools::per_element());
  auto interactive = ssh_argv(t, true, {});
  BOOST_TEST((std::find(interactive.begin(), interactive.end(), "BatchMode=yes") == interactive.end()));
  BOOST_TEST(interactive.back() == "root@10.0.0.2");
  // With a workspace: commands and login shells start in it.
  t.workspace = "/root/my repo";
  BOOST_TEST(ssh_argv(t, false, {"make", "test"}).back() == "cd '/root/my repo' && make test");
  auto login = ssh_argv(t, true, {});
  BOOST_TEST(login.back() == "cd '/root/my repo' && exec \"${SHELL:-/bin/sh}\" -l");
  BOOST_TEST(login[login.size() - 4] == "-t"); // a terminal for the shell, as ssh gives one itself
  BOOST_TEST(login[login.size() - 3] == "root@10.0.0.2");
}

BOOST_AUTO_TEST_CASE(exit_codes) {
  BOOST_TEST(exit_code(0, std::nullopt) == 0);
  BOOST_TEST(exit_code(42, std::nullopt) == 42);
  BOOST_TEST(exit_code(std::nullopt, 9) == 137);
  BOOST_TEST(exit_code(std::nullopt, 2) == 130);
}

BOOST_AUTO_TEST_CASE(last_lines_of_a_log) {
  BOOST_TEST(last_lines("a\nb\nc\n", 0) == "a\nb\nc\n");
  BOOST_TEST(last_lines("a\nb\nc\n", 2) == "b\nc\n");
  BOOST_TEST(last_lines("a\nb\nc", 2) == "b\nc");
  BOOST_TEST(last_lines("a\nb\nc\n", 5) == "a\nb\nc\n");
  BOOST_TEST(last_lines("", 3) == "");
  BOOST_TEST(last_lines("\n\n", 1) == "\n");
}

BOOST_AUTO_TEST_CASE(table_columns_line_up) {
  std::int64_t now = 1'700'000'000 * sec;
  auto a = sample("web", "running", now - 5 * sec);
  a.ip = "172.16.0.2";
  auto b = sample("a-much-longer-name", "stopped", now - 3 * 3600 * sec);
  b.memory_mib = 4096;
  b.vcpus = 16;
  b.workspace.guest_path = "/root/repo";
  std::string t = vm_table({a, b}, now, false);
  BOOST_TEST(t == "NAME                STATE    IMAGE    IP          VCPU  MEM      WORKSPACE   AGE\n"
                  "web                 running  default  172.16.0.2  2     512MiB   -           5s\n"
                  "a-much-longer-name  stopped  default  -           16    4096MiB  /root/repo  3h\n");
  // Colour wraps the padded state, so the columns after it still line up on a terminal.
  std::string c = vm_table({a, sample("b", "starting", now)}, now, true);
  BOOST_TEST(c.find("\x1b[32mrunning \x1b[0m  default") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(json_from_an_in_memory_vm_info) {
  capnp::MallocMessageBuilder msg;
  auto b = msg.initRoot<rpc::VmInfo>();
  b.setName("web");
  b.setId("0a1b2c3d");
  b.setState("running");
  b.setImage("default");
  b.setImageVersion("v1");
  b.setKernel("cloud");
  b.setKernelVersion("k1");
  b.setVcpus(2);
  b.setMemoryMib(1024);
  b.setDiskMib(2048);
  b.setIp("172.16.0.2");
  b.setCreatedNs(11);
  b.setStateSinceNs(22);
  b.setLastError("");
  b.setPid(4242);
  b.setConsoleLog("/state/vms/web/console.log");
  auto res = b.initResources(2);
  res.set(0, "tap:bg0a1b2c3d");
  res.set(1, "ip:172.16.0.2");
  auto v = vm_detail::to_vm_info(b.asReader());
  BOOST_TEST(nlohmann::json::parse(vm_json(v))["workspace"].is_null()); // none
  auto ws = b.initWorkspace();
  ws.setGuestPath("/root/repo");
  ws.setFiles(7);
  v = vm_detail::to_vm_info(b.asReader());
  auto j = nlohmann::json::parse(vm_json(v));
  std::vector<std::string> keys;
  for (auto it = j.begin(); it != j.end(); ++it)
    keys.push_back(it.key());
  std::vector<std::string> want{
    "console_log", "created_ns",     "disk_mib",   "id",         "image", "image_version", "ip",
    "kernel",      "kernel_version", "last_error", "memory_mib", "name",  "pid",           "resources",
    "state",       "state_since_ns", "vcpus",      "workspace"};
  BOOST_TEST(keys == want, boost::test_tools::per_element());
  BOOST_TEST(j["name"] == "web");
  BOOST_TEST(j["memory_mib"] == 1024);
  BOOST_TEST(j["created_ns"] == 11);
  BOOST_TEST(j["state_since_ns"] == 22);
  BOOST_TEST(j["pid"] == 4242);
  BOOST_TEST(j["resources"][1] == "ip:172.16.0.2");
  BOOST_TEST(j["workspace"]["guest_path"] == "/root/repo");
  BOOST_TEST(j["workspace"]["files"] == 7);
  auto list = nlohmann::json::parse(vm_list_json({v, v}));
  BOOST_TEST(list.is_array());
  BOOST_TEST(list.size() == 2u);
  BOOST_TEST(nlohmann::json::parse(vm_list_json({})).dump() == "[]");
}

BOOST_AUTO_TEST_CASE(show_text_has_every_field) {
  auto v = sample("web", "stopped", 1'700'000'000 * sec);
  v.last_error = "agent did not answer within 30s";
  std::string s = vm_show_text(v, 1'700'000'100 * sec);
  for (const char* key : {"name:", "id:", "state:", "image:", "kernel:", "vcpus:", "memory:", "disk:", "ip:",
                          "created:", "pid:", "console:", "resources:", "last error:"})
    BOOST_TEST(s.find(key) != std::string::npos, key);
  BOOST_TEST(s.find("(1m ago)") != std::string::npos);
  BOOST_TEST(s.find("agent did not answer") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(vm_run_takes_a_path_before_dashdash_and_the_command_after) {
  using V = std::vector<std::string>;
  {
    vm_run_opts r; // banger vm run ./repo -- make test
    BOOST_TEST(split_run_arguments(r, {"./repo", "make", "test"}, 2).has_value());
    BOOST_TEST(r.workspace.path == "./repo");
    BOOST_TEST(r.exec.argv == (V{"make", "test"}), boost::test_tools::per_element());
  }
  {
    vm_run_opts r; // banger vm run -- uname -a: no path, as before
    BOOST_TEST(split_run_arguments(r, {"uname", "-a"}, 2).has_value());
    BOOST_TEST(r.workspace.path.empty());
    BOOST_TEST(r.exec.argv == (V{"uname", "-a"}), boost::test_tools::per_element());
  }
  {
    vm_run_opts r; // banger vm run --dry-run ./repo
    r.dry_run = true;
    BOOST_TEST(split_run_arguments(r, {"./repo"}, 0).has_value());
    BOOST_TEST(r.workspace.path == "./repo");
    BOOST_TEST(r.exec.argv.empty());
  }
  {
    vm_run_opts r; // banger vm run a b -- c
    auto e = split_run_arguments(r, {"a", "b", "c"}, 1);
    BOOST_TEST_REQUIRE(!e.has_value());
    BOOST_TEST(e.err().message.find("at most one PATH") != std::string::npos, e.err().message);
  }
  {
    vm_run_opts r; // banger vm run --dry-run -- true
    r.dry_run = true;
    BOOST_TEST(!split_run_arguments(r, {"true"}, 1).has_value());
  }
  {
    vm_run_opts r; // banger vm run --include-untracked -- true
    r.workspace.include_untracked = true;
    BOOST_TEST(!split_run_arguments(r, {"true"}, 1).has_value());
  }
}

BOOST_AUTO_TEST_SUITE_END()
