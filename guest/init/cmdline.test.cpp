#include "guest/init/cmdline.hpp"

#include <boost/test/unit_test.hpp>

using namespace banger::guest;

BOOST_AUTO_TEST_SUITE(kernel_cmdline)

BOOST_AUTO_TEST_CASE(words_flags_and_later_wins) {
  auto m = parse_cmdline("console=ttyS0 reboot=k quiet root=/dev/vda rw banger.hostname=a banger.hostname=web-1\n");
  BOOST_TEST(m["console"] == "ttyS0");
  BOOST_TEST(m.count("quiet") == 1u);
  BOOST_TEST(m["quiet"] == "");
  BOOST_TEST(m["banger.hostname"] == "web-1");
  BOOST_TEST(m["root"] == "/dev/vda");
}

BOOST_AUTO_TEST_CASE(static_ip_fields) {
  auto c = parse_ip("172.16.0.5::172.16.0.1:255.255.255.0:web-1:eth0:off");
  BOOST_REQUIRE(c.has_value());
  BOOST_TEST(c->address == "172.16.0.5");
  BOOST_TEST(c->gateway == "172.16.0.1");
  BOOST_TEST(c->netmask == "255.255.255.0");
  BOOST_TEST(c->hostname == "web-1");
  BOOST_TEST(c->device == "eth0");
}

BOOST_AUTO_TEST_CASE(defaults_and_refusals) {
  auto c = parse_ip("10.0.0.2");
  BOOST_REQUIRE(c.has_value());
  BOOST_TEST(c->netmask == "255.255.255.0");
  BOOST_TEST(c->device == "eth0");
  BOOST_TEST(c->gateway.empty());
  BOOST_TEST(!parse_ip("dhcp").has_value());
  BOOST_TEST(!parse_ip("off").has_value());
  BOOST_TEST(!parse_ip("10.0.0.300").has_value());
  BOOST_TEST(!parse_ip("10.0.0.2::not-an-ip:255.255.255.0").has_value());
}

BOOST_AUTO_TEST_SUITE_END()
