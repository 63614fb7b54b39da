// Errors as values: the project's one error table, the error value every layer returns, and a
// small expected<T>. The numbers of errc never change: they are journaled and sent over the wire
// (schema/banger.capnp's Error.code and agent.capnp's Failure.code are these numbers; the guest
// agent includes this header for them). The table below is their only definition. Header-only
// for the enum; the name functions are in error.cpp (banger_common).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "common/check.hpp"

namespace banger {

/// The error table: X(name, number) per code. Numbers are forever; new codes get new numbers.
#define BANGER_ERRC_TABLE(X)                                                                                           \
  X(none, 0)                                                                                                           \
  X(not_found, 1)                                                                                                      \
  X(already_exists, 2)                                                                                                 \
  X(bad_request, 3)                                                                                                    \
  X(not_running, 4)                                                                                                    \
  X(unauthorized, 5)                                                                                                   \
  X(unavailable, 6)                                                                                                    \
  X(conflict, 7)                                                                                                       \
  X(operation_failed, 8)                                                                                               \
  X(internal, 9)

enum class errc : std::uint8_t {
#define BANGER_ERRC_ENUM(name, number) name = number,
  BANGER_ERRC_TABLE(BANGER_ERRC_ENUM)
#undef BANGER_ERRC_ENUM
};

/// snake_case name of a code, as printed in `--json` output ("not_found").
std::string_view to_string(errc code);
/// Inverse of to_string; errc::internal for anything unknown.
errc errc_from_string(std::string_view name);
/// The code numbered `n` (from the wire or a journal); errc::internal for a number the table
/// does not have.
errc errc_from_number(std::uint64_t n);

/// A domain failure: what failed and what to do next, plus the op id of the request.
struct error {
  errc code = errc::internal;
  std::string message;
  std::string op_id; ///< empty when the failure happened outside any request
};

inline error make_error(errc code, std::string message) { return error{code, std::move(message), {}}; }

/// Holds a T or an error. Accessing the wrong alternative is a bug (BANGER_CHECK: it throws
/// banger::bug, in every build).
template <class T>
class [[nodiscard]] expected {
public:
  expected(T value) : v_(std::in_place_index<0>, std::move(value)) {}
  expected(error err) : v_(std::in_place_index<1>, std::move(err)) {}

  explicit operator bool() const noexcept { return v_.index() == 0; }
  bool has_value() const noexcept { return v_.index() == 0; }

  T& value() & {
    BANGER_CHECK(has_value(), "the value of an expected that holds an error: " + std::get<1>(v_).message);
    return std::get<0>(v_);
  }
  const T& value() const& {
    BANGER_CHECK(has_value(), "the value of an expected that holds an error: " + std::get<1>(v_).message);
    return std::get<0>(v_);
  }
  /// On an rvalue, the value is moved out and returned by value, so `for (x : *f())` and
  /// `auto& v = f().value()` never refer into a destroyed temporary.
  T value() && {
    BANGER_CHECK(has_value(), "the value of an expected that holds an error: " + std::get<1>(v_).message);
    return std::get<0>(std::move(v_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const error& err() const& {
    BANGER_CHECK(!has_value(), "the error of an expected that holds a value");
    return std::get<1>(v_);
  }
  error&& err() && {
    BANGER_CHECK(!has_value(), "the error of an expected that holds a value");
    return std::get<1>(std::move(v_));
  }

private:
  std::variant<T, error> v_;
};

/// expected<void>: success or an error.
template <>
class [[nodiscard]] expected<void> {
public:
  expected() = default;
  expected(error err) : err_(std::move(err)), ok_(false) {}

  explicit operator bool() const noexcept { return ok_; }
  bool has_value() const noexcept { return ok_; }
  const error& err() const& {
    BANGER_CHECK(!ok_, "the error of an expected<void> that holds success");
    return err_;
  }
  error&& err() && {
    BANGER_CHECK(!ok_, "the error of an expected<void> that holds success");
    return std::move(err_);
  }

private:
  error err_{errc::none, {}, {}};
  bool ok_ = true;
};

} // namespace banger
