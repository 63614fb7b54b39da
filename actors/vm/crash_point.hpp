// A test-only sync point for the crash tests (tests/e2e/crash.e2e.test.cpp): when
// BANGER_TEST_CRASH_AT names this point ("before:tap", "after:vmm", "after:agent",
// "after:post_start", "release:tap", "during:workspace", ...), the daemon SIGKILLs itself here, so a test can stop it
// at an exact step of a start, a stop or a delete. Unset in normal use: one getenv.
#pragma once

#include <csignal>
#include <cstdlib>
#include <string>
#include <string_view>
#include <unistd.h>

namespace banger::actors {

/// Whether BANGER_TEST_CRASH_AT names `point` (to arm a crash point inside a loop only then).
inline bool crash_point_named(std::string_view point) {
  const char* at = std::getenv("BANGER_TEST_CRASH_AT");
  return at && point == at;
}

inline void crash_point(std::string_view when, std::string_view what) {
  const char* at = std::getenv("BANGER_TEST_CRASH_AT");
  if (at && std::string(when) + std::string(what) == at)
    ::kill(::getpid(), SIGKILL);
}

} // namespace banger::actors
