// SHA-256, the project's one implementation: an incremental hasher (OpenSSL EVP) that a download
// feeds as bytes arrive, whole-buffer and whole-file hashing (manifests, bundles, VMM identity). Digests are 64
// lowercase hex characters, the form catalogs and kernel manifests store. Pure computation; any thread, one hasher per
// thread.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace banger {

/// Incremental SHA-256. Move-only (owns an EVP_MD_CTX). update() after hex_digest() is a bug.
class sha256_hasher {
public:
  sha256_hasher();
  sha256_hasher(sha256_hasher&& o) noexcept;
  sha256_hasher& operator=(sha256_hasher&& o) noexcept;
  sha256_hasher(const sha256_hasher&) = delete;
  sha256_hasher& operator=(const sha256_hasher&) = delete;
  ~sha256_hasher();

  void update(const void* data, std::size_t len);
  void update(std::string_view data) { update(data.data(), data.size()); }
  /// Finishes the hash; the hasher is spent afterwards.
  std::string hex_digest();

private:
  void* ctx_ = nullptr; // EVP_MD_CTX*, kept opaque so OpenSSL stays out of this header
  bool finished_ = false;
};

/// SHA-256 of a string, lowercase hex.
std::string sha256_hex(std::string_view data);

/// SHA-256 of a file's contents, streamed. Fails with errc::not_found when the file is missing,
/// errc::operation_failed naming the path and errno otherwise.
expected<std::string> sha256_file(const std::filesystem::path& path);

/// Whether `s` is 64 lowercase hex characters.
bool is_sha256_hex(std::string_view s);

} // namespace banger
