// Test support: real git checkouts made in temporary directories. git runs with a fixed
// identity and neither the system's nor the user's config, so tests see the same git
// everywhere. Header-only; Boost.Test tests include it.
#pragma once

#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "tests/support/proc.hpp"

namespace banger::test {

inline const std::map<std::string, std::string>& git_env() {
  static const std::map<std::string, std::string> env = {
    {"GIT_AUTHOR_NAME", "t"},     {"GIT_AUTHOR_EMAIL", "t@example.invalid"},
    {"GIT_COMMITTER_NAME", "t"},  {"GIT_COMMITTER_EMAIL", "t@example.invalid"},
    {"GIT_CONFIG_NOSYSTEM", "1"}, {"GIT_CONFIG_GLOBAL", "/dev/null"}};
  return env;
}

/// Runs `script` with /bin/sh in `dir` (git_env()); the test stops when it fails. Its stdout.
inline std::string git_sh(const std::filesystem::path& dir, const std::string& script) {
  auto r = run({"/bin/sh", "-c", "cd '" + dir.string() + "' && " + script}, git_env());
  BOOST_TEST_REQUIRE(r.exit_code == 0, script << ": " << r.err);
  return r.out;
}

/// Writes `content` to `p`, making its parent directories.
inline void put_file(const std::filesystem::path& p, const std::string& content) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << content;
}

} // namespace banger::test
