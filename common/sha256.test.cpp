#include "common/sha256.hpp"

#include <fstream>

#include <boost/test/unit_test.hpp>

#include "tests/support/proc.hpp"

using namespace banger;

namespace {
constexpr const char* empty_sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr const char* abc_sha = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
} // namespace

BOOST_AUTO_TEST_SUITE(sha256)

BOOST_AUTO_TEST_CASE(known_digests) {
  BOOST_TEST(sha256_hex("") == empty_sha);
  BOOST_TEST(sha256_hex("abc") == abc_sha);
}

BOOST_AUTO_TEST_CASE(incremental_equals_one_shot) {
  std::string data(200000, '\0');
  for (std::size_t i = 0; i < data.size(); ++i)
    data[i] = static_cast<char>(i * 31 + 7);
  sha256_hasher h;
  for (std::size_t off = 0; off < data.size(); off += 4097)
    h.update(std::string_view(data).substr(off, 4097));
  BOOST_TEST(h.hex_digest() == sha256_hex(data));

  sha256_hasher a;
  a.update("a");
  sha256_hasher b = std::move(a);
  b.update("bc");
  BOOST_TEST(b.hex_digest() == abc_sha);
}

BOOST_AUTO_TEST_CASE(file_digest) {
  test::temp_dir dir("banger-sha256");
  auto p = dir.path / "f";
  std::ofstream(p) << "abc";
  auto d = sha256_file(p);
  BOOST_REQUIRE(d.has_value());
  BOOST_TEST(*d == abc_sha);

  auto missing = sha256_file(dir.path / "missing");
  BOOST_REQUIRE(!missing.has_value());
  BOOST_TEST(static_cast<int>(missing.err().code) == static_cast<int>(errc::not_found));
  BOOST_TEST(missing.err().message.find("missing") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(hex_form) {
  BOOST_TEST(is_sha256_hex(abc_sha));
  BOOST_TEST(!is_sha256_hex(""));
  BOOST_TEST(!is_sha256_hex(std::string(abc_sha).substr(1)));
  std::string upper = abc_sha;
  upper[0] = 'B';
  BOOST_TEST(!is_sha256_hex(upper));
  std::string junk = abc_sha;
  junk[5] = 'g';
  BOOST_TEST(!is_sha256_hex(junk));
}

BOOST_AUTO_TEST_SUITE_END()
