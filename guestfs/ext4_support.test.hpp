// Helpers the ext4 tests share: the real debugfs and e2fsck, expected<> checks, and a fresh
// 32 MiB image per test. Header-only; included by guestfs/ext4*.test.cpp.
#pragma once

#include <boost/test/unit_test.hpp>

#include <fstream>
#include <optional>
#include <regex>
#include <unistd.h>

#include "guestfs/ext4.hpp"
#include "tests/support/proc.hpp"

namespace banger::guestfs::ext4_test {

namespace fs = std::filesystem;
using banger::test::temp_dir;
using namespace std::string_literals;

inline std::string tool(const std::string& name) {
  for (const char* dir : {"/usr/sbin", "/sbin", "/usr/bin", "/bin"}) {
    fs::path p = fs::path(dir) / name;
    if (::access(p.c_str(), X_OK) == 0)
      return p.string();
  }
  BOOST_FAIL(name + " not found: install e2fsprogs (scripts/install-deps)");
  return {};
}

inline std::string debugfs(const fs::path& img, const std::string& request) {
  auto r = banger::test::run({tool("debugfs"), "-R", request, img.string()});
  BOOST_TEST_REQUIRE(r.exit_code == 0, "debugfs -R '" << request << "' failed: " << r.err);
  return r.out;
}

struct stat_info {
  std::string type;
  std::uint32_t mode = 0;
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::uint64_t size = 0;
  std::uint64_t blockcount = 0;
  std::string raw;
};

/// `debugfs -R "stat PATH"`, parsed. Fails the test when debugfs cannot find the path.
inline stat_info dstat(const fs::path& img, const std::string& path) {
  auto r = banger::test::run({tool("debugfs"), "-R", "stat " + path, img.string()});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.err);
  stat_info s;
  s.raw = r.out;
  auto grab = [&](const char* re) -> std::string {
    std::smatch m;
    BOOST_TEST_REQUIRE(std::regex_search(r.out, m, std::regex(re)), "debugfs stat " << path << ": no match for " << re
                                                                                    << "\n"
                                                                                    << r.out << r.err);
    return m[1].str();
  };
  s.type = grab(R"(Type: (\S+))");
  s.mode = static_cast<std::uint32_t>(std::stoul(grab(R"(Mode:\s+([0-7]+))"), nullptr, 8));
  s.uid = static_cast<std::uint32_t>(std::stoul(grab(R"(User:\s+(\d+))")));
  s.gid = static_cast<std::uint32_t>(std::stoul(grab(R"(Group:\s+(\d+))")));
  s.size = std::stoull(grab(R"(Size:\s+(\d+))"));
  s.blockcount = std::stoull(grab(R"(Blockcount:\s+(\d+))"));
  return s;
}

inline void require_clean(const fs::path& img) {
  auto r = banger::test::run({tool("e2fsck"), "-fn", img.string()});
  BOOST_TEST_REQUIRE(r.exit_code == 0, "e2fsck -fn " << img << " exited " << r.exit_code << ":\n" << r.out << r.err);
}

inline std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::string out(fs::file_size(p), '\0');
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  BOOST_TEST_REQUIRE(static_cast<std::size_t>(in.gcount()) == out.size(), "short read of " << p);
  return out;
}

template <class T>
T ok(expected<T> r) {
  BOOST_TEST_REQUIRE(r.has_value(), (r ? std::string() : r.err().message));
  return std::move(r).value();
}
inline void ok(expected<void> r) { BOOST_TEST_REQUIRE(r.has_value(), (r ? std::string() : r.err().message)); }

template <class T>
void refused(const expected<T>& r, errc code, const std::string& what) {
  BOOST_TEST_REQUIRE(!r.has_value(), what << ": expected a refusal");
  BOOST_TEST((r.err().code == code), what << ": got " << to_string(r.err().code) << ": " << r.err().message);
}

struct image_fixture {
  temp_dir dir{"banger-ext4"};
  fs::path img = dir.path / "img.ext4";
  image_fixture() { ok(create_image(img, 32u << 20)); }
  ext4_image open_rw(std::optional<std::time_t> t = std::nullopt) { return ok(ext4_image::open(img, true, t)); }
  ext4_image open_ro() { return ok(ext4_image::open(img, false)); }
};

} // namespace banger::guestfs::ext4_test
