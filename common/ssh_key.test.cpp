// generate_ed25519_key: OpenSSH's own ssh-keygen reads the private key file and derives the very
// public key written beside it; keys differ from call to call; bad comments are refused.
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <sys/stat.h>

#include "common/ssh_key.hpp"
#include "common/subprocess.hpp"
#include "tests/support/proc.hpp"

using namespace banger;

BOOST_AUTO_TEST_SUITE(ssh_key)

BOOST_AUTO_TEST_CASE(ssh_keygen_reads_the_private_key_and_derives_its_public_key) {
  auto keygen = find_program("ssh-keygen");
  if (!keygen) {
    BOOST_TEST_MESSAGE("skipped: ssh-keygen is not installed (openssh-client)");
    return;
  }
  test::temp_dir d;
  auto k = generate_ed25519_key("web");
  BOOST_TEST_REQUIRE(k.has_value(), (k ? "" : k.err().message));
  BOOST_TEST(k->private_key.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n"));
  BOOST_TEST(k->private_key.ends_with("-----END OPENSSH PRIVATE KEY-----\n"));
  BOOST_TEST(k->public_key.starts_with("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI"));
  BOOST_TEST(k->public_key.ends_with(" web\n"));
  auto file = d.path / "key";
  std::ofstream(file) << k->private_key;
  ::chmod(file.c_str(), 0600);
  // -y parses the whole file (magic, "none" cipher, the check words, the key) and prints the
  // public key with the comment it holds.
  auto y = test::run({keygen->string(), "-y", "-f", file.string()});
  BOOST_TEST_REQUIRE(y.exit_code == 0, y.out + y.err);
  BOOST_TEST(y.out == k->public_key);
  std::ofstream(d.path / "key.pub") << k->public_key;
  auto l = test::run({keygen->string(), "-l", "-f", (d.path / "key.pub").string()});
  BOOST_TEST(l.exit_code == 0, l.out + l.err);
  BOOST_TEST(l.out.find("(ED25519)") != std::string::npos, l.out);
}

BOOST_AUTO_TEST_CASE(every_key_is_new) {
  auto a = generate_ed25519_key("a"), b = generate_ed25519_key("a");
  BOOST_TEST_REQUIRE((a.has_value() && b.has_value()));
  BOOST_TEST(a->public_key != b->public_key);
  BOOST_TEST(a->private_key != b->private_key);
}

BOOST_AUTO_TEST_CASE(a_comment_is_one_printable_word) {
  for (std::string bad : {std::string(), std::string("two words"), std::string("line\nbreak"), std::string(256, 'x'),
                          std::string("nul\0", 4)})
    BOOST_TEST((generate_ed25519_key(bad).err().code == errc::bad_request), bad);
  BOOST_TEST(generate_ed25519_key(std::string(255, 'x')).has_value());
}

BOOST_AUTO_TEST_SUITE_END()
