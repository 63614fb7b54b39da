// known_hosts edits: one VM's line replaced or removed, others kept, hostile entries refused,
// and a write that fails (a full disk, simulated with RLIMIT_FSIZE in a child) leaves the file
// exactly as it was.
#include <boost/test/unit_test.hpp>

#include <csignal>
#include <fstream>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "actors/vm/known_hosts.hpp"
#include "common/process.hpp"
#include "tests/support/proc.hpp"

using namespace banger;
using namespace banger::actors;
namespace fs = std::filesystem;

BOOST_AUTO_TEST_SUITE(known_hosts)

BOOST_AUTO_TEST_CASE(one_vms_line_is_replaced_or_removed_and_the_rest_kept) {
  test::temp_dir d{"banger-kh"};
  auto f = d.path / "ssh" / "known_hosts";
  BOOST_TEST_REQUIRE(update_known_hosts(f, "a.vm", "ssh-ed25519 AAAA1").has_value());
  BOOST_TEST_REQUIRE(update_known_hosts(f, "b.vm", "ssh-ed25519 BBBB1").has_value());
  BOOST_TEST_REQUIRE(update_known_hosts(f, "a.vm", "ssh-ed25519 AAAA2").has_value());
  BOOST_TEST(*read_file(f) == "b.vm ssh-ed25519 BBBB1\na.vm ssh-ed25519 AAAA2\n");
  // A name that is a prefix of another is not the other.
  BOOST_TEST_REQUIRE(update_known_hosts(f, "b.v", "").has_value());
  BOOST_TEST(*read_file(f) == "b.vm ssh-ed25519 BBBB1\na.vm ssh-ed25519 AAAA2\n");
  BOOST_TEST_REQUIRE(update_known_hosts(f, "b.vm", "").has_value());
  BOOST_TEST(*read_file(f) == "a.vm ssh-ed25519 AAAA2\n");
  BOOST_TEST(!fs::exists(f.string() + ".new")); // no temporary left behind
}

BOOST_AUTO_TEST_CASE(hostile_entries_are_refused_and_change_nothing) {
  test::temp_dir d{"banger-kh"};
  auto f = d.path / "known_hosts";
  BOOST_TEST_REQUIRE(update_known_hosts(f, "a.vm", "ssh-ed25519 AAAA1").has_value());
  for (auto [alias, key] : std::vector<std::pair<std::string, std::string>>{
         {"a.vm", "ssh-ed25519 AAAA\n* ssh-ed25519 EVIL"}, {"x y", "k"}, {"", "k"}, {"a\n*", "k"}})
    BOOST_TEST((update_known_hosts(f, alias, key).err().code == errc::bad_request), alias);
  BOOST_TEST(*read_file(f) == "a.vm ssh-ed25519 AAAA1\n");
  // Only well-formed public key lines become keys.
  BOOST_TEST(host_key_of("ssh-ed25519 AAAAC3Nza+/= root@h\n") == "ssh-ed25519 AAAAC3Nza+/=");
  BOOST_TEST(host_key_of("ssh-ed25519").empty());
  BOOST_TEST(host_key_of("evil AAAA").empty());
  BOOST_TEST(host_key_of("ssh-ed25519 AA;rm").empty());
}

BOOST_AUTO_TEST_CASE(a_write_that_fails_leaves_the_old_file_whole) {
  test::temp_dir d{"banger-kh"};
  auto f = d.path / "known_hosts";
  std::string old;
  for (int i = 0; i < 20; ++i) {
    auto alias = "vm" + std::to_string(i) + ".vm";
    BOOST_TEST_REQUIRE(update_known_hosts(f, alias, "ssh-ed25519 AAAA" + std::string(40, 'k')).has_value());
  }
  old = *read_file(f);
  BOOST_TEST_REQUIRE(old.size() > 1000u);
  // A child whose file size limit is below the new content: every write past it fails (EFBIG),
  // as on a full disk.
  pid_t pid = ::fork();
  BOOST_TEST_REQUIRE(pid >= 0);
  if (pid == 0) {
    std::signal(SIGXFSZ, SIG_IGN);
    rlimit lim{512, 512};
    ::setrlimit(RLIMIT_FSIZE, &lim);
    auto r = update_known_hosts(f, "new.vm", "ssh-ed25519 NNNN");
    ::_exit(r ? 0 : (r.err().message.find("left as it was") != std::string::npos ? 3 : 4));
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  BOOST_TEST(WIFEXITED(status));
  BOOST_TEST(WEXITSTATUS(status) == 3); // it failed, and said the file was left alone
  BOOST_TEST(*read_file(f) == old);
  BOOST_TEST(!fs::exists(f.string() + ".new"));
}

BOOST_AUTO_TEST_SUITE_END()
