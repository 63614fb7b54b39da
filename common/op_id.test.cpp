#include "common/op_id.hpp"

#include <set>

#include <boost/test/unit_test.hpp>

using namespace banger;

BOOST_AUTO_TEST_SUITE(op_ids)

BOOST_AUTO_TEST_CASE(format_is_op_and_six_hex) {
  op_id_source src(7);
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    auto id = src.next();
    BOOST_TEST(is_op_id(id), id);
    seen.insert(id);
  }
  BOOST_TEST(seen.size() > 990u); // 24 bits: collisions in 1000 draws are rare
}

BOOST_AUTO_TEST_CASE(validator_rejects_malformed) {
  BOOST_TEST(is_op_id("op-00ab9f"));
  BOOST_TEST(!is_op_id("op-00AB9F"));
  BOOST_TEST(!is_op_id("op-00ab9"));
  BOOST_TEST(!is_op_id("xx-00ab9f"));
  BOOST_TEST(!is_op_id("op-00ab9g"));
  BOOST_TEST(!is_op_id(""));
}

BOOST_AUTO_TEST_SUITE_END()
