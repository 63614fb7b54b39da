// base64_encode / base64_decode: round trips, a known encoding, and strict decoding.
#include <boost/test/unit_test.hpp>

#include "common/base64.hpp"

using namespace banger;

BOOST_AUTO_TEST_SUITE(base64)

BOOST_AUTO_TEST_CASE(round_trips_and_decodes_strictly) {
  for (std::string s : {std::string(), std::string("a"), std::string("ab"), std::string("abc"), std::string("abcd"),
                        std::string("\0\xff\x10", 3)})
    BOOST_TEST(base64_decode(base64_encode(s)).value_or("<refused>") == s);
  BOOST_TEST(base64_encode("alice:pw") == "YWxpY2U6cHc=");
  BOOST_TEST(*base64_decode("Ym9iOnB3") == "bob:pw");
  // Unpadded, a space, outside the alphabet, padding mid-way, bits beyond the data.
  for (const char* bad : {"Ym9iOnB", "Ym9i OnB3", "!!!!", "YQ==YQ==", "YR=="})
    BOOST_TEST(!base64_decode(bad).has_value(), bad);
}

BOOST_AUTO_TEST_SUITE_END()
