// ssh readiness after a start, against a fake agent: no host key on record (no sshd in the
// image) is fine, the daemon's own copy of the key goes into known_hosts and the wait ends when
// sshd listens, a damaged copy fails the start, and an sshd that never listens fails with a
// message that says where to look.
#include <boost/test/unit_test.hpp>

#include <fstream>

#include "actors/vm/fake_driver.test.hpp"
#include "actors/vm/ssh_ready.hpp"
#include "common/process.hpp"
#include "tests/support/proc.hpp"

using namespace banger;
using namespace banger::actors;
namespace fs = std::filesystem;

BOOST_AUTO_TEST_SUITE(ssh_ready)

BOOST_AUTO_TEST_CASE(no_host_key_means_nothing_to_wait_for) {
  banger::test::temp_dir d{"banger-ssh"};
  fakes::fake_agent a;
  ssh_ready_config cfg{d.path / "known_hosts", std::chrono::milliseconds(200), std::chrono::milliseconds(1)};
  BOOST_TEST(wait_ssh_ready(a.access(), cfg, "web", d.path / "none.pub", "/s").has_value());
  BOOST_TEST(!fs::exists(cfg.known_hosts));
  BOOST_TEST(a.listening_calls == 0);
}

BOOST_AUTO_TEST_CASE(the_key_is_recorded_and_the_wait_ends_when_sshd_listens) {
  banger::test::temp_dir d{"banger-ssh"};
  fakes::fake_agent a;
  std::ofstream(d.path / "key.pub") << "ssh-ed25519 AAAAC3 web\n";
  a.listening_after = 3;
  ssh_ready_config cfg{d.path / "known_hosts", std::chrono::seconds(10), std::chrono::milliseconds(1)};
  BOOST_TEST_REQUIRE(wait_ssh_ready(a.access(), cfg, "web", d.path / "key.pub", "/s").has_value());
  BOOST_TEST(*read_file(cfg.known_hosts) == "web.vm ssh-ed25519 AAAAC3\n");
  BOOST_TEST(a.listening_calls == 4);
  BOOST_TEST(a.calls.back() == "listening 22");
}

BOOST_AUTO_TEST_CASE(a_damaged_key_file_fails_the_start_and_leaves_known_hosts_alone) {
  banger::test::temp_dir d{"banger-ssh"};
  fakes::fake_agent a;
  std::ofstream(d.path / "key.pub") << "ssh-ed25519 AA;rm -rf\n";
  ssh_ready_config cfg{d.path / "known_hosts", std::chrono::seconds(10), std::chrono::milliseconds(1)};
  auto r = wait_ssh_ready(a.access(), cfg, "web", d.path / "key.pub", "/s");
  BOOST_TEST_REQUIRE(!r.has_value());
  BOOST_TEST((r.err().code == errc::internal));
  BOOST_TEST(r.err().message.find("create it again") != std::string::npos, r.err().message);
  BOOST_TEST(!fs::exists(cfg.known_hosts));
  BOOST_TEST(a.listening_calls == 0);
}

BOOST_AUTO_TEST_CASE(an_sshd_that_never_listens_fails_the_start) {
  banger::test::temp_dir d{"banger-ssh"};
  fakes::fake_agent a;
  std::ofstream(d.path / "key.pub") << "ssh-ed25519 AAAAC3 web\n";
  a.listening_after = 1000000;
  ssh_ready_config cfg{d.path / "known_hosts", std::chrono::milliseconds(50), std::chrono::milliseconds(5)};
  auto r = wait_ssh_ready(a.access(), cfg, "web", d.path / "key.pub", "/s");
  BOOST_TEST_REQUIRE(!r.has_value());
  BOOST_TEST((r.err().code == errc::unavailable));
  BOOST_TEST(r.err().message.find("banger vm logs web") != std::string::npos, r.err().message);
}

BOOST_AUTO_TEST_SUITE_END()
