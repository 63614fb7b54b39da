// Every validator of banger-helper, with the cases it exists to refuse (docs/SECURITY.md), plus
// the start-up directory checks. helper.test.cpp runs the same refusals against the real helper.
#include "helper/validate.hpp"

#include <csignal>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include "helper/ops.hpp"
#include "helper/startup.hpp"
#include "tests/support/proc.hpp"

using namespace banger;
using namespace banger::helper;
namespace fs = std::filesystem;

namespace {
bool refused(const expected<void>& r, errc code = errc::bad_request) { return !r && r.err().code == code; }
} // namespace

BOOST_AUTO_TEST_SUITE(helper_validate)

BOOST_AUTO_TEST_CASE(bridge_names) {
  BOOST_TEST(bool(validate_bridge_name("br-fc")));
  BOOST_TEST(bool(validate_bridge_name("br-fc-x1")));
  BOOST_TEST(bool(validate_bridge_name("br-fc-123456789")));
  for (const char* bad : {"eth0", "lo", "br0", "docker0", "br-fc-", "br-fc-1234567890", "br-fc-X1", "br-fc-a.b",
                          "br-fc-a/b", "br-fcx", "br-fc1", "", " br-fc", "br-fc ", "bgt1", "br-fc-a b"})
    BOOST_TEST(refused(validate_bridge_name(bad)), "bridge name \"" << bad << "\" must be refused");
  auto r = validate_bridge_name("eth0");
  BOOST_TEST(r.err().message.find("eth0") != std::string::npos);
  BOOST_TEST(r.err().message.find("br-fc") != std::string::npos);
  BOOST_TEST(refused(validate_bridge_name(std::string_view("br-fc\0x", 7))));
}

BOOST_AUTO_TEST_CASE(tap_names) {
  BOOST_TEST(bool(validate_tap_name("bgt1")));
  BOOST_TEST(bool(validate_tap_name("bgtabcdef012345")));
  for (const char* bad :
       {"eth0", "lo", "br-fc", "br0", "bgt", "bgtabcdef0123456", "bgt-1", "bgtA", "tap0", "xbgt1", "", "bgt1 "})
    BOOST_TEST(refused(validate_tap_name(bad)), "tap name \"" << bad << "\" must be refused");
}

BOOST_AUTO_TEST_CASE(ipv4_literals) {
  for (const char* ok : {"0.0.0.0", "10.0.0.1", "172.30.0.1", "255.255.255.255"})
    BOOST_TEST(bool(validate_ipv4(ok)), ok);
  for (const char* bad :
       {"256.1.1.1", "01.2.3.4", "1.2.3", "1.2.3.4.5", "1.2.3.", ".1.2.3", "1..2.3", "+1.2.3.4", " 1.2.3.4", "1.2.3.4 ",
        "a.b.c.d", "1.2.3.4/24", "", "0x1.2.3.4", "1.2.3.00", "99999999999.1.1.1"})
    BOOST_TEST(refused(validate_ipv4(bad)), "address \"" << bad << "\" must be refused");
}

BOOST_AUTO_TEST_CASE(cidrs) {
  for (const char* ok : {"10.0.0.1/8", "172.30.0.1/24", "192.168.1.7/32", "10.0.0.0/16"})
    BOOST_TEST(bool(validate_cidr(ok)), ok);
  for (const char* bad :
       {"10.0.0.1/4", "10.0.0.1/0", "10.0.0.1/7", "10.0.0.1/33", "256.1.1.1/24", "01.2.3.4/24", "10.0.0.1", "10.0.0.1/",
        "10.0.0.1/024", "10.0.0.1/+24", "10.0.0.1/24 ", "/24", "10.0.0.1/24/1", "10.0.0.1//24"})
    BOOST_TEST(refused(validate_cidr(bad)), "CIDR \"" << bad << "\" must be refused");
  BOOST_TEST(validate_cidr("10.0.0.1/4").err().message.find("/8 to /32") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(cidr_networks) {
  BOOST_TEST(cidr_network("172.30.0.1/24") == "172.30.0.0/24");
  BOOST_TEST(cidr_network("10.1.2.3/8") == "10.0.0.0/8");
  BOOST_TEST(cidr_network("192.168.1.7/32") == "192.168.1.7/32");
  BOOST_TEST(nat_rule_tag("br-fc", "172.30.0.1/24", "masquerade") == "banger br-fc 172.30.0.0/24 masquerade");
}

BOOST_AUTO_TEST_CASE(uids) {
  BOOST_TEST(parse_uid("0").value() == 0u);
  BOOST_TEST(parse_uid("1000").value() == 1000u);
  BOOST_TEST(parse_uid("4294967294").value() == 4294967294u);
  for (const char* bad : {"", "-1", "+1", " 1", "1 ", "01", "1e3", "abc", "4294967295", "4294967296", "99999999999"})
    BOOST_TEST(!parse_uid(bad), "uid \"" << bad << "\" must be refused");
  BOOST_TEST(refused(validate_uid(4294967295u)));
}

BOOST_AUTO_TEST_CASE(signals) {
  for (int ok : {SIGTERM, SIGKILL, SIGINT, SIGHUP, SIGQUIT})
    BOOST_TEST(bool(validate_signal(ok)), ok);
  for (int bad : {SIGSTOP, 0, 99, -1, SIGCONT, SIGUSR1, SIGTSTP, SIGSEGV})
    BOOST_TEST(refused(validate_signal(bad)), "signal " << bad << " must be refused");
}

BOOST_AUTO_TEST_CASE(pids) {
  BOOST_TEST(bool(validate_pid(2)));
  for (int bad : {1, 0, -1, -1234})
    BOOST_TEST(refused(validate_pid(bad)), "pid " << bad << " must be refused");
}

BOOST_AUTO_TEST_CASE(paths_lexical) {
  roots r{"/var/lib/banger", "/run/banger"};
  BOOST_TEST(bool(validate_path_lexically_under("/var/lib/banger", r)));
  BOOST_TEST(bool(validate_path_lexically_under("/run/banger/vms/x/qmp.sock", r)));
  for (const char* bad :
       {"/var/lib/banger/../../etc/shadow", "/var/lib/banger/./x", "/var/lib/banger//x", "/var/lib/banger/",
        "var/lib/banger/x", "", "/var/lib/bangerx", "/var/lib", "/etc/passwd", "/run/banger/..", "/"})
    BOOST_TEST(refused(validate_path_lexically_under(bad, r)), "path \"" << bad << "\" must be refused");
  BOOST_TEST(validate_path_lexically_under("/etc/passwd", r).err().message.find("outside") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(paths_on_disk_refuse_symlinks) {
  test::temp_dir t("banger-helper-validate");
  auto root = t.path / "state";
  fs::create_directories(root / "vms" / "a");
  std::ofstream(root / "vms" / "a" / "disk.img") << "x";
  fs::create_directories(t.path / "elsewhere" / "a");
  std::ofstream(t.path / "elsewhere" / "a" / "disk.img") << "x";
  fs::create_directory_symlink(t.path / "elsewhere", root / "link");               // middle component
  fs::create_symlink(t.path / "elsewhere" / "a" / "disk.img", root / "final.img"); // final component
  roots r{root};

  BOOST_TEST(bool(validate_path_under(root / "vms" / "a" / "disk.img", r)));
  BOOST_TEST(bool(validate_path_under(root, r)));
  auto mid = validate_path_under(root / "link" / "a" / "disk.img", r);
  BOOST_TEST(refused(mid));
  BOOST_TEST(mid.err().message.find("symlink") != std::string::npos);
  BOOST_TEST(refused(validate_path_under(root / "final.img", r)));
  BOOST_TEST(refused(validate_path_under(root / "vms" / ".." / "link" / "a" / "disk.img", r)));
  BOOST_TEST(refused(validate_path_under(t.path / "elsewhere" / "a" / "disk.img", r)));
  BOOST_TEST(refused(validate_path_under(root / "missing", r), errc::not_found));
  BOOST_TEST(refused(validate_path_under(root / "vms" / "a" / "disk.img" / "x", r)));
  // A symlink above the root is refused too: the walk starts at "/".
  fs::create_directory_symlink(t.path, t.path / "up");
  BOOST_TEST(refused(validate_path_under(t.path / "up" / "state" / "vms", {t.path / "up" / "state"})));
}

BOOST_AUTO_TEST_CASE(vmm_identity) {
  roots r{"/var/lib/banger", "/run/banger"};
  process_identity q{4242,
                     "/usr/bin/qemu-system-x86_64",
                     {"qemu-system-x86_64", "-M", "microvm", "-qmp", "unix:/run/banger/vms/x/qmp.sock,server=on"},
                     1000};
  BOOST_TEST(bool(validate_vmm_identity(q, r, 1000)));
  auto fc = q;
  fc.exe = "/opt/fc/firecracker";
  fc.args = {"firecracker", "--api-sock", "/run/banger/vms/x/fc.sock"};
  BOOST_TEST(bool(validate_vmm_identity(fc, r, 1000)));
  auto chardev = q;
  chardev.args = {"qemu-system-x86_64", "-chardev", "socket,id=c,path=/var/lib/banger/vms/x/agent.sock"};
  BOOST_TEST(bool(validate_vmm_identity(chardev, r, 1000)));
  auto as_root = q;
  as_root.uid = 0;
  BOOST_TEST(bool(validate_vmm_identity(as_root, r, 1000)));

  auto bash = q;
  bash.exe = "/usr/bin/bash";
  BOOST_TEST(refused(validate_vmm_identity(bash, r, 1000), errc::unauthorized));
  auto deleted = q;
  deleted.exe = "/usr/bin/qemu-system-x86_64 (deleted)";
  BOOST_TEST(refused(validate_vmm_identity(deleted, r, 1000), errc::unauthorized));
  auto foreign = q;
  foreign.args = {"qemu-system-x86_64", "-qmp", "unix:/home/eve/qmp.sock,server=on"};
  BOOST_TEST(refused(validate_vmm_identity(foreign, r, 1000), errc::unauthorized));
  auto escape = q;
  escape.args = {"qemu-system-x86_64", "-qmp", "unix:/run/banger/../../tmp/qmp.sock"};
  BOOST_TEST(refused(validate_vmm_identity(escape, r, 1000), errc::unauthorized));
  auto other_user = q;
  other_user.uid = 1001;
  BOOST_TEST(refused(validate_vmm_identity(other_user, r, 1000), errc::unauthorized));
  auto init = q;
  init.pid = 1;
  BOOST_TEST(refused(validate_vmm_identity(init, r, 1000)));
}

BOOST_AUTO_TEST_CASE(read_own_identity) {
  auto id = read_process_identity(static_cast<int>(::getpid()));
  BOOST_REQUIRE(id.has_value());
  BOOST_TEST(id->exe.find("helper_validate_test") != std::string::npos);
  BOOST_TEST(!id->args.empty());
  // Our own test binary is not a VMM, even though it is ours.
  BOOST_TEST(refused(validate_vmm_identity(*id, {"/tmp"}, ::getuid()), errc::unauthorized));
  auto gone = read_process_identity(1 << 30);
  BOOST_TEST(!gone);
  BOOST_TEST((!gone && gone.err().code == errc::not_found));
}

BOOST_AUTO_TEST_CASE(startup_dirs) {
  test::temp_dir t("banger-helper-dirs");
  auto state = t.path / "state", run = t.path / "run";
  fs::create_directory(state);
  fs::create_directory(run);
  ::chmod(state.c_str(), 0700);
  ::chmod(run.c_str(), 0755);
  unsigned me = ::getuid();
  auto ok = check_dirs(state, run, me);
  BOOST_REQUIRE_MESSAGE(ok.has_value(), (ok ? "" : ok.err().message));
  BOOST_TEST(ok->owner_uid == me);
  BOOST_TEST(bool(check_dirs(state, run, 0)));

  // Another peer uid is refused.
  BOOST_TEST(!check_dirs(state, run, me + 12345));
  // World- or group-writable dirs are refused.
  ::chmod(run.c_str(), 0777);
  auto ww = check_dirs(state, run, me);
  BOOST_TEST(!ww);
  BOOST_TEST(ww.err().message.find("writable") != std::string::npos);
  ::chmod(run.c_str(), 0770);
  BOOST_TEST(!check_dirs(state, run, me));
  ::chmod(run.c_str(), 0700);
  // A symlinked dir is refused.
  fs::create_directory_symlink(state, t.path / "state-link");
  auto sl = check_dirs(t.path / "state-link", run, me);
  BOOST_TEST(!sl);
  BOOST_TEST(sl.err().message.find("symlink") != std::string::npos);
  // Not normalised, missing, or not a directory.
  BOOST_TEST(!check_dirs(t.path / "state" / ".." / "state", run, me));
  BOOST_TEST(!check_dirs(t.path / "missing", run, me));
  std::ofstream(t.path / "file") << "x";
  BOOST_TEST(!check_dirs(t.path / "file", run, me));
  // Dirs with different owners are refused (needs root to chown).
  if (::geteuid() == 0) {
    BOOST_REQUIRE(::chown(run.c_str(), 4242, 4242) == 0);
    BOOST_TEST(!check_dirs(state, run, 0));
  }
}

BOOST_AUTO_TEST_CASE(startup_stdin_must_be_a_unix_socket) {
  test::temp_dir t("banger-helper-fd");
  int fd = ::open((t.path / "f").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  BOOST_REQUIRE(fd >= 0);
  BOOST_TEST(!unix_peer_uid(fd));
  ::close(fd);
  int sv[2];
  BOOST_REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  auto uid = unix_peer_uid(sv[0]);
  BOOST_REQUIRE(uid.has_value());
  BOOST_TEST(*uid == ::geteuid());
  ::close(sv[0]);
  ::close(sv[1]);
  BOOST_REQUIRE(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) == 0);
  BOOST_TEST(!unix_peer_uid(sv[0]));
  ::close(sv[0]);
  ::close(sv[1]);
}

BOOST_AUTO_TEST_SUITE_END()
