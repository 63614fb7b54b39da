// Internal to banger_guestfs_image: the staging machinery (image.cpp) the builders
// (image_busybox.cpp, image_debootstrap.cpp) and the importers (image_import.cpp) share, and the
// tar reading and writing behind the debootstrap cache (image_import.cpp, image_cache.cpp). Not
// installed, not included outside guestfs/image*.cpp.
//
// Every builder works in one scratch directory beside `dest`:
//
//   <dest>.building-XXXXXX/
//     tree/   the root filesystem as host files (filled by the builder)
//     out/    rootfs.ext4, work-seed.ext4, manifest.json; renamed to <dest> on success
//
// and the scratch directory is removed on every path (after unmounting anything left mounted
// below it, e.g. by an interrupted debootstrap).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <utility>
#include <vector>

#include "common/subprocess.hpp"
#include "guestfs/ext4.hpp"
#include "guestfs/image.hpp"

namespace banger::guestfs::detail {

/// The scratch directory of one build. Move-only; the destructor removes it.
class staging {
public:
  /// Refuses an existing `dest` (errc::already_exists) or a missing parent (errc::not_found).
  static expected<staging> begin(const std::filesystem::path& dest);
  staging(staging&& o) noexcept : dir_(std::exchange(o.dir_, {})) {}
  staging& operator=(staging&&) = delete;
  staging(const staging&) = delete;
  ~staging();

  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path tree() const { return dir_ / "tree"; }
  std::filesystem::path out() const { return dir_ / "out"; }

private:
  explicit staging(std::filesystem::path dir) : dir_(std::move(dir)) {}
  std::filesystem::path dir_;
};

/// Detach-unmounts every mount point at or below `dir` (deepest first). Returns false when one
/// stays mounted, in which case the caller must not remove `dir`.
bool unmount_below(const std::filesystem::path& dir);

/// How finish() turns a staged tree into an image directory.
struct finish_spec {
  image_manifest manifest;            ///< name, source, init, packages; files and time filled in
  std::uint64_t rootfs_bytes = 0;     ///< 0: sized from the tree (× 1.3 + 256 MiB)
  std::uint64_t work_seed_bytes = 0;  ///< 0: sized from the tree's /root (min 16 MiB)
  bool everything_root_owned = false; ///< chown the whole content to root:root
};

/// Removes ssh host keys from the tree (resolving /etc/ssh inside it), creates
/// rootfs.ext4 and work-seed.ext4 from it, injects banger-init / banger-agent (and the sshd
/// drop-in when the image has sshd) into rootfs.ext4, writes manifest.json and renames out/ to
/// `dest`.
expected<image_manifest> finish(staging& stage, finish_spec spec, const guest_binaries& bins,
                                const std::filesystem::path& dest, const progress_fn& progress);

/// Injects banger's guest side into an open rootfs (paths resolved inside the image): the
/// mount points banger-init needs, /usr/local/sbin/banger-{init,agent} (copied from `bins` in
/// pieces, never whole in memory), /sbin/init when the image has none, and the sshd drop-in
/// when it has sshd; then closes the image.
expected<void> inject(ext4_image& img, const guest_binaries& bins);

/// The bytes of banger-agent and banger-init together (what an image must leave room for).
expected<std::uint64_t> guest_binaries_size(const guest_binaries& bins);

/// The last step of every builder: stamps `m` with the time and the sizes and sha256s of
/// out/rootfs.ext4 and out/work-seed.ext4, writes out/manifest.json and renames out/ to `dest`.
expected<image_manifest> install(staging& stage, image_manifest m, const std::filesystem::path& dest,
                                 const progress_fn& progress);

/// `guest_path` (absolute, e.g. "/etc/ssh") resolved inside `tree` the way the guest would:
/// symlinks in every component are followed with `tree` as the root, so the result never
/// leaves `tree`. std::nullopt when a component is missing or symlinks loop.
std::optional<std::filesystem::path> resolve_in_tree(const std::filesystem::path& tree, std::string_view guest_path);

/// Allocated size estimate of a tree (files rounded up to 4 KiB, one block per directory and
/// long symlink, 256 bytes of inode per entry). Symlinks are not followed.
std::uint64_t tree_bytes(const std::filesystem::path& tree);

/// Extracts tar file `tar` (any compression libarchive reads) into the existing directory
/// `tree` (canonical: no symlinks in it), refusing hostile members as image.hpp's tar import
/// does (errc::bad_request, "<what>: refusing member ..."). Owners and xattrs are kept when
/// `as_root`. Reports stage `stage` with bytes extracted. Defined in image_import.cpp.
expected<void> extract_tar(const std::filesystem::path& tar, const std::filesystem::path& tree, const std::string& what,
                           bool as_root, const std::string& stage, const progress_fn& progress);

/// Writes `tree` as a pax + zstd tar to `file` in the cache layout image.hpp draws: first as
/// "<file>.tmp-XXXXXX" beside it, fsynced, then renamed over `file`; the temporary is removed on
/// failure. Creates `file`'s directory when missing. Refuses device nodes, fifos and sockets.
/// Reports stage "cache" with bytes written. Defined in image_cache.cpp.
expected<void> write_cache_tar(const std::filesystem::path& tree, const std::filesystem::path& file,
                               const progress_fn& progress);

/// Errors as values from a scratch-directory syscall: "<what> <path>: <errno text>".
error sys_error(std::string_view what, const std::filesystem::path& path, int err);

inline constexpr std::uint64_t mib = 1024 * 1024;

/// Calls `progress` when there is one.
void report(const progress_fn& progress, const std::string& stage, std::uint64_t done, std::uint64_t total);

/// Writes `bytes` to the host file `path` (created or truncated, never through a symlink) with
/// `mode`, and fsyncs it.
expected<void> write_host_file(const std::filesystem::path& path, std::string_view bytes, mode_t mode);

/// Deletes /etc/ssh/ssh_host_* from the tree: every VM generates its own on first boot.
expected<void> remove_host_keys(const std::filesystem::path& tree);

/// Runs argv[0] (a path) with stdin from /dev/null, PATH extended with the sbin directories and
/// LC_ALL=C, output and errors interleaved, calling `on_line` for each output line.
process_result run_tool(const std::vector<std::string>& argv, std::function<void(std::string_view)> on_line = {},
                        std::chrono::milliseconds timeout = std::chrono::minutes(10));

/// The last `n` bytes of a tool's output for an error message, "..." first when cut.
std::string tail(const std::string& s, std::size_t n = 2000);

} // namespace banger::guestfs::detail
