// The real banger-helper, driven through helper::client, as root, in a network namespace this
// test process enters first (unshare(CLONE_NEWNET) in a global fixture; every process it then
// starts, the helper and ip/nft included, inherits it, so the host's interfaces and nftables
// are never touched). Not root: it re-executes itself through `sudo -n`, or every case fails
// saying it needs root.
#include "helper/client.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <linux/if_tun.h>
#include <net/if.h>
#include <pwd.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "common/process.hpp"
#include "common/subprocess.hpp"
#include "tests/support/proc.hpp"

using namespace banger;
using namespace banger::helper;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

/// Why this machine cannot run the test ("" when it can). Written once, by the global fixture.
std::string& setup_problem() {
  static std::string problem;
  return problem;
}

std::vector<std::string> own_args() {
  auto c = read_file("/proc/self/cmdline");
  std::vector<std::string> out;
  if (!c)
    return out;
  std::size_t start = 0;
  while (start < c->size()) {
    auto nul = c->find('\0', start);
    out.push_back(c->substr(start, nul - start));
    start = nul + 1;
  }
  return out;
}

struct enter_netns {
  enter_netns() {
    if (::geteuid() != 0) {
      auto sudo = find_program("sudo");
      const char* bin = std::getenv("BANGER_BIN_DIR");
      if (std::getenv("BANGER_HELPER_TEST_REEXEC") == nullptr && sudo && bin &&
          run_process({sudo->string(), "-n", "true"}).exit_code == 0) {
        std::vector<std::string> argv{sudo->string(),
                                      "-n",
                                      "env",
                                      std::string("BANGER_BIN_DIR=") + bin,
                                      "BANGER_HELPER_TEST_REEXEC=1",
                                      fs::read_symlink("/proc/self/exe").string()};
        auto own = own_args();
        argv.insert(argv.end(), own.begin() + (own.empty() ? 0 : 1), own.end());
        std::vector<char*> cargv;
        for (auto& a : argv)
          cargv.push_back(a.data());
        cargv.push_back(nullptr);
        std::fflush(nullptr);
        ::execv(cargv[0], cargv.data());
      }
      setup_problem() = "helper_test needs root: it creates a network namespace and runs banger-helper as root; "
                        "run it as root or allow passwordless `sudo -n`";
      return;
    }
    if (::unshare(CLONE_NEWNET) != 0)
      setup_problem() = "unshare(CLONE_NEWNET): " + errno_text(errno) + "; helper_test needs CAP_SYS_ADMIN";
  }
};

BOOST_TEST_GLOBAL_FIXTURE(enter_netns);

void require_setup() { BOOST_REQUIRE_MESSAGE(setup_problem().empty(), setup_problem()); }

json run_json(const std::vector<std::string>& argv) {
  auto r = run_process(argv);
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, describe_command(argv) << " failed: " << r.err);
  return json::parse(r.out);
}

std::string tool(const char* name) {
  auto p = find_program(name);
  BOOST_REQUIRE_MESSAGE(p.has_value(), name << " is not installed (scripts/install-deps installs it)");
  return p->string();
}

json link_of(const std::string& name) {
  auto r = run_process({tool("ip"), "-j", "-d", "addr", "show", "dev", name});
  if (r.exit_code != 0)
    return json();
  auto j = json::parse(r.out);
  return j.empty() ? json() : j[0];
}

bool link_exists(const std::string& name) { return !link_of(name).is_null(); }

/// A helper over fresh state and runtime dirs (root-owned, 0700) in a temp dir.
struct helper_fixture {
  test::temp_dir tmp{"banger-helper-it"};
  fs::path state = tmp.path / "state", runtime = tmp.path / "run";

  helper_fixture() {
    require_setup();
    // Each case gets a network namespace of its own (only `lo`, down).
    BOOST_REQUIRE_MESSAGE(::unshare(CLONE_NEWNET) == 0, "unshare(CLONE_NEWNET): " << errno_text(errno));
    fs::create_directory(state);
    fs::create_directory(runtime);
    ::chmod(state.c_str(), 0700);
    ::chmod(runtime.c_str(), 0700);
  }

  launch_options options() const {
    launch_options o;
    o.helper_bin = test::bin_dir() / "banger-helper";
    o.state_dir = state;
    o.runtime_dir = runtime;
    return o;
  }

  client start() {
    auto c = client::launch(options());
    BOOST_REQUIRE_MESSAGE(c.has_value(), (c ? "" : c.err().message));
    return std::move(c).value();
  }
};

std::vector<json> json_lines(const std::string& text) {
  std::vector<json> out;
  std::size_t start = 0;
  while (start < text.size()) {
    auto nl = text.find('\n', start);
    if (nl == std::string::npos)
      nl = text.size();
    auto j = json::parse(text.substr(start, nl - start), nullptr, false);
    if (!j.is_discarded() && j.is_object())
      out.push_back(std::move(j));
    start = nl + 1;
  }
  return out;
}

bool refused(const expected<void>& r, errc code) { return !r && r.err().code == code; }

std::string describe(const expected<void>& r) {
  return r ? "ok" : std::string(to_string(r.err().code)) + ": " + r.err().message;
}

std::vector<json> banger_rules() {
  auto r = run_process({tool("nft"), "-j", "list", "table", "ip", "banger"});
  std::vector<json> out;
  if (r.exit_code != 0) {
    BOOST_TEST_MESSAGE("nft list table ip banger: " << r.err);
    return out;
  }
  auto listed = json::parse(r.out);
  for (const auto& item : listed["nftables"])
    if (item.contains("rule"))
      out.push_back(item["rule"]);
  return out;
}

bool banger_table_exists() {
  auto tables = run_json({tool("nft"), "-j", "list", "tables", "ip"});
  for (const auto& item : tables["nftables"])
    if (item.contains("table") && item["table"]["name"] == "banger")
      return true;
  return false;
}

/// A process that looks like banger's QEMU: /bin/sh copied to <dir>/qemu-system-x86_64, looping
/// on sleep, with `arg` on its command line. Waits until its exe is the copy.
int fake_vmm(const fs::path& dir, const std::string& arg) {
  fs::create_directories(dir);
  auto exe = dir / "qemu-system-x86_64";
  if (!fs::exists(exe))
    fs::copy_file("/bin/sh", exe);
  int pid = test::spawn({exe.string(), "-c", "while :; do sleep 1; done", arg}, {}, dir);
  auto proc_exe = "/proc/" + std::to_string(pid) + "/exe";
  for (int i = 0; i < 500; ++i) {
    std::error_code ec;
    if (fs::read_symlink(proc_exe, ec) == exe)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pid;
}

/// Reaps `pid` within a few seconds; the raw status, or -1 when it is still running.
int reap(int pid, int sig_if_stuck = SIGKILL) {
  for (int i = 0; i < 300; ++i) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid)
      return status;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid, sig_if_stuck);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return -1;
}

char proc_state(int pid) {
  auto s = read_file("/proc/" + std::to_string(pid) + "/stat");
  if (!s)
    return '?';
  auto close = s->rfind(')');
  return close == std::string::npos || close + 2 >= s->size() ? '?' : (*s)[close + 2];
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(helper_integration, helper_fixture)

BOOST_AUTO_TEST_CASE(ping_answers_the_version) {
  auto c = start();
  auto v = c.ping("op-ping");
  BOOST_REQUIRE(v.has_value());
  BOOST_TEST(*v == BANGER_VERSION);
}

BOOST_AUTO_TEST_CASE(bridge_is_created_once_with_its_address_and_up) {
  auto c = start();
  for (int i = 0; i < 2; ++i) {
    auto r = c.ensure_bridge("br-fc", "172.30.0.1/24", "op-br");
    BOOST_REQUIRE_MESSAGE(r.has_value(), describe(r));
  }
  auto l = link_of("br-fc");
  BOOST_REQUIRE(!l.is_null());
  BOOST_TEST(l["linkinfo"]["info_kind"] == "bridge");
  bool up = false;
  for (const auto& f : l["flags"])
    up = up || f == "UP";
  BOOST_TEST(up);
  int matches = 0;
  for (const auto& a : l["addr_info"])
    if (a["family"] == "inet" && a["local"] == "172.30.0.1" && a["prefixlen"] == 24)
      ++matches;
  BOOST_TEST(matches == 1);
  // An existing non-bridge of a bridge name is a conflict, not adopted.
  BOOST_REQUIRE(run_process({tool("ip"), "tuntap", "add", "dev", "br-fc-dummy", "mode", "tap"}).exit_code == 0);
  BOOST_TEST(refused(c.ensure_bridge("br-fc-dummy", "172.31.0.1/24", "op-br2"), errc::conflict));
}

BOOST_AUTO_TEST_CASE(tap_is_created_attached_owned_and_deleted_idempotently) {
  auto c = start();
  BOOST_REQUIRE(c.ensure_bridge("br-fc", "172.30.0.1/24", "op-t").has_value());
  for (int i = 0; i < 2; ++i) {
    auto r = c.create_tap("bgt1", "br-fc", 1000, "op-tap");
    BOOST_REQUIRE_MESSAGE(r.has_value(), describe(r));
  }
  auto l = link_of("bgt1");
  BOOST_REQUIRE(!l.is_null());
  BOOST_TEST(l["master"] == "br-fc");
  BOOST_TEST(l["linkinfo"]["info_kind"] == "tun");
  BOOST_TEST(l["linkinfo"]["info_data"]["type"] == "tap");
  const auto& user = l["linkinfo"]["info_data"]["user"];
  const passwd* pw = ::getpwuid(1000);
  if (user.is_string())
    BOOST_TEST(user.get<std::string>() == (pw ? std::string(pw->pw_name) : std::string("1000")));
  else
    BOOST_TEST(user.get<unsigned>() == 1000u);
  // As `ip tuntap add dev bgt1 mode tap` made it, which QEMU's -netdev tap,ifname= attaches to.
  const auto& data = l["linkinfo"]["info_data"];
  BOOST_TEST(data["persist"] == true);
  BOOST_TEST(data["pi"] == false);
  BOOST_TEST(data["vnet_hdr"] == false);
  BOOST_TEST(data["multi_queue"] == false);
  bool up = false;
  for (const auto& f : l["flags"])
    up = up || f == "UP";
  BOOST_TEST(up);

  // Same name, another owner or another bridge: refused, not adopted or moved.
  BOOST_TEST(refused(c.create_tap("bgt1", "br-fc", 1001, "op-tap2"), errc::conflict));
  BOOST_REQUIRE(c.ensure_bridge("br-fc-b", "172.31.0.1/24", "op-t").has_value());
  BOOST_TEST(refused(c.create_tap("bgt1", "br-fc-b", 1000, "op-tap3"), errc::conflict));
  BOOST_TEST(link_of("bgt1")["master"] == "br-fc");
  // A tap on a missing bridge.
  BOOST_TEST(refused(c.create_tap("bgt2", "br-fc-none", 1000, "op-tap4"), errc::not_found));
  BOOST_TEST(!link_exists("bgt2"));

  for (int i = 0; i < 2; ++i) {
    auto r = c.delete_tap("bgt1", "op-del");
    BOOST_REQUIRE_MESSAGE(r.has_value(), describe(r));
  }
  BOOST_TEST(!link_exists("bgt1"));
  // A link with banger's tap prefix that is not a tap is not deleted.
  BOOST_REQUIRE(run_process({tool("ip"), "link", "add", "bgtdummy", "type", "bridge"}).exit_code == 0);
  BOOST_TEST(refused(c.delete_tap("bgtdummy", "op-del2"), errc::conflict));
  BOOST_TEST(link_exists("bgtdummy"));
}

BOOST_AUTO_TEST_CASE(a_tun_is_not_a_tap_and_a_tap_in_use_is_not_deleted) {
  auto c = start();
  BOOST_REQUIRE(c.ensure_bridge("br-fc", "172.30.0.1/24", "op-t").has_value());
  // A tun (layer 3) device with banger's tap prefix is neither adopted nor deleted.
  BOOST_REQUIRE(run_process({tool("ip"), "tuntap", "add", "dev", "bgttun", "mode", "tun"}).exit_code == 0);
  BOOST_TEST(refused(c.create_tap("bgttun", "br-fc", 1000, "op-tun"), errc::conflict));
  BOOST_TEST(refused(c.delete_tap("bgttun", "op-tun-del"), errc::conflict));
  BOOST_TEST(link_exists("bgttun"));

  // While a process (the VMM) holds the tap open, deleting it fails and leaves it in place;
  // once the process lets go, it is deleted.
  auto r = c.create_tap("bgt1", "br-fc", 1000, "op-tap");
  BOOST_REQUIRE_MESSAGE(r.has_value(), describe(r));
  int raw = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  BOOST_REQUIRE_MESSAGE(raw >= 0, "open /dev/net/tun: " << errno_text(errno));
  unique_fd held(raw);
  ifreq ifr{};
  std::strcpy(ifr.ifr_name, "bgt1");
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  BOOST_REQUIRE_MESSAGE(::ioctl(held.get(), TUNSETIFF, &ifr) == 0, "TUNSETIFF bgt1: " << errno_text(errno));
  auto busy = c.delete_tap("bgt1", "op-del-busy");
  BOOST_TEST(refused(busy, errc::operation_failed));
  if (!busy)
    BOOST_TEST(busy.err().message.find("EBUSY") != std::string::npos, busy.err().message);
  BOOST_TEST(link_exists("bgt1"));
  held.reset();
  auto d = c.delete_tap("bgt1", "op-del");
  BOOST_REQUIRE_MESSAGE(d.has_value(), describe(d));
  BOOST_TEST(!link_exists("bgt1"));
}

BOOST_AUTO_TEST_CASE(nat_rules_are_added_once_and_cleared_exactly) {
  tool("nft");
  auto c = start();
  for (int i = 0; i < 2; ++i) {
    auto r = c.ensure_nat("br-fc", "172.30.0.1/24", "op-nat");
    BOOST_REQUIRE_MESSAGE(r.has_value(), describe(r));
  }
  auto forward = read_file("/proc/sys/net/ipv4/ip_forward");
  BOOST_TEST((forward && *forward == "1\n"));
  auto rules = banger_rules();
  int masquerades = 0;
  for (const auto& r : rules)
    for (const auto& e : r["expr"])
      if (e.contains("masquerade")) {
        ++masquerades;
        BOOST_TEST(r["comment"] == "banger br-fc 172.30.0.0/24 masquerade");
        BOOST_TEST(r["chain"] == "postrouting");
      }
  BOOST_TEST(masquerades == 1);
  BOOST_TEST(rules.size() == 3u); // masquerade + forward from and to the bridge

  // A second bridge's rules live beside the first; clearing one leaves the other.
  BOOST_REQUIRE(c.ensure_nat("br-fc-b", "172.31.0.1/24", "op-nat2").has_value());
  BOOST_TEST(banger_rules().size() == 6u);
  BOOST_REQUIRE(c.clear_nat("br-fc", "172.30.0.1/24", "op-clear").has_value());
  rules = banger_rules();
  BOOST_TEST(rules.size() == 3u);
  for (const auto& r : rules)
    BOOST_TEST(r["comment"].get<std::string>().rfind("banger br-fc-b 172.31.0.0/24 ", 0) == 0);
  BOOST_REQUIRE(c.clear_nat("br-fc-b", "172.31.0.1/24", "op-clear2").has_value());
  BOOST_TEST(!banger_table_exists());
  auto again = c.clear_nat("br-fc-b", "172.31.0.1/24", "op-clear3");
  BOOST_TEST(again.has_value(), describe(again));
}

BOOST_AUTO_TEST_CASE(foreign_names_and_bad_cidrs_are_refused_and_logged) {
  // The helper inherits our stderr: point it at a file for this case to read its log lines.
  auto log = tmp.path / "helper.log";
  int saved = ::dup(STDERR_FILENO);
  int logfd = ::open(log.c_str(), O_CREAT | O_WRONLY | O_APPEND | O_CLOEXEC, 0600);
  BOOST_REQUIRE(saved >= 0 && logfd >= 0);
  ::dup2(logfd, STDERR_FILENO);
  ::close(logfd);
  auto c = client::launch(options());
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  BOOST_REQUIRE_MESSAGE(c.has_value(), (c ? "" : c.err().message));

  for (const char* name : {"eth0", "lo", "br0", "docker0", "br-fc-"})
    BOOST_TEST(refused(c->ensure_bridge(name, "172.30.0.1/24", "op-bad-bridge"), errc::bad_request), name);
  BOOST_TEST(!link_exists("br0"));
  BOOST_TEST(refused(c->create_tap("eth0", "br-fc", 1000, "op-bad-tap"), errc::bad_request));
  BOOST_TEST(refused(c->create_tap("lo", "br-fc", 1000, "op-bad-tap"), errc::bad_request));
  BOOST_TEST(refused(c->create_tap("bgt1", "eth0", 1000, "op-bad-tap"), errc::bad_request));
  BOOST_TEST(refused(c->create_tap("bgt1", "br-fc", 4294967295u, "op-bad-tap"), errc::bad_request));
  BOOST_TEST(refused(c->delete_tap("lo", "op-bad-del"), errc::bad_request));
  BOOST_TEST(link_exists("lo"));
  BOOST_TEST(refused(c->ensure_bridge("br-fc", "10.0.0.1/4", "op-bad-cidr"), errc::bad_request));
  BOOST_TEST(refused(c->ensure_bridge("br-fc", "256.1.1.1/24", "op-bad-cidr"), errc::bad_request));
  BOOST_TEST(!link_exists("br-fc"));
  BOOST_TEST(refused(c->ensure_nat("br0", "172.30.0.1/24", "op-bad-nat"), errc::bad_request));
  BOOST_TEST(refused(c->ensure_nat("br-fc", "172.30.0.1/33", "op-bad-nat"), errc::bad_request));
  BOOST_TEST(refused(c->clear_nat("eth0", "172.30.0.1/24", "op-bad-nat"), errc::bad_request));
  // Quote characters never reach nft: the name is refused first.
  BOOST_TEST(refused(c->ensure_nat("br-fc\" accept", "172.30.0.1/24", "op-bad-nat"), errc::bad_request));

  auto r = c->ensure_bridge("eth0", "172.30.0.1/24", "op-logged-42");
  BOOST_REQUIRE(!r);
  BOOST_TEST(r.err().op_id == "op-logged-42");
  BOOST_TEST(r.err().message.find("eth0") != std::string::npos);
  auto text = test::slurp(log);
  bool found = false;
  for (const auto& line : json_lines(text))
    if (line.value("op", "") == "op-logged-42") {
      found = true;
      auto msg = line.value("msg", "");
      BOOST_TEST(msg.find("ensureBridge name=eth0 cidr=172.30.0.1/24") != std::string::npos, msg);
      BOOST_TEST(msg.find("bad_request") != std::string::npos, msg);
    }
  BOOST_TEST(found, text);
}

BOOST_AUTO_TEST_CASE(signals_reach_only_bangers_vmms) {
  auto c = start();
  // Our own pid and a plain sleep are not VMMs.
  BOOST_TEST(refused(c.signal_vmm(static_cast<int>(::getpid()), SIGTERM, "op-sig"), errc::unauthorized));
  int sleeper = test::spawn({"/bin/sleep", "30"}, {}, tmp.path);
  BOOST_TEST(refused(c.signal_vmm(sleeper, SIGKILL, "op-sig"), errc::unauthorized));
  BOOST_TEST(process_alive(sleeper));
  ::kill(sleeper, SIGKILL);
  reap(sleeper);
  BOOST_TEST(refused(c.signal_vmm(1, SIGTERM, "op-sig"), errc::bad_request));
  BOOST_TEST(refused(c.signal_vmm(0, SIGTERM, "op-sig"), errc::bad_request));
  BOOST_TEST(refused(c.signal_vmm(-1, SIGTERM, "op-sig"), errc::bad_request));

  // A QEMU look-alike whose command line names a socket outside banger's dirs is not ours.
  int stranger = fake_vmm(tmp.path / "bin", "unix:" + (tmp.path / "elsewhere" / "qmp.sock").string());
  BOOST_TEST(refused(c.signal_vmm(stranger, SIGTERM, "op-sig"), errc::unauthorized));
  BOOST_TEST(process_alive(stranger));
  ::kill(stranger, SIGKILL);
  reap(stranger);

  // One that names <runtime>/vms/x/qmp.sock is: STOP and 0 are still refused, TERM works.
  int vmm = fake_vmm(tmp.path / "bin", "unix:" + (runtime / "vms" / "x" / "qmp.sock").string() + ",server=on");
  BOOST_TEST(refused(c.signal_vmm(vmm, SIGSTOP, "op-sig"), errc::bad_request));
  BOOST_TEST(refused(c.signal_vmm(vmm, 0, "op-sig"), errc::bad_request));
  BOOST_TEST(refused(c.signal_vmm(vmm, 99, "op-sig"), errc::bad_request));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  BOOST_TEST(proc_state(vmm) != 'T');
  BOOST_TEST(process_alive(vmm));
  auto term = c.signal_vmm(vmm, SIGTERM, "op-sig-term");
  BOOST_TEST(term.has_value(), describe(term));
  int status = reap(vmm);
  BOOST_TEST(status != -1);
  BOOST_TEST((WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM));
  // Gone (reaped): not_found.
  BOOST_TEST(refused(c.signal_vmm(vmm, SIGTERM, "op-sig-gone"), errc::not_found));
}

BOOST_AUTO_TEST_CASE(helper_refuses_unsafe_dirs_and_a_non_socket_stdin) {
  // A symlinked state dir.
  fs::create_directory_symlink(state, tmp.path / "state-link");
  auto o = options();
  o.state_dir = tmp.path / "state-link";
  auto sl = client::launch(o);
  BOOST_REQUIRE(!sl);
  BOOST_TEST((sl.err().code == errc::unavailable));
  BOOST_TEST(sl.err().message.find("refused to start") != std::string::npos, sl.err().message);
  // A world-writable runtime dir.
  ::chmod(runtime.c_str(), 0777);
  auto ww = client::launch(options());
  BOOST_REQUIRE(!ww);
  BOOST_TEST(ww.err().message.find("refused to start") != std::string::npos, ww.err().message);
  ::chmod(runtime.c_str(), 0700);
  // A symlink above the dirs.
  fs::create_directory_symlink(tmp.path, tmp.path / "up");
  o = options();
  o.state_dir = tmp.path / "up" / "state";
  o.runtime_dir = tmp.path / "up" / "run";
  BOOST_TEST(!client::launch(o));
  // Missing binary.
  o = options();
  o.helper_bin = tmp.path / "no-such-helper";
  auto missing = client::launch(o);
  BOOST_REQUIRE(!missing);
  BOOST_TEST(missing.err().message.find("not found") != std::string::npos);
  // stdin that is not a unix socket (run_process gives /dev/null).
  auto r = run_process(
    {(test::bin_dir() / "banger-helper").string(), "--state-dir", state.string(), "--runtime-dir", runtime.string()});
  BOOST_TEST(r.exit_code == 3);
  BOOST_TEST(r.err.find("not a socket") != std::string::npos, r.err);
  // And the good dirs still work.
  auto c = start();
  BOOST_TEST(c.ping("op").has_value());
}

// The client's event loop runs only inside its calls; a call after an idle spell longer than
// the call timeout once timed out at once (the loop's clock was as old as the last call).
BOOST_AUTO_TEST_CASE(a_call_after_an_idle_spell_longer_than_the_timeout_is_answered) {
  auto o = options();
  o.call_timeout = std::chrono::milliseconds(500);
  auto c = client::launch(o);
  BOOST_REQUIRE_MESSAGE(c.has_value(), (c ? "" : c.err().message));
  BOOST_REQUIRE(c->ping("op-1").has_value());
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  auto v = c->ping("op-2");
  BOOST_TEST(v.has_value(), (v ? "" : v.err().message));
  BOOST_TEST(c->ensure_bridge("br-fc", "172.30.0.1/24", "op-3").has_value());
}

BOOST_AUTO_TEST_CASE(a_dead_helper_answers_unavailable) {
  auto c = start();
  BOOST_REQUIRE(c.ping("op").has_value());
  BOOST_REQUIRE(::kill(c.pid(), SIGKILL) == 0);
  auto v = c.ping("op-dead");
  BOOST_REQUIRE(!v);
  BOOST_TEST((v.err().code == errc::unavailable));
  BOOST_TEST(refused(c.ensure_bridge("br-fc", "172.30.0.1/24", "op-dead"), errc::unavailable));
  BOOST_TEST(refused(c.delete_tap("bgt1", "op-dead"), errc::unavailable));
  // Moving a client keeps its connection (and its dead helper).
  client moved = std::move(c);
  BOOST_TEST(refused(moved.signal_vmm(1234, SIGTERM, "op-dead"), errc::unavailable));
}

BOOST_AUTO_TEST_SUITE_END()
