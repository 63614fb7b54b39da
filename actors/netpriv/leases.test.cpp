// IP leases: subnet parsing, lowest-free allocation, stable per VM, released addresses reused.
#include <boost/test/unit_test.hpp>

#include "actors/netpriv/leases.hpp"

using namespace banger;
using namespace banger::actors;

namespace {
lease_state feed(lease_state s, journal::payload p) {
  journal::stored_event e;
  e.version = s.stream_version + 1;
  e.body = std::move(p);
  return apply(std::move(s), e);
}
} // namespace

BOOST_AUTO_TEST_SUITE(netpriv_leases)

BOOST_AUTO_TEST_CASE(subnets_parse_strictly) {
  auto n = subnet::parse("172.30.0.0/24");
  BOOST_TEST_REQUIRE(n.has_value());
  BOOST_TEST(n->gateway_cidr() == "172.30.0.1/24");
  BOOST_TEST(n->netmask() == "255.255.255.0");
  BOOST_TEST(format_ipv4(n->broadcast()) == "172.30.0.255");
  for (std::string bad : std::vector<std::string>{"172.30.0.1/24", "172.30.0.0", "172.30.0.0/4", "172.30.0.0/31",
                                                  "1.2.3/24", "01.2.3.0/24", "172.30.0.0/2a", "a.b.c.d/24"})
    BOOST_TEST(!subnet::parse(bad).has_value(), bad);
}

BOOST_AUTO_TEST_CASE(allocation_is_lowest_free_and_stable) {
  auto net = *subnet::parse("10.9.0.0/30"); // gateway .1, one VM address (.2), broadcast .3
  lease_state s;
  BOOST_TEST(*pick_address(s, net, "a") == "10.9.0.2");
  s = feed(s, journal::resource_acquired{"lease", "10.9.0.2", "a"});
  BOOST_TEST(*pick_address(s, net, "a") == "10.9.0.2"); // the same VM keeps its address
  auto full = pick_address(s, net, "b");
  BOOST_TEST_REQUIRE(!full.has_value());
  BOOST_TEST((full.err().code == errc::unavailable));
  s = feed(s, journal::resource_released{"lease", "10.9.0.2"});
  BOOST_TEST(*pick_address(s, net, "b") == "10.9.0.2");
  BOOST_TEST(!s.lease_of("a").has_value());
  // Other resource kinds in the stream are not leases.
  s = feed(s, journal::resource_acquired{"tap", "10.9.0.2", "x"});
  BOOST_TEST(s.by_ip.empty());
}

BOOST_AUTO_TEST_SUITE_END()
