#include "common/error.hpp"

#include <string>
#include <type_traits>
#include <vector>

#include <boost/test/unit_test.hpp>

using namespace banger;

BOOST_AUTO_TEST_SUITE(error_values)

BOOST_AUTO_TEST_CASE(codes_keep_their_wire_numbers) {
  // Journaled and sent over the wire: a renumbering must fail here.
  BOOST_TEST(static_cast<int>(errc::not_found) == 1);
  BOOST_TEST(static_cast<int>(errc::unauthorized) == 5);
  BOOST_TEST(static_cast<int>(errc::conflict) == 7);
  BOOST_TEST(static_cast<int>(errc::internal) == 9);
}

BOOST_AUTO_TEST_CASE(names_round_trip) {
  for (int i = 0; i <= 9; ++i) {
    auto code = static_cast<errc>(i);
    BOOST_TEST(static_cast<int>(errc_from_string(to_string(code))) == i);
  }
  BOOST_TEST(to_string(errc::operation_failed) == "operation_failed");
  BOOST_TEST(static_cast<int>(errc_from_string("bogus")) == static_cast<int>(errc::internal));
}

BOOST_AUTO_TEST_CASE(numbers_from_the_wire_map_through_the_one_table) {
  for (int i = 0; i <= 9; ++i)
    BOOST_TEST(static_cast<int>(errc_from_number(static_cast<std::uint64_t>(i))) == i);
  // A number this build does not know (a newer peer's) is internal, never an enum value out of range.
  for (std::uint64_t n : {10ull, 255ull, 65535ull, 1ull << 40})
    BOOST_TEST((errc_from_number(n) == errc::internal));
}

BOOST_AUTO_TEST_CASE(expected_holds_value_or_error) {
  expected<int> ok = 42;
  BOOST_TEST(ok.has_value());
  BOOST_TEST(*ok == 42);
  expected<int> bad = make_error(errc::not_found, "no vm \"x\"");
  BOOST_TEST(!bad.has_value());
  BOOST_TEST(bad.err().message == "no vm \"x\"");
  expected<void> v;
  BOOST_TEST(v.has_value());
  expected<void> verr = make_error(errc::conflict, "stale");
  BOOST_TEST(!verr.has_value());
  BOOST_TEST(static_cast<int>(verr.err().code) == static_cast<int>(errc::conflict));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(error_values_lifetime)

// A range-for over *f() binds its range to the result of operator*; on a temporary expected
// that must be a value, not a reference into the temporary (ASan reports the latter).
BOOST_AUTO_TEST_CASE(deref_of_a_temporary_is_a_value) {
  auto make = [] { return banger::expected<std::vector<std::string>>(std::vector<std::string>{"a", "b", "c"}); };
  static_assert(!std::is_reference_v<decltype(*make())>);
  std::string joined;
  for (const auto& s : *make())
    joined += s;
  BOOST_TEST(joined == "abc");
}

BOOST_AUTO_TEST_SUITE_END()
