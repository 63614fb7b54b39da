// The QEMU microvm driver (DESIGN.md §6, host-facts.md "A working QEMU microvm command"): the
// pure argv builder, and the driver behind make_qemu_driver (vmm.hpp), which forks QEMU into its
// own session and talks QMP (qmp.hpp) on <dir>/qmp.sock. docs/vmm.md explains every flag.
//
//   <dir>/qmp.sock     QMP server socket (QEMU creates it; removed by QEMU when it quits)
//   <dir>/agent.sock   virtio-serial port org.banger.agent.0, the guest agent's channel
//   <dir>/qemu.stderr  QEMU's stdout and stderr, truncated at each launch
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "vmm/vmm.hpp"

namespace banger::vmm {

/// A value embedded in a QEMU option string ("key=value,key=value"): each ',' doubled.
std::string qemu_opt_escape(std::string_view value);

/// The full QEMU command line for `s` (pure): argv[0] is `qemu`; `tcg` picks -accel tcg (else
/// kvm); `host_khz` goes into kernel_cmdline under TCG. An empty s.mac is derive_mac(s.name).
std::vector<std::string> qemu_argv(const vm_spec& s, bool tcg, long host_khz, const std::filesystem::path& qemu);

/// Up to the last `max_bytes` of a file, whitespace-trimmed ("" when unreadable): error context.
std::string file_tail(const std::filesystem::path& path, std::size_t max_bytes = 2000);

} // namespace banger::vmm
