// Boot snapshots (docs/boot-snapshots.md): a VM's first start resumes a guest booted once per
// shape instead of booting one. This file owns the template's key, its build (boot with
// banger.await, wait on the console for banger-init to say it waits for the host's settings,
// save the device state, quit) and a restore (launch incoming, load, hand the guest its
// settings, clock and entropy). Blocking; VM worker threads. Templates of one shape are built
// once under ensure_template's flock (disks.hpp).
//
//   STATE/cache/vm-templates/<image>/<version>/boot-<key>/   ram  state  overlay.qcow2  console.log
//   STATE/cache/vm-templates/<image>/<version>/boot-<key>.unsupported   why this shape cannot
#pragma once

#include <filesystem>

#include "actors/vm/host_internal.hpp"

namespace banger::actors {

/// The boot snapshot `spec`'s VM can resume: named by everything that shapes the guest up to
/// where the template waits (the driver's guest_shape, the image version, the work disk's size)
/// and nothing of one VM's.
std::filesystem::path boot_snapshot_dir(const host_env& h, const vm_state& s, const vmm::vm_spec& spec);

/// Launches the VM from its shape's boot snapshot (made first when missing), resumes it and hands
/// the guest its settings. On failure nothing of the attempt runs any more; a snapshot this QEMU
/// cannot load is dropped (the next first start makes a new one). unavailable when the shape
/// cannot have one (the image's banger-init predates snapshots).
expected<vmm::vmm_process> launch_restored(const host_env& h, const vm_state& s, const vm_paths& p, vmm::vm_spec spec);

/// Boots the template of `spec` into `tmp` (ensure_template renames it to `final`): `overlay` is
/// copied as the template's disk, RAM in tmp/ram, banger.await on the command line. Once the
/// console shows banger-init waiting for the host's settings, the device state goes to tmp/state
/// and the VMM quits. A banger-init that boots on without waiting records final.unsupported.
expected<void> build_boot_snapshot(const host_env& h, const std::filesystem::path& final,
                                   const std::filesystem::path& overlay, vmm::vm_spec spec,
                                   const std::filesystem::path& tmp);

} // namespace banger::actors
