// Finding VMM processes by what their command line names, for a VMM whose pid never reached the
// journal (the daemon died between its launch and the record). Reads /proc; any thread.
#pragma once

#include <filesystem>
#include <string_view>
#include <vector>

namespace banger::vmm {

/// Pids of live processes whose argv[0] contains "qemu-system" and whose command line contains
/// `path` (a VM's QMP socket path: only that VM's VMM names it). `proc` is the proc root (tests
/// point it elsewhere).
std::vector<int> vmm_pids_naming(const std::filesystem::path& path, const std::filesystem::path& proc = "/proc");

} // namespace banger::vmm
