// A VM's two disk files, made by copying templates that are prepared once and then reused by every
// VM of the same image version: a VM start copies two small or sparse files instead of running
// qemu-img, resize2fs and the in-process key write each time. Blocking: runs on a VM's worker
// thread; any number of threads (of one daemon) may prepare the same template at once.
//
//   TEMPLATES/<image>/<version>/                      TEMPLATES = STATE/cache/vm-templates
//     overlay.qcow2                        qcow2, backing file IMAGES/<image>/<version>/rootfs.ext4 (-F raw,
//                                          absolute), so a copy is a valid overlay for any VM of the version
//     work-<MiB>-<key>.ext4                the version's work-seed.ext4, sparse, grown to <MiB> (resize2fs),
//                                          the key in /.ssh/authorized_keys; <key> = the first 16 hex of the
//                                          sha256 of the public key file's contents, or "nokey"
//     <template>.lock                      flock'ed while that template is built
//     <template>.tmp                       a template being built (renamed to its name last)
//     boot-<key>/                          a boot snapshot of the version (docs/boot-snapshots.md)
//
// Invariants: a template exists under its name only when complete (built under the lock into
// `.tmp`, then renamed); image version ids are content hashes, so a template never goes stale
// while its version exists. A version's templates are removed (prune_templates) the next time
// any template is built after that image version is gone.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "common/error.hpp"

namespace banger::actors {

struct disk_templates {
  std::filesystem::path root;   ///< STATE/cache/vm-templates
  std::filesystem::path images; ///< STATE/images: IMAGES/<image>/<version>/{rootfs,work-seed}.ext4
};

/// Writes `out` (replacing it): a qcow2 overlay on the image version's rootfs, copied from the
/// version's overlay template (built first when missing).
expected<void> make_overlay(const disk_templates& t, const std::string& image, const std::string& version,
                            const std::filesystem::path& out);

/// Writes `out` (replacing it): the image version's work seed grown to `disk_mib` MiB (never
/// shrunk) with `public_key`'s contents in /.ssh/authorized_keys (0600, root) unless
/// `public_key` is empty; a sparse copy of the matching work-disk template (built first when
/// missing).
expected<void> make_work_disk(const disk_templates& t, const std::string& image, const std::string& version,
                              std::uint32_t disk_mib, const std::filesystem::path& public_key,
                              const std::filesystem::path& out);

/// Copies `from` to `to` (replaced, mode 0644 & ~umask), keeping holes: a reflink (FICLONE) where the
/// filesystem can, else only `from`'s data ranges (SEEK_DATA/SEEK_HOLE) are written.
expected<void> sparse_copy(const std::filesystem::path& from, const std::filesystem::path& to);

/// Makes `final` (a file or a directory) with `build(tmp)` unless it exists: under
/// `<final>.lock`, so one thread builds while the others wait and then use what it made; `build`
/// writes `<final>.tmp`, renamed to `final` last, and removed when `build` fails.
expected<void> ensure_template(const std::filesystem::path& final,
                               const std::function<expected<void>(const std::filesystem::path&)>& build);

/// TEMPLATES/<image>/<version>: where that image version's templates live.
std::filesystem::path version_dir(const disk_templates& t, const std::string& image, const std::string& version);

/// Removes TEMPLATES/<image>/<version> dirs whose IMAGES/<image>/<version> is gone.
void prune_templates(const disk_templates& t);

} // namespace banger::actors
