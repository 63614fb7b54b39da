// hosts_with_name: the guest's name on one 127.0.1.1 line, everything else in /etc/hosts kept.
#include <boost/test/unit_test.hpp>

#include "guest/init/hosts.hpp"

using namespace banger::guest;

BOOST_AUTO_TEST_SUITE(etc_hosts)

BOOST_AUTO_TEST_CASE(adds_the_name_and_keeps_the_rest) {
  std::string debian = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";
  BOOST_TEST(hosts_with_name(debian, "web") == debian + "127.0.1.1\tweb\n");
  // A second start with another name (a restored guest): replaced, not added to.
  BOOST_TEST(hosts_with_name(hosts_with_name(debian, "web"), "db") == debian + "127.0.1.1\tdb\n");
  // The image's own 127.0.1.1 line stays where it was, with the VM's name; no final newline kept.
  BOOST_TEST(hosts_with_name("127.0.0.1 localhost\n  127.0.1.1   banger\n10.0.0.9 db # x", "web") ==
             "127.0.0.1 localhost\n127.0.1.1\tweb\n10.0.0.9 db # x\n");
  // Only a whole 127.0.1.1 address counts.
  BOOST_TEST(hosts_with_name("127.0.1.10 other\n", "web") == "127.0.1.10 other\n127.0.1.1\tweb\n");
}

BOOST_AUTO_TEST_CASE(an_empty_file_gets_localhost_and_an_empty_name_changes_nothing) {
  BOOST_TEST(hosts_with_name("", "web") ==
             "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\tweb\n");
  BOOST_TEST(hosts_with_name("x y\n", "") == "x y\n");
}

BOOST_AUTO_TEST_SUITE_END()
