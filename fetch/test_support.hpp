// Helpers shared by fetch/'s tests (bundle, catalog, http): error messages of failed results,
// whole-file reads and writes, and directory listings for "nothing left behind" checks.
// Header-only; no library target includes it.
#pragma once

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace banger::fetch::test_support {

/// The error message of a failed result, "" otherwise (Boost evaluates messages eagerly).
template <class T>
std::string why(const banger::expected<T>& r) {
  return r ? std::string() : r.err().message;
}

inline void write_text(const std::filesystem::path& p, const std::string& s) {
  std::ofstream(p, std::ios::binary) << s;
}

inline std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// The names in `dir`, sorted.
inline std::vector<std::string> listing(const std::filesystem::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

} // namespace banger::fetch::test_support
