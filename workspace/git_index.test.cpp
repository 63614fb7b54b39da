#include "workspace/git_index.hpp"

#include <boost/test/unit_test.hpp>

using namespace banger;
using namespace banger::workspace;

namespace {

index_record rec(std::string path, std::uint8_t stage = 0, std::uint32_t mode = 0100644) {
  index_record r;
  r.path = std::move(path);
  r.stage = stage;
  r.mode = mode;
  r.oid = *parse_oid("78981922613b2afb6025042ff6bd878ac1994e85");
  return r;
}

} // namespace

BOOST_AUTO_TEST_SUITE(git_index)

BOOST_AUTO_TEST_CASE(object_ids_are_forty_lowercase_hex_digits) {
  auto o = parse_oid("78981922613b2afb6025042ff6bd878ac1994e85");
  BOOST_TEST_REQUIRE(o.has_value());
  BOOST_TEST((*o)[0] == 0x78);
  BOOST_TEST((*o)[19] == 0x85);
  BOOST_TEST(!parse_oid("78981922613b2afb6025042ff6bd878ac1994e8").has_value());
  BOOST_TEST(!parse_oid("78981922613B2AFB6025042FF6BD878AC1994E85").has_value());
  BOOST_TEST(!parse_oid("z8981922613b2afb6025042ff6bd878ac1994e85").has_value());
}

BOOST_AUTO_TEST_CASE(entries_are_padded_to_eight_bytes_after_a_dirc_header) {
  std::vector<index_record> rs{rec("a"), rec("dir/longer-name.txt")};
  auto out = encode_index(rs, std::vector<index_stat>(2));
  BOOST_TEST_REQUIRE(out.has_value());
  BOOST_TEST(out->substr(0, 4) == "DIRC");
  BOOST_TEST(static_cast<int>((*out)[7]) == 2);  // version
  BOOST_TEST(static_cast<int>((*out)[11]) == 2); // entries
  // 62 fixed bytes + name + 1..8 NULs, each a multiple of 8; then a 20-byte SHA-1.
  std::size_t e1 = (62 + 1 + 8) / 8 * 8, e2 = (62 + 19 + 8) / 8 * 8;
  BOOST_TEST(out->size() == 12 + e1 + e2 + 20);
}

BOOST_AUTO_TEST_CASE(unsorted_lists_and_unknown_modes_are_refused) {
  BOOST_TEST(!encode_index({rec("b"), rec("a")}, std::vector<index_stat>(2)).has_value());
  BOOST_TEST(!encode_index({rec("a"), rec("a")}, std::vector<index_stat>(2)).has_value());
  BOOST_TEST(encode_index({rec("a", 1), rec("a", 2)}, std::vector<index_stat>(2)).has_value());
  BOOST_TEST(!encode_index({rec("a", 0, 0100600)}, std::vector<index_stat>(1)).has_value());
  BOOST_TEST(!encode_index({rec("a")}, {}).has_value());
}

BOOST_AUTO_TEST_SUITE_END()
