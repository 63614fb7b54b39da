#include "workspace/rules.hpp"

#include <boost/test/unit_test.hpp>

using namespace banger;
using namespace banger::workspace;

BOOST_AUTO_TEST_SUITE(workspace_rules)

BOOST_AUTO_TEST_CASE(guest_paths_are_strictly_below_root) {
  for (const char* ok : {"/root/repo", "/root/src/deep/er", "/root/a b", "/root/caf\xc3\xa9"})
    BOOST_TEST(validate_guest_path(ok).has_value(), ok);
  for (const char* bad : {"/root", "/root/", "/etc/passwd", "root/x", "/root/../etc", "/root/./x", "/root//x",
                          "/root/x/", "/rootx/y", "/root/new\nline", ""})
    BOOST_TEST(!validate_guest_path(bad).has_value(), bad);
  BOOST_TEST(!validate_guest_path("/root/" + std::string(256, 'a')).has_value());
  auto e = validate_guest_path("/srv/x");
  BOOST_TEST(e.err().message.find("not below /root") != std::string::npos, e.err().message);
}

BOOST_AUTO_TEST_CASE(entry_paths_keep_any_byte_but_never_climb_or_touch_git) {
  for (const char* ok : {"a", "dir/file", "new\nline", "-dash", "bad\xff", "x/.gitignore", ".github/ci.yml"})
    BOOST_TEST(validate_entry_path(ok).has_value(), ok);
  for (const char* bad : {"", "/abs", "../up", "a/../b", "a//b", "a/", "./a", ".git", ".git/config", "sub/.git/HEAD"})
    BOOST_TEST(!validate_entry_path(bad).has_value(), bad);
  BOOST_TEST(!validate_entry_path(std::string("a\0b", 3)).has_value());
}

BOOST_AUTO_TEST_CASE(the_default_guest_path_is_the_checkout_name_below_root) {
  BOOST_TEST(default_guest_path("/home/me/repo") == "/root/repo");
  BOOST_TEST(default_guest_path("/") == "/root/workspace");
  BOOST_TEST(default_guest_path("/tmp/bad\nname") == "/root/workspace");
}

BOOST_AUTO_TEST_SUITE_END()
