// Building guest images (DESIGN §7). An image version is a directory, immutable once built:
//
//   <dest>/
//     rootfs.ext4     the root filesystem (raw ext4); banger-init and banger-agent injected at
//                     /usr/local/sbin, no ssh host keys (each VM generates its own)
//     work-seed.ext4  the image's /root as its own small ext4 (copied per VM as its work disk)
//     manifest.json   {"name", "source", "init", "created_ns", "packages" (list), "packages_sha256",
//                      "files": [{"name", "sha256", "size"}, ...]}   (files sorted by name)
//
// The debootstrap builder can keep Debian's tree in a cache directory, keyed by content:
//
//   <cache_dir>/debootstrap-<suite>-<first 16 hex of debootstrap_cache_key>.tar.zst
//                   pax tar, zstd; members relative ("etc/passwd"), numeric owners, modes,
//                   mtimes, symlinks, hard links, xattrs; no device nodes, fifos or sockets.
//                   The tree after debootstrap, trimming and host key removal, before anything
//                   of banger's is added. Written as "<name>.tmp-XXXXXX" and renamed, so a
//                   reader sees a whole file or none; read with the tar import's refusals.
//
// Builders fill `dest` (which must not exist) through a scratch tree beside it and leave nothing
// behind on failure. Blocking (subprocesses, file I/O): call from a worker thread, never from
// an event-based actor. `progress` is called on the calling thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace banger::guestfs {

struct image_file {
  std::string name;
  std::string sha256;
  std::uint64_t size = 0;
};

struct image_manifest {
  std::string name;
  std::string source; ///< "busybox", "debootstrap:bookworm", "dir:/path", "tar:/path"
  std::string init;   ///< "banger-init" or the image's own (e.g. "/sbin/init" for systemd images)
  std::int64_t created_ns = 0;
  std::vector<std::string> packages; ///< debootstrap packages, sorted; empty otherwise
  std::string packages_sha256;       ///< sha256 of the sorted package list joined by '\n'
  std::vector<image_file> files;
};

/// (stage, bytes done, bytes total or 0)
using progress_fn = std::function<void(const std::string& stage, std::uint64_t done, std::uint64_t total)>;

struct guest_binaries {
  std::filesystem::path agent; ///< static banger-agent
  std::filesystem::path init;  ///< static banger-init
};

/// A tiny image: busybox-static with its applets, /etc basics, banger-init as init. Seconds.
expected<image_manifest> build_busybox_image(const std::string& name, const guest_binaries& bins,
                                             const std::filesystem::path& dest, const progress_fn& progress);

struct debootstrap_spec {
  std::string suite = "bookworm";
  std::string mirror = "http://deb.debian.org/debian";
  /// Added to the defaults: openssh-server, ca-certificates, curl, git, iproute2.
  std::vector<std::string> packages;
  /// Where Debian trees are cached between builds (created when missing); empty: no cache.
  std::filesystem::path cache_dir;
};

/// Bumped whenever what the builder caches changes (trimming, tar layout), so old cache files
/// stop matching.
constexpr int debootstrap_cache_format = 1;

/// sha256 (64 hex digits) over the suite, the mirror, the sorted package list including the
/// defaults, and debootstrap_cache_format. cache_dir plays no part.
std::string debootstrap_cache_key(const debootstrap_spec& spec);

/// debootstrap --variant=minbase (needs root). Host keys removed, apt caches and docs trimmed,
/// device nodes, fifos and sockets dropped (banger-init mounts /dev). With `spec.cache_dir`, a
/// cached tree for the same key replaces the debootstrap run (progress stage "cache-hit" instead
/// of "debootstrap"); an unreadable or hostile cache file counts as a miss and is replaced. A
/// miss fills the cache; failing to write it is reported as a progress stage starting with
/// "cache: " and does not fail the build. Either way the image's packages are the same.
expected<image_manifest> build_debootstrap_image(const std::string& name, const debootstrap_spec& spec,
                                                 const guest_binaries& bins, const std::filesystem::path& dest,
                                                 const progress_fn& progress);

/// From a host directory tree or a tar file (plain, gzip, xz or zstd), refusing hostile members
/// (absolute paths, "..", links escaping the tree, device nodes).
expected<image_manifest> import_dir_image(const std::string& name, const std::filesystem::path& dir,
                                          const guest_binaries& bins, const std::filesystem::path& dest,
                                          const progress_fn& progress);
expected<image_manifest> import_tar_image(const std::string& name, const std::filesystem::path& tar,
                                          const guest_binaries& bins, const std::filesystem::path& dest,
                                          const progress_fn& progress);

/// Reads `dir`/manifest.json and checks every listed file's size and sha256.
expected<image_manifest> verify_image_dir(const std::filesystem::path& dir);

} // namespace banger::guestfs
