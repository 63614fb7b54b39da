// Kernel bundles: the tar.zst a catalog serves, holding one kernel directory's files flat.
//
//   bundle = zstd( tar (pax) )
//     manifest.json     required; the kernel directory's manifest (guestfs/kernel_dir.hpp)
//     vmlinux|bzImage   the kernel, initrd.img, config, ...
//   Every member is a regular file named without any directory part, at most once; no
//   links, directories or devices. Written with mode 0644, owner 0:0 and mtime 0 so the same
//   files always make the same bundle.
//
// Extraction writes into a fresh scratch directory beside the destination and renames it into
// place only when every member passed every check, so the destination either appears whole or
// not at all, and a refused bundle leaves nothing behind. Blocking I/O; any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace banger::fetch {

inline constexpr std::string_view bundle_manifest_name = "manifest.json";
inline constexpr std::size_t max_bundle_members = 64;

struct bundle_member {
  std::string name;
  std::uint64_t size = 0;
  bool operator==(const bundle_member&) const = default;
};

struct written_bundle {
  std::string sha256; ///< of the .tar.zst, lowercase hex: what a catalog entry lists
  std::uint64_t size = 0;
};

/// Checks one member name: 1-128 characters of [A-Za-z0-9._+-], not starting with '.', no
/// '/'. errc::bad_request saying what is wrong (absolute, "..", a subdirectory, ...).
expected<void> check_member_name(std::string_view name);

/// Writes `files` (plain names of regular files in `src_dir`; symlinks are refused) to the
/// new file `out` as a bundle. `files` must include manifest.json. `out` must not exist; it is
/// written beside itself under a temp name and renamed into place, so a failure leaves nothing.
expected<written_bundle> write_bundle(const std::filesystem::path& src_dir, const std::vector<std::string>& files,
                                      const std::filesystem::path& out);

/// The names of the regular files in `dir`, sorted: what write_bundle should pack for a kernel
/// directory. errc::bad_request naming the entry when `dir` holds anything else (a symlink, a
/// subdirectory, a name check_member_name refuses), since such a directory cannot round-trip.
expected<std::vector<std::string>> list_bundle_files(const std::filesystem::path& dir);

/// Extracts `bundle` into the new directory `dest_dir` (which must not exist; its parent must).
/// Refuses (errc::bad_request) absolute paths, "..", subdirectories, symlinks, hard links,
/// devices, duplicate names, more than max_bundle_members members, a missing manifest.json and
/// more than `max_total_bytes` of contents; errc::already_exists when dest_dir exists. Returns
/// the members in archive order. On failure nothing new is left in dest_dir's parent.
/// Messages name the bundle as `shown` (e.g. its URL) when given, else by its path.
expected<std::vector<bundle_member>> extract_bundle(const std::filesystem::path& bundle,
                                                    const std::filesystem::path& dest_dir,
                                                    std::uint64_t max_total_bytes, std::string_view shown = {});

} // namespace banger::fetch
