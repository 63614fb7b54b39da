#include "common/text.hpp"

#include <boost/test/unit_test.hpp>

using namespace banger;
using namespace std::string_literals;

BOOST_AUTO_TEST_SUITE(text)

BOOST_AUTO_TEST_CASE(plain_text_is_quoted) {
  BOOST_TEST(quoted("web-1") == R"("web-1")");
  BOOST_TEST(quoted("") == R"("")");
  BOOST_TEST(quoted("a b ~!@#$%^&*()'{}") == R"("a b ~!@#$%^&*()'{}")");
}

BOOST_AUTO_TEST_CASE(quote_and_backslash_are_escaped) {
  BOOST_TEST(quoted(R"(say "hi")") == R"("say \"hi\"")");
  BOOST_TEST(quoted(R"(a\b)") == R"("a\\b")");
}

BOOST_AUTO_TEST_CASE(control_characters_and_del_are_hex) {
  BOOST_TEST(quoted("a\nb\tc\rd") == R"("a\x0ab\x09c\x0dd")");
  BOOST_TEST(quoted("\x1b[31m\x7f") == R"("\x1b[31m\x7f")");
}

BOOST_AUTO_TEST_CASE(invalid_utf8_is_hex) {
  BOOST_TEST(quoted("\xc3") == R"("\xc3")");
  BOOST_TEST(quoted("a\xff\xfe") == R"("a\xff\xfe")");
}

BOOST_AUTO_TEST_CASE(valid_utf8_is_hex_too) { BOOST_TEST(quoted("caf\xc3\xa9") == R"("caf\xc3\xa9")"); }

BOOST_AUTO_TEST_CASE(nul_inside_is_shown) { BOOST_TEST(quoted("a\0b"s) == R"("a\x00b")"); }

BOOST_AUTO_TEST_CASE(long_text_is_cut) {
  std::string huge(1 << 20, 'x');
  BOOST_TEST(quoted(huge) == "\"" + std::string(200, 'x') + "...\"");
  BOOST_TEST(quoted("abcdef", 3) == R"("abc...")");
  BOOST_TEST(quoted("abc", 3) == R"("abc")");
  BOOST_TEST(quoted("abc", 0) == R"("...")");
  // The cut counts input bytes, so an escaped byte at the edge is shown whole.
  BOOST_TEST(quoted("ab\n\n", 3) == R"("ab\x0a...")");
}

BOOST_AUTO_TEST_CASE(std_string_and_c_string_arguments_get_this_quoted) {
  // Not std::quoted, which argument-dependent lookup would find for these types.
  std::string s = "a\nb";
  const std::string& cs = s;
  const char* p = "a\nb";
  BOOST_TEST(quoted(s) == R"("a\x0ab")");
  BOOST_TEST(quoted(cs) == R"("a\x0ab")");
  BOOST_TEST(quoted(p) == R"("a\x0ab")");
}

BOOST_AUTO_TEST_CASE(byte_counts_read_in_one_unit) {
  BOOST_TEST(human_bytes(0) == "0 B");
  BOOST_TEST(human_bytes(1023) == "1023 B");
  BOOST_TEST(human_bytes(1536) == "1.5 KiB");
  BOOST_TEST(human_bytes(12u << 20) == "12.0 MiB");
  BOOST_TEST(human_bytes(3ull << 30) == "3.0 GiB");
}

BOOST_AUTO_TEST_SUITE_END()
