// A stored kernel: one directory holding the boot image, its initramfs, its config and a
// manifest of sha256s. Assembled from an extracted Debian kernel package (deb.hpp), or
// straight from a .deb. The directory is built beside its final name and renamed into place,
// so a kernel directory either is complete or does not exist. Blocking I/O; any thread.
//
//   <dest>/
//     vmlinux        PVH ELF (format "pvh-elf"), or
//     bzImage        the package's vmlinuz unchanged (format "bzimage")
//     initrd.img     initramfs.hpp's gzip'd cpio
//     config         the kernel's build config
//     manifest.json  {"name", "kernel_version", "source", "format",
//                     "files": [{"name", "sha256", "size"}, ...]}   (files sorted by name)
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "guestfs/initramfs.hpp"

namespace banger::guestfs {

enum class kernel_format { pvh_elf, bzimage };

std::string_view to_string(kernel_format f); ///< "pvh-elf" / "bzimage"

struct kernel_file {
  std::string name;   ///< relative to the kernel directory
  std::string sha256; ///< lowercase hex
  std::uint64_t size = 0;
  bool operator==(const kernel_file&) const = default;
};

struct kernel_manifest {
  std::string name;
  std::string kernel_version; ///< e.g. "6.1.0-56-cloud-amd64"
  std::string source;         ///< where it came from, e.g. "deb:linux-image-...@6.1.192-2"
  kernel_format format = kernel_format::bzimage;
  std::vector<kernel_file> files;
  std::string why_not_pvh; ///< not stored; why a bzImage was kept, for the caller to show
};

struct kernel_dir_spec {
  std::string name;
  std::string source;
  std::filesystem::path extracted; ///< a package tree from extract_deb (boot/, lib/modules/)
  std::filesystem::path busybox = "/usr/bin/busybox";
  std::vector<std::string> modules = guest_modules();
};

/// Builds the kernel directory `dest` (which must not exist) from `spec.extracted`: picks the
/// one boot/vmlinuz-VER, converts it to a PVH vmlinux when it can (else keeps the bzImage),
/// resolves and packs the modules into initrd.img, copies config-VER, writes the manifest.
/// Fails with errc::bad_request when the tree has no kernel or several, errc::not_found for a
/// missing module, errc::already_exists when `dest` exists.
expected<kernel_manifest> assemble_kernel_dir(const kernel_dir_spec& spec, const std::filesystem::path& dest);

/// extract_deb (kernel members only) into a scratch directory next to `dest`, then
/// assemble_kernel_dir; the scratch tree is removed either way.
expected<kernel_manifest> import_kernel_deb(const std::filesystem::path& deb, kernel_dir_spec spec,
                                            const std::filesystem::path& dest);

/// Reads `dir`/manifest.json and checks every listed file's size and sha256. errc::bad_request
/// names the first file that does not match.
expected<kernel_manifest> verify_kernel_dir(const std::filesystem::path& dir);

} // namespace banger::guestfs
