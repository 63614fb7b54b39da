// Building guest images (DESIGN §7). An image version is a directory, immutable once built:
//
//   <dest>/
//     rootfs.ext4     the root filesystem (raw ext4); banger-init and banger-agent injected at
//                     /usr/local/sbin, no ssh host keys (each VM generates its own)
//     work-seed.ext4  the image's /root as its own small ext4 (copied per VM as its work disk)
//     manifest.json   {"name", "source", "init", "created_ns", "packages" (list), "packages_sha256",
//                      "files": [{"name", "sha256", "size"}, ...],   (files sorted by name)
//                      and for an image pulled from a registry:
//                      "oci": {"reference", "manifest_digest", "index_digest", "platform",
//                              "layers": [{"digest", "size", "diff_id"}, ...]},
//                      "config": {"env": [..], "working_dir", "user", "entrypoint": [..], "cmd": [..]}}
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
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace banger::guestfs {

struct image_file {
  std::string name;
  std::string sha256;
  std::uint64_t size = 0;
};

/// What an OCI image's config asks of the processes run in it (its `config` object): the
/// default environment and working directory for `vm exec` / `vm run`, and what `vm run`
/// runs when no command is given.
struct image_runtime_config {
  std::vector<std::string> env; ///< "NAME=value"
  std::string working_dir;      ///< absolute, or empty
  std::string user;             ///< as the config says ("1000", "app:app"); empty: root
  std::vector<std::string> entrypoint, cmd;
  bool empty() const { return env.empty() && working_dir.empty() && user.empty() && entrypoint.empty() && cmd.empty(); }
};

struct oci_layer_record {
  std::string digest; ///< of the blob as the registry serves it
  std::uint64_t size = 0;
  std::string diff_id; ///< of the uncompressed tar
};

/// Where a pulled image came from.
struct oci_origin {
  std::string reference;       ///< canonical: "127.0.0.1:5000/team/app:1.0"
  std::string manifest_digest; ///< of the image manifest used
  std::string index_digest;    ///< of the index it was picked from; empty without one
  std::string platform;        ///< "linux/amd64"; empty without an index
  std::vector<oci_layer_record> layers;
};

struct image_manifest {
  std::string name;
  std::string source; ///< "busybox", "debootstrap:bookworm", "dir:/path", "tar:/path"
  std::string init;   ///< "banger-init" or the image's own (e.g. "/sbin/init" for systemd images)
  std::int64_t created_ns = 0;
  std::vector<std::string> packages; ///< debootstrap packages, sorted; empty otherwise
  std::string packages_sha256;       ///< sha256 of the sorted package list joined by '\n'
  std::vector<image_file> files;
  std::optional<oci_origin> oci; ///< pulled images only
  image_runtime_config config;   ///< pulled images: from the OCI config; empty otherwise
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

/// How an OCI layer blob is compressed (its media type says).
enum class layer_codec { none, gzip, zstd };

/// One layer of a pulled image: a verified blob, open for reading.
struct oci_layer_input {
  int fd = -1; ///< the blob (read from offset 0; not closed)
  layer_codec codec = layer_codec::gzip;
  oci_layer_record record;
};

struct oci_image_spec {
  std::string name;
  oci_origin origin;                   ///< its layers are recorded from `layers` and the diff_ids
  std::string config_json;             ///< the image config blob, digest-verified by the caller
  std::vector<oci_layer_input> layers; ///< lowest first
  std::uint64_t max_entries_per_layer = 1'000'000;
  std::uint64_t max_layer_bytes = 64ull << 30;  ///< a layer's uncompressed tar, and its files' content
  std::uint64_t max_rootfs_bytes = 64ull << 30; ///< the image the layers are flattened into
};

/// Flattens `spec.layers` in order straight into a new rootfs.ext4 (guestfs/layer.hpp's rules),
/// decompressing in-process (zlib, libzstd) and checking each uncompressed stream against the
/// config's rootfs.diff_ids as it goes; copies the image's /root into work-seed.ext4; injects
/// banger-init and banger-agent as for other images, and records the origin and the config's
/// Env, WorkingDir, User, Entrypoint and Cmd in manifest.json. rootfs.ext4 is sized from the
/// layers (the uncompressed sizes their framing declares) and grown, up to max_rootfs_bytes,
/// if it fills. Refused with errc::bad_request: a config that is not an image config, a
/// diff_id count or value that does not match, a layer that is not what its media type says,
/// a hostile layer (layer.hpp). Nothing is left at `dest` on failure.
expected<image_manifest> build_oci_image(const oci_image_spec& spec, const guest_binaries& bins,
                                         const std::filesystem::path& dest, const progress_fn& progress);

/// Reads and checks `dir`/manifest.json (its fields' types, safe file names, the two images
/// listed) without hashing the files.
expected<image_manifest> read_image_manifest(const std::filesystem::path& dir);

/// read_image_manifest(), then checks every listed file's size and sha256.
expected<image_manifest> verify_image_dir(const std::filesystem::path& dir);

} // namespace banger::guestfs
