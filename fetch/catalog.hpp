// Kernel catalogs: the JSON index `kernel pull` reads, and the entries `kernel export-bundle`
// writes. Every field is validated here, at parse time, because it comes off the network; the
// url of each entry is resolved against the catalog's own URL. Pure values; any thread.
//
//   {"schema": 1,
//    "kernels": [
//      {"name":    "debian-cloud",                    DNS-label-like: [a-z0-9-], 1-63, no '-' at the ends
//       "version": "6.1.0-56-cloud-amd64",            1-128 of [A-Za-z0-9._+~:-]
//       "url":     "bundles/debian-cloud.tar.zst",    http(s), absolute or relative to the catalog
//       "sha256":  "<64 lowercase hex>",              of the bundle (bundle.hpp)
//       "size":    48213920,                          bytes of the bundle, 1..max_bundle_bytes
//       "arch":    "x86_64"},                         [a-z0-9_], 1-16
//      ...]}
//   Unknown fields are ignored (newer writers may add some); (name, arch) pairs are unique.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace banger::fetch {

inline constexpr int catalog_schema = 1;
inline constexpr std::uint64_t max_catalog_bytes = 4ull << 20; ///< cap on the catalog document
inline constexpr std::uint64_t max_bundle_bytes = 1ull << 30;  ///< cap on any listed bundle
inline constexpr std::size_t max_catalog_kernels = 10000;

#if defined(__x86_64__)
inline constexpr std::string_view host_arch = "x86_64";
#elif defined(__aarch64__)
inline constexpr std::string_view host_arch = "aarch64";
#else
#error "banger knows no catalog arch name for this host"
#endif

struct catalog_entry {
  std::string name;
  std::string version;
  std::string url; ///< absolute once parsed; as written (may be relative) when exporting
  std::string sha256;
  std::uint64_t size = 0;
  std::string arch = std::string(host_arch);
  bool operator==(const catalog_entry&) const = default;
};

struct catalog {
  std::string url; ///< where it was fetched from; relative entry urls were resolved against it
  std::vector<catalog_entry> kernels;

  /// The entry called `name` for `arch`. errc::not_found naming the catalog and listing what
  /// it offers otherwise.
  expected<catalog_entry> find(std::string_view name, std::string_view arch = host_arch) const;
};

/// Kernel names: 1-63 characters of [a-z0-9-], not starting or ending with '-'.
/// errc::bad_request saying why otherwise.
expected<void> check_kernel_name(std::string_view name);

/// Parses and validates a catalog fetched from `catalog_url` (absolute http(s)). errc::bad_request
/// naming the catalog, the entry and the field for anything malformed, including a schema newer
/// than catalog_schema.
expected<catalog> parse_catalog(std::string_view json, std::string_view catalog_url);

/// One entry as a JSON object (2-space indented, fields in the order drawn above), for
/// `kernel export-bundle`. Validates every field; `url` may be relative (usually the bundle's
/// file name, so a catalog next to the bundle works).
expected<std::string> catalog_entry_json(const catalog_entry& e);

/// A whole catalog document holding `entries`, validated like catalog_entry_json.
expected<std::string> catalog_json(const std::vector<catalog_entry>& entries);

} // namespace banger::fetch
