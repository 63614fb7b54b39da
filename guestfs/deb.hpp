// Reading Debian packages without dpkg: a `.deb` is an `ar` archive whose `data.tar.{xz,zst,gz}`
// member holds the files; libarchive reads both levels, streaming (nothing is staged on disk).
//
//   foo.deb (ar) = debian-binary | control.tar.* | data.tar.{xz,zst,gz,bz2,}
//
// Extraction is for untrusted packages: every member name is checked (no absolute paths, no
// `..`), only regular files, directories and symlinks that stay inside the destination are
// written, device nodes / fifos / hard links are refused, and the total size is capped. On any
// failure the destination is left as it was (the tree is built in a sibling temporary
// directory and renamed into place). Blocking file I/O; call from a blocking-allowed thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace banger::guestfs {

struct deb_member {
  std::string path; ///< normalised: no leading "./" or "/", no trailing "/"
  std::uint64_t size = 0;
  char type = '?';         ///< 'f' file, 'd' directory, 'l' symlink, 'h' hard link, '?' anything else
  std::string link_target; ///< for 'l' and 'h'
};

/// The members of the package's data archive, in archive order.
expected<std::vector<deb_member>> list_deb(const std::filesystem::path& deb);

struct extract_options {
  /// Which members to extract (by normalised path); directories leading to them are created.
  std::function<bool(std::string_view path)> select;
  std::uint64_t max_total_bytes = std::uint64_t{2} << 30; ///< sum of extracted file sizes
  std::uint64_t max_entries = 200000;                     ///< members examined
};

struct extract_result {
  std::vector<std::string> files; ///< regular files written, normalised paths
  std::uint64_t total_bytes = 0;
};

/// The kernel package selector: boot/vmlinuz-*, boot/config-*, and everything under
/// lib/modules/ (or usr/lib/modules/ in merged-/usr packages).
bool is_kernel_member(std::string_view path);

/// Extracts the selected members into `dest`, which must not exist yet (its parent must).
/// Refuses the whole package (errc::bad_request, naming the member) on a hostile member name
/// anywhere in it, or on a selected member that is a device node, fifo, socket, hard link or a
/// symlink leaving the tree, or when the selection exceeds `max_total_bytes`. `dest` is
/// created only on success.
expected<extract_result> extract_deb(const std::filesystem::path& deb, const std::filesystem::path& dest,
                                     const extract_options& opts);

/// Whether `name` is a safe relative member name; returns it normalised, or an error saying
/// why not. Exposed for tests.
expected<std::string> normalise_member_name(std::string_view name);

} // namespace banger::guestfs
