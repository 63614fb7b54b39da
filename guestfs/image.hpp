// Building guest images (DESIGN §7). An image version is a directory, immutable once built:
//
//   <dest>/
//     rootfs.ext4     the root filesystem (raw ext4); banger-init and banger-agent injected at
//                     /usr/local/sbin, no ssh host keys (each VM generates its own)
//     work-seed.ext4  the image's /root as its own small ext4 (copied per VM as its work disk)
//     manifest.json   {"name", "source", "init", "created_ns", "packages" (list), "packages_sha256",
//                      "files": [{"name", "sha256", "size"}, ...]}   (files sorted by name)
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
};

/// debootstrap --variant=minbase (needs root). Host keys removed, apt caches and docs trimmed.
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
