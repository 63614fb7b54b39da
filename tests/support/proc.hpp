// Test support: run a program to completion (or a timeout) capturing stdout and stderr, with
// extra environment variables, or start one in the background (both over common/subprocess);
// read a whole file; and temporary directories that clean up after themselves.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace banger::test {

struct run_result {
  int exit_code = -1; ///< -1 when killed by a signal or the timeout
  bool timed_out = false;
  std::string out;
  std::string err;
};

/// Runs argv[0] (a path) with the current environment plus `env` (a value "" unsets).
run_result run(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env = {},
               std::chrono::milliseconds timeout = std::chrono::seconds(60));

/// Starts a program in the background (stdout/stderr to files in `log_dir`); returns its pid.
int spawn(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
          const std::filesystem::path& log_dir);

/// The whole file as a string ("" when it cannot be read).
std::string slurp(const std::filesystem::path& p);

/// The directory holding banger's binaries (BANGER_BIN_DIR, set by ctest).
std::filesystem::path bin_dir();

struct temp_dir {
  std::filesystem::path path;
  explicit temp_dir(const std::string& prefix = "banger-test");
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
};

} // namespace banger::test
