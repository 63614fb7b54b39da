// Invariants that matter in release builds. BANGER_CHECK(cond, message) is always on (unlike
// assert, which the RelWithDebInfo build users run compiles out): when `cond` is false it throws
// banger::bug naming the condition, the file and line, and the message. A bug is not an outcome:
// nothing in business logic catches it. Actors turn it into an `internal` error for the request
// they were handling (actors/failure.hpp); the helper and the guest agent answer the call with an
// exception. Header-only, std only; any thread.
#pragma once

#include <stdexcept>
#include <string>

namespace banger {

/// A broken invariant: a bug in banger, never a domain outcome.
class bug : public std::logic_error {
public:
  using std::logic_error::logic_error;
};

namespace detail {
[[noreturn]] inline void check_failed(const char* cond, const char* file, int line, const std::string& message) {
  throw bug(std::string("bug: ") + message + " (" + cond + " is false at " + file + ":" + std::to_string(line) + ")");
}
} // namespace detail

} // namespace banger

#define BANGER_CHECK(cond, message)                                                                                    \
  do {                                                                                                                 \
    if (!(cond))                                                                                                       \
      ::banger::detail::check_failed(#cond, __FILE__, __LINE__, (message));                                            \
  } while (0)
