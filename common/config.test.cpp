// config.toml parsing: defaults, every key, comments, and errors naming the line.
#include <boost/test/unit_test.hpp>

#include "common/config.hpp"

using namespace banger;

BOOST_AUTO_TEST_SUITE(config)

BOOST_AUTO_TEST_CASE(defaults_and_keys) {
  auto d = parse_config("", "c");
  BOOST_TEST_REQUIRE(d.has_value());
  BOOST_TEST(d->bridge == "br-fc");
  BOOST_TEST(d->network);
  BOOST_TEST(d->boot_snapshots);
  auto c = parse_config("# banger\nbridge = \"br-fc-t1\"  # test bridge\n\nsubnet=\"10.77.0.0/24\"\nnat = true\n"
                        "network = false\nboot_snapshots = false\n",
                        "c");
  BOOST_TEST_REQUIRE(c.has_value(), (c ? "" : c.err().message));
  BOOST_TEST(c->bridge == "br-fc-t1");
  BOOST_TEST(c->subnet == "10.77.0.0/24");
  BOOST_TEST(c->nat);
  BOOST_TEST(!c->network);
  BOOST_TEST(!c->boot_snapshots);
}

BOOST_AUTO_TEST_CASE(errors_name_the_line) {
  auto e = parse_config("nat = true\nbrdge = \"x\"\n", "/etc/banger/config.toml");
  BOOST_TEST_REQUIRE(!e.has_value());
  BOOST_TEST(e.err().message.find("/etc/banger/config.toml:2: unknown key `brdge`") != std::string::npos,
             e.err().message);
  BOOST_TEST(!parse_config("nat = yes", "c").has_value());
  BOOST_TEST(!parse_config("bridge = br-fc", "c").has_value());
  BOOST_TEST(!parse_config("bridge", "c").has_value());
  BOOST_TEST(!parse_config("bridge = \"a\\\"b\"", "c").has_value());
}

BOOST_AUTO_TEST_SUITE_END()
