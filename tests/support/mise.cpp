// See mise.hpp.
#include "tests/support/mise.hpp"

#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <fmt/format.h>

#include "common/sha256.hpp"
#include "tests/support/proc.hpp"

namespace banger::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr const char* version = "2026.9.15";
constexpr const char* tarball_sha256 = "b51f2463bc4fcdc3b0959b1454792f64be3612e73d856cbca4a062e39e070e74";

} // namespace

fs::path mise_binary() {
  const char* env = std::getenv("BANGER_TEST_CACHE");
  fs::path dir = fs::path(env && *env ? env : "/var/cache/banger-test") / "mise" / tarball_sha256;
  fs::path bin = dir / "package" / "bin" / "mise";
  if (fs::exists(bin))
    return bin;
  fs::create_directories(dir.parent_path());
  temp_dir dl("banger-mise-download");
  auto tgz = dl.path / "mise.tgz";
  auto url = fmt::format("https://registry.npmjs.org/@jdxcode/mise-linux-x64/-/mise-linux-x64-{}.tgz", version);
  auto got = run({"curl", "-sSfL", "--retry", "3", "-o", tgz.string(), url}, {}, 600s);
  BOOST_TEST_REQUIRE(got.exit_code == 0, "downloading " << url << " failed: " << got.err);
  auto digest = sha256_file(tgz);
  BOOST_TEST_REQUIRE(digest.has_value());
  BOOST_TEST_REQUIRE(*digest == tarball_sha256, url << " has SHA-256 " << *digest << ", not the pinned one");
  // Unpacked under a per-process name beside its place, then renamed: two test processes may
  // fill the cache at once.
  fs::path tmp = dir.string() + fmt::format(".tmp-{}", ::getpid());
  fs::create_directories(tmp);
  auto untar = run({"tar", "-xzf", tgz.string(), "-C", tmp.string()});
  BOOST_TEST_REQUIRE(untar.exit_code == 0, untar.err);
  std::error_code ec;
  fs::rename(tmp, dir, ec);
  if (ec)
    fs::remove_all(tmp);
  BOOST_TEST_REQUIRE(fs::exists(bin), bin << " is not in the mise package");
  return bin;
}

} // namespace banger::test
