// The guest initramfs for Debian kernels, which build virtio and friends as modules: module
// dependency resolution (what `modprobe -d ROOT -S VER --show-depends` prints), and a gzip'd
// newc cpio holding busybox-static, those modules and an /init that loads them, applies
// `ip=`, waits for the root device and switch_roots into it.
//
//   initrd.img (gzip, cpio newc, every entry uid 0, mtime 0):
//     init                   the script init_script() returns, 0755
//     bin/busybox            busybox-static, plus bin/<applet> -> busybox symlinks
//     lib/modules/<name>.ko  each module, decompressed, loaded in list order
//     dev/console (c 5 1), dev/ proc/ sys/ newroot/
//
// Blocking file I/O; pure otherwise; any thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace banger::guestfs {

struct kernel_module {
  std::string name;           ///< canonical, '_' not '-' ("virtio_ring")
  std::filesystem::path file; ///< on the host: .ko, .ko.xz, .ko.zst or .ko.gz
  bool operator==(const kernel_module&) const = default;
};

/// The modules banger guests need: virtio, virtio_mmio, virtio_blk, virtio_net,
/// virtio_console, ext4, button and evdev.
const std::vector<std::string>& guest_modules();

/// The modules directory of kernel `version` under an extracted package tree `root`
/// (lib/modules/VER or usr/lib/modules/VER); errc::not_found if neither exists.
expected<std::filesystem::path> find_modules_dir(const std::filesystem::path& root, std::string_view version);

/// Every module needed to load `wanted`, dependencies first, each once. Dependencies come from
/// modules.dep when the tree has one, else from each module's `.modinfo` `depends=` (a package
/// fresh out of its .deb has no modules.dep: depmod runs at install time). Modules listed in
/// modules.builtin are built in and omitted. Fails with errc::not_found naming a module that is
/// neither present nor built in (and which module needed it), errc::bad_request on a cycle.
expected<std::vector<kernel_module>> resolve_modules(const std::filesystem::path& modules_dir,
                                                     const std::vector<std::string>& wanted);

/// The /init script, loading `module_names` (files lib/modules/<name>.ko) in order.
std::string init_script(const std::vector<std::string>& module_names);

struct initramfs_spec {
  std::filesystem::path busybox = "/usr/bin/busybox"; ///< must be statically linked
  std::vector<kernel_module> modules;                 ///< in load order
};

/// Writes the initramfs to `output` (atomically: a temporary file renamed into place).
/// Compressed modules are decompressed. Fails naming the file that could not be read.
expected<void> build_initramfs(const initramfs_spec& spec, const std::filesystem::path& output);

} // namespace banger::guestfs
