// Internal to banger_workspace: running git on the user's checkout and reading what it
// prints. git runs with the caller's environment minus the variables that would point it at
// another repository, index or object store, and without optional locks (a `git status` here
// never rewrites the user's index). Blocking.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "common/subprocess.hpp"

namespace banger::workspace::detail {

/// git, run in `dir`, with the caller's environment minus what would point it elsewhere, plus
/// `env` (banger's own scratch index and object directory, where it asks for them).
inline process_result git(const std::filesystem::path& dir, std::vector<std::string> args,
                          const std::filesystem::path& stdin_file = {},
                          const std::map<std::string, std::string>& env = {}) {
  std::vector<std::string> argv{"git", "-C", dir.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  process_options o;
  for (const char* v : {"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR",
                        "GIT_NAMESPACE", "GIT_CEILING_DIRECTORIES", "GIT_ALTERNATE_OBJECT_DIRECTORIES"})
    o.env[v] = "";
  for (const auto& [k, v] : env)
    o.env[k] = v;
  o.env["GIT_OPTIONAL_LOCKS"] = "0"; // never rewrite the user's index while reading it
  o.timeout = std::chrono::minutes(2);
  o.stdin_file = stdin_file;
  return run_process(argv, o);
}

inline std::string trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' '))
    s.remove_suffix(1);
  while (!s.empty() && (s.front() == '\n' || s.front() == ' '))
    s.remove_prefix(1);
  return std::string(s);
}

/// Lines of `s` without their '\n', empty lines kept (git's --show-prefix prints one).
inline std::vector<std::string> split_lines(std::string_view s) {
  std::vector<std::string> out;
  while (!s.empty()) {
    auto nl = s.find('\n');
    out.emplace_back(s.substr(0, nl));
    if (nl == std::string_view::npos)
      break;
    s.remove_prefix(nl + 1);
  }
  return out;
}

inline std::string git_failure(const process_result& r) {
  std::string e = trim(r.err.empty() ? r.out : r.err);
  if (e.rfind("fatal: ", 0) == 0)
    e = e.substr(7);
  return e.empty() ? fmt::format("exit code {}", r.exit_code) : e;
}

inline std::vector<std::string> split_nul(std::string_view s) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at < s.size()) {
    auto end = s.find('\0', at);
    if (end == std::string_view::npos)
      end = s.size();
    if (end > at)
      out.emplace_back(s.substr(at, end - at));
    at = end + 1;
  }
  return out;
}

} // namespace banger::workspace::detail
