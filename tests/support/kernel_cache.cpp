// See kernel_cache.hpp.
#include "tests/support/kernel_cache.hpp"

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fmt/format.h>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/support/proc.hpp"

namespace banger::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

/// The value after `key` on the first line holding it, trimmed of ' ', ':' and tabs.
std::string field(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    auto at = line.find(key);
    if (at == std::string::npos)
      continue;
    auto v = line.substr(at + key.size());
    while (!v.empty() && (v.front() == ' ' || v.front() == ':' || v.front() == '\t'))
      v.erase(v.begin());
    while (!v.empty() && (v.back() == ' ' || v.back() == '\r'))
      v.pop_back();
    return v;
  }
  return {};
}

} // namespace

cached_deb cloud_kernel_deb() {
  auto deps = run({"apt-cache", "depends", "linux-image-cloud-amd64"});
  auto pkg = field(deps.out, "Depends:");
  BOOST_TEST_REQUIRE(!pkg.empty(), "cannot find the Debian cloud kernel package: `apt-cache depends "
                                   "linux-image-cloud-amd64` printed no Depends (run apt-get update?): "
                                     << deps.out << deps.err);
  auto show = run({"apt-cache", "show", "--no-all-versions", pkg});
  auto version = field(show.out, "Version:");
  BOOST_TEST_REQUIRE(!version.empty(), "`apt-cache show " << pkg << "` printed no Version: " << show.err);

  const char* env = std::getenv("BANGER_TEST_CACHE");
  fs::path cache = fs::path(env && *env ? env : "/var/cache/banger-test") / "kernels";
  fs::create_directories(cache);
  auto safe_version = version;
  for (auto& c : safe_version)
    if (c == ':')
      c = '%';
  auto path = cache / (pkg + "_" + safe_version + ".deb");
  if (!fs::exists(path)) {
    temp_dir dl("banger-kernel-download");
    ::chmod(dl.path.c_str(), 0755); // apt's _apt user downloads into it when it can
    auto r =
      run({"sh", "-c", "cd '" + dl.path.string() + "' && apt-get download -q '" + pkg + "=" + version + "'"}, {}, 300s);
    BOOST_TEST_REQUIRE(r.exit_code == 0, "apt-get download " << pkg << "=" << version
                                                             << " failed (no network or no Debian mirror?): " << r.err);
    fs::path got;
    for (auto& e : fs::directory_iterator(dl.path))
      if (e.path().extension() == ".deb")
        got = e.path();
    BOOST_TEST_REQUIRE(!got.empty(), "apt-get download left no .deb in " << dl.path);
    // A per-process temporary name: two test processes may fill the cache at once.
    auto tmp = path.string() + fmt::format(".tmp-{}", ::getpid());
    fs::copy_file(got, tmp, fs::copy_options::overwrite_existing);
    fs::rename(tmp, path);
  }
  return {pkg, version, path};
}

long host_khz() {
  auto mhz = field(slurp("/proc/cpuinfo"), "cpu MHz");
  BOOST_TEST_REQUIRE(!mhz.empty(), "no cpu MHz in /proc/cpuinfo");
  return std::lround(std::stod(mhz) * 1000);
}

std::vector<std::string> microvm_argv(const fs::path& console_log, const fs::path& kernel, const fs::path& initrd,
                                      const std::string& extra_cmdline) {
  return {"qemu-system-x86_64",
          "-M",
          "microvm",
          "-accel",
          "tcg,tb-size=128",
          "-cpu",
          "max",
          "-m",
          "128",
          "-smp",
          "1",
          "-no-reboot",
          "-nodefaults",
          "-no-user-config",
          "-display",
          "none",
          "-serial",
          "file:" + console_log.string(),
          "-kernel",
          kernel.string(),
          "-initrd",
          initrd.string(),
          "-append",
          fmt::format("console=ttyS0 reboot=k panic=1 root=/dev/vda rw quiet tsc_early_khz={} tsc=reliable "
                      "no_timer_check {}",
                      host_khz(), extra_cmdline)};
}

} // namespace banger::test
