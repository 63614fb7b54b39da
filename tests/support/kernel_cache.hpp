// Test support for guests booted under QEMU: the Debian cloud kernel package (the one
// linux-image-cloud-amd64 depends on), downloaded once per version with `apt-get download` into
// a cache outside the build tree; the host's TSC rate for tsc_early_khz; and the QEMU microvm
// command line the e2e tests boot it with. Test-thread only; failures are Boost.Test REQUIRE
// failures with a message saying what is missing, never a pass.
//
// Cache: $BANGER_TEST_CACHE (default /var/cache/banger-test)/kernels/<package>_<version>.deb,
// shared by guestfs/kernel.e2e.test.cpp and tests/e2e/.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace banger::test {

struct cached_deb {
  std::string package, version;
  std::filesystem::path path;
};

/// linux-image-cloud-amd64's kernel package .deb, downloaded on first use of each version.
cached_deb cloud_kernel_deb();

/// /proc/cpuinfo's "cpu MHz" x 1000, for tsc_early_khz (host-facts: required under TCG).
long host_khz();

/// host-facts.md's QEMU microvm command under TCG (one vCPU, 128 MiB, no default devices, no
/// reboot) with its serial console in `console_log`, booting `kernel` and `initrd` with
/// root=/dev/vda, the TSC flags TCG needs (host_khz()) and then `extra_cmdline` on the kernel
/// command line. The caller appends drives and devices.
std::vector<std::string> microvm_argv(const std::filesystem::path& console_log, const std::filesystem::path& kernel,
                                      const std::filesystem::path& initrd, const std::string& extra_cmdline);

} // namespace banger::test
