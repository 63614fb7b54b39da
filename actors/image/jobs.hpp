// The blocking work behind kernel and image commands: builds, imports and removals in the
// artifact store. Run by the artifact actor's detached worker, never inside an event-based
// actor. A job builds into a staging directory under the artifact's name directory and renames
// it into place as <version id>, so a version directory is complete or absent.
//
//   STATE/kernels/<name>/<version id>/   vmlinux|bzImage, initrd.img, config, manifest.json
//   STATE/images/<name>/<version id>/    rootfs.ext4, work-seed.ext4, manifest.json
//
// The version id is the first 16 hex digits of the manifest's sha256: identical content gets
// the same id (an identical rebuild reuses the directory).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "actors/image/artifact.hpp"
#include "common/config.hpp"
#include "common/error.hpp"

namespace banger::actors {

struct artifact_store {
  std::filesystem::path state;     ///< the daemon's state dir
  std::filesystem::path agent_bin; ///< static banger-agent, injected into images
  std::filesystem::path init_bin;  ///< static banger-init
  std::filesystem::path cache;     ///< the daemon's cache dir: debootstrap trees in cache/debootstrap,
                                   ///< registry blobs in cache/blobs (fetch/blob_cache.hpp)
  images_config pulls{};           ///< config.toml's [images]: the caps a pull is held to

  std::filesystem::path kind_dir(artifact_kind k) const {
    return state / (k == artifact_kind::kernel ? "kernels" : "images");
  }
  std::filesystem::path name_dir(artifact_kind k, const std::string& name) const { return kind_dir(k) / name; }
  std::filesystem::path version_dir(artifact_kind k, const std::string& name, const std::string& id) const {
    return name_dir(k, name) / id;
  }
};

/// Where an artifact comes from. `key()` names it ("deb:/x.deb", "busybox", ...): two requests
/// with the same key for the same name share one job.
struct artifact_source {
  enum class type { deb, apt, vmlinux, catalog, busybox, debootstrap, dir, tar, registry };
  type kind = type::busybox;
  std::string path;                  ///< deb, vmlinux, dir, tar
  std::string initrd;                ///< vmlinux: optional initramfs to use as is
  std::string modules;               ///< vmlinux: optional modules dir to build one from
  std::string package;               ///< apt
  std::string url;                   ///< catalog: the catalog's URL (the entry is named like the kernel)
  std::string suite = "bookworm";    ///< debootstrap
  std::vector<std::string> packages; ///< debootstrap extras
  std::string reference;             ///< registry: an image reference (oci_reference's grammar)
  std::string platform;              ///< registry: "os/arch[/variant]"; empty: the host's
  bool plain_http = false;           ///< registry: named insecure (http://, no TLS)
  std::string username, password;    ///< registry: credentials; never part of key() or a journal
  std::string key() const;
};

/// Which artifact kind a source builds; bad_request for a mismatch (e.g. busybox for a kernel).
expected<void> check_source(artifact_kind k, const artifact_source& s);

struct job_result {
  std::string version_id;
  std::string manifest_sha256;
  std::uint64_t bytes = 0;
  std::string summary;
};

/// (stage, done, total): called on the job's thread.
using job_progress = std::function<void(const std::string& stage, std::uint64_t done, std::uint64_t total)>;

/// Builds or imports one version. On failure nothing is left in the store.
expected<job_result> run_artifact_job(const artifact_store& store, artifact_kind k, const std::string& name,
                                      const artifact_source& source, const job_progress& progress);

struct export_result {
  std::string entry_json;   ///< the bundle's catalog entry
  std::string catalog_path; ///< catalog.json beside the bundle, with the entry added or replaced
};

/// Writes kernel `name`'s version `id` as a bundle at `out` (absolute; must not exist) and
/// merges its entry into catalog.json in the same directory.
expected<export_result> export_kernel_bundle(const artifact_store& store, const std::string& name,
                                             const std::string& id, const std::filesystem::path& out);

/// Removes every version of an artifact from disk.
expected<void> remove_artifact_files(const artifact_store& store, artifact_kind k, const std::string& name);

/// The kernel package `apt-get download` should fetch for `package`: itself when it holds a
/// kernel, else the linux-image-* package it depends on (e.g. linux-image-cloud-amd64 ->
/// linux-image-6.1.0-28-cloud-amd64).
expected<std::string> resolve_kernel_package(const std::string& package);

} // namespace banger::actors
