// Test support: a journal's RocksDB database opened directly, to plant values the journal
// itself never writes (corruption, gaps, values from a "newer" banger). Tests only: production
// code reaches RocksDB through journal/ alone. Throws std::runtime_error on any failure.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace banger::test {

/// u64 big-endian, the journal's key encoding.
std::string be64(std::uint64_t v);

class raw_journal {
public:
  /// Opens the database in `dir` for writing (no journal may have it open).
  explicit raw_journal(const std::filesystem::path& dir);
  ~raw_journal();

  void put(const std::string& family, const std::string& key, const std::string& value);
  void del(const std::string& family, const std::string& key);
  /// The value at `key`, or nothing when absent.
  std::optional<std::string> get(const std::string& family, const std::string& key);
  /// An event value at `seq` plus its stream index entry.
  void put_event(std::uint64_t seq, const std::string& stream, std::uint64_t version, const std::string& bytes);

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

} // namespace banger::test
