// Tests of actors/vm/disks: real templates made by the real qemu-img, resize2fs and guestfs in a
// temp state dir, checked from the outside (qemu-img info, dumpe2fs, e2fsck -fn, guestfs reads).
// A template is made once and then reused (same inode), a VM's disk equals what the old per-VM
// path made, and concurrent preparations of one template share one build.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <thread>

#include <fmt/core.h>

#include "actors/vm/disks.hpp"
#include "common/subprocess.hpp"
#include "guestfs/ext4.hpp"
#include "tests/support/proc.hpp"

using namespace banger;
using namespace banger::actors;
namespace fs = std::filesystem;

namespace {

boost::test_tools::assertion_result tools_present(boost::unit_test::test_unit_id) {
  for (const char* t : {"qemu-img", "resize2fs", "mkfs.ext4", "dumpe2fs", "e2fsck"})
    if (!find_program(t)) {
      boost::test_tools::assertion_result r(false);
      r.message() << t << " is not installed (packages qemu-utils, e2fsprogs): skipping";
      return r;
    }
  return true;
}

/// A state dir with image "deb" version "v1": a 32 MiB raw rootfs and a 16 MiB ext4 work seed.
struct fixture {
  test::temp_dir dir{"banger-disks"};
  disk_templates t{dir.path / "cache" / "vm-templates", dir.path / "images"};
  fs::path key = dir.path / "id.pub";

  fixture() {
    auto v = t.images / "deb" / "v1";
    fs::create_directories(v);
    std::ofstream(v / "rootfs.ext4").close();
    fs::resize_file(v / "rootfs.ext4", 32u << 20);
    auto ok = guestfs::create_image(v / "work-seed.ext4", 16u << 20);
    BOOST_TEST_REQUIRE(ok.has_value(), (ok ? std::string() : ok.err().message));
    write_key("ssh-ed25519 AAAAkey1 banger\n");
  }
  void write_key(const std::string& s) const { std::ofstream(key, std::ios::trunc) << s; }
  fs::path vdir() const { return t.root / "deb" / "v1"; }
  std::vector<std::string> templates(const std::string& prefix) const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(vdir()))
      if (auto n = e.path().filename().string(); n.rfind(prefix, 0) == 0 && e.path().extension() != ".lock")
        out.push_back(n);
    std::sort(out.begin(), out.end());
    return out;
  }
};

ino_t inode(const fs::path& p) {
  struct stat st {};
  BOOST_TEST_REQUIRE(::stat(p.c_str(), &st) == 0, "stat " << p);
  return st.st_ino;
}

std::string dumpe2fs_field(const fs::path& img, const std::string& field) {
  auto r = test::run({find_program("dumpe2fs")->string(), "-h", img.string()});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.err);
  auto at = r.out.find(field + ":");
  BOOST_TEST_REQUIRE(at != std::string::npos, field << " not in dumpe2fs -h");
  auto end = r.out.find('\n', at);
  auto v = r.out.substr(at + field.size() + 1, end - at - field.size() - 1);
  return v.substr(v.find_first_not_of(' '));
}

bool same_bytes(const fs::path& a, const fs::path& b) {
  return test::run({"cmp", "-s", a.string(), b.string()}).exit_code == 0;
}

void check_fsck(const fs::path& img) {
  auto r = test::run({find_program("e2fsck")->string(), "-fn", img.string()});
  BOOST_TEST(r.exit_code == 0, "e2fsck -fn " << img << ": " << r.out << r.err);
}

/// What make_work_disk made before templates: cp --sparse=always, grow, resize2fs, key.
void old_work_disk(const fs::path& seed, std::uint32_t mib, const std::string& key, const fs::path& out) {
  BOOST_TEST_REQUIRE(test::run({"cp", "--sparse=always", seed.string(), out.string()}).exit_code == 0);
  fs::resize_file(out, std::uint64_t{mib} << 20);
  BOOST_TEST_REQUIRE(test::run({find_program("resize2fs")->string(), "-f", out.string()}).exit_code == 0);
  auto img = guestfs::ext4_image::open(out, true);
  BOOST_TEST_REQUIRE(img.has_value());
  BOOST_TEST_REQUIRE(img->mkdir_p("/.ssh", 0700, 0, 0).has_value());
  BOOST_TEST_REQUIRE(img->write_file("/.ssh/authorized_keys", key, 0600, 0, 0).has_value());
  BOOST_TEST_REQUIRE(img->close().has_value());
}

} // namespace

BOOST_AUTO_TEST_SUITE(disks, *boost::unit_test::precondition(tools_present))

BOOST_FIXTURE_TEST_CASE(overlay_template_is_made_once_and_copies_are_valid_overlays, fixture) {
  auto a = dir.path / "a.qcow2", b = dir.path / "b.qcow2";
  BOOST_TEST_REQUIRE(make_overlay(t, "deb", "v1", a).has_value());
  auto tmpl = vdir() / "overlay.qcow2";
  auto ino = inode(tmpl);
  BOOST_TEST_REQUIRE(make_overlay(t, "deb", "v1", b).has_value());
  BOOST_TEST(inode(tmpl) == ino); // reused, not rebuilt
  for (const auto& p : {a, b}) {
    auto r = test::run({find_program("qemu-img")->string(), "info", "--output=json", p.string()});
    BOOST_TEST_REQUIRE(r.exit_code == 0, r.err);
    auto j = nlohmann::json::parse(r.out);
    BOOST_TEST(j["format"] == "qcow2");
    BOOST_TEST(j["backing-filename"] == (t.images / "deb" / "v1" / "rootfs.ext4").string());
    BOOST_TEST(j["backing-filename-format"] == "raw");
    BOOST_TEST(j["virtual-size"] == 32u << 20);
    auto chk = test::run({find_program("qemu-img")->string(), "check", p.string()});
    BOOST_TEST(chk.exit_code == 0, chk.out << chk.err);
  }
  BOOST_TEST(templates("overlay") == std::vector<std::string>{"overlay.qcow2"});
}

BOOST_FIXTURE_TEST_CASE(work_disk_matches_the_old_path_and_its_template_is_reused, fixture) {
  auto a = dir.path / "a.ext4", b = dir.path / "b.ext4", old = dir.path / "old.ext4";
  BOOST_TEST_REQUIRE(make_work_disk(t, "deb", "v1", 64, key, a).has_value());
  auto names = templates("work-");
  BOOST_TEST_REQUIRE(names.size() == 1u);
  auto tmpl = vdir() / names[0];
  auto ino = inode(tmpl);
  BOOST_TEST_REQUIRE(make_work_disk(t, "deb", "v1", 64, key, b).has_value());
  BOOST_TEST(inode(tmpl) == ino);
  BOOST_TEST(same_bytes(a, b)); // both exact copies of the template
  old_work_disk(t.images / "deb" / "v1" / "work-seed.ext4", 64, "ssh-ed25519 AAAAkey1 banger\n", old);

  BOOST_TEST(fs::file_size(a) == fs::file_size(old));
  BOOST_TEST(fs::file_size(a) == 64u << 20);
  for (const auto* f : {"Block count", "Free blocks", "Inode count", "Free inodes"})
    BOOST_TEST(dumpe2fs_field(a, f) == dumpe2fs_field(old, f), f);
  check_fsck(a);
  for (const auto& p : {a, old}) {
    auto img = guestfs::ext4_image::open(p, false);
    BOOST_TEST_REQUIRE(img.has_value());
    auto k = img->read_file("/.ssh/authorized_keys");
    BOOST_TEST_REQUIRE(k.has_value());
    BOOST_TEST(*k == "ssh-ed25519 AAAAkey1 banger\n");
    auto ls = img->list("/.ssh");
    BOOST_TEST_REQUIRE(ls.has_value());
    auto it = std::find_if(ls->begin(), ls->end(), [](const auto& e) { return e.name == "authorized_keys"; });
    BOOST_TEST_REQUIRE((it != ls->end()));
    BOOST_TEST((it->mode & 07777) == 0600u);
    BOOST_TEST(it->uid == 0u);
  }
  // Sparse: the copy allocates about what the template does, far less than 64 MiB.
  struct stat st {};
  BOOST_TEST_REQUIRE(::stat(a.c_str(), &st) == 0);
  BOOST_TEST(st.st_blocks * 512 < (32 << 20));
}

BOOST_FIXTURE_TEST_CASE(disk_sizes_and_keys_get_their_own_templates, fixture) {
  auto out = dir.path / "w.ext4";
  BOOST_TEST_REQUIRE(make_work_disk(t, "deb", "v1", 64, key, out).has_value());
  BOOST_TEST_REQUIRE(make_work_disk(t, "deb", "v1", 128, key, out).has_value());
  BOOST_TEST(fs::file_size(out) == 128u << 20);
  write_key("ssh-ed25519 AAAAkey2 banger\n");
  BOOST_TEST_REQUIRE(make_work_disk(t, "deb", "v1", 64, key, out).has_value());
  {
    auto img = guestfs::ext4_image::open(out, false);
    BOOST_TEST_REQUIRE(img.has_value());
    BOOST_TEST(*img->read_file("/.ssh/authorized_keys") == "ssh-ed25519 AAAAkey2 banger\n");
  }
  BOOST_TEST_REQUIRE(make_work_disk(t, "deb", "v1", 64, {}, out).has_value());
  {
    auto none = guestfs::ext4_image::open(out, false);
    BOOST_TEST_REQUIRE(none.has_value());
    BOOST_TEST(*none->exists("/.ssh/authorized_keys") == false);
  }
  // A disk size at or below the seed's leaves it at the seed's size.
  BOOST_TEST_REQUIRE(make_work_disk(t, "deb", "v1", 8, key, out).has_value());
  BOOST_TEST(fs::file_size(out) == 16u << 20);
  BOOST_TEST(templates("work-").size() == 5u);
}

BOOST_FIXTURE_TEST_CASE(concurrent_preparations_share_one_template, fixture) {
  constexpr int n = 8;
  std::vector<std::thread> threads;
  std::vector<int> ok(n, 0), ok_overlay(n, 0);
  for (int i = 0; i < n; ++i)
    threads.emplace_back([&, i] {
      ok[i] = make_work_disk(t, "deb", "v1", 96, key, dir.path / fmt::format("w{}.ext4", i)).has_value();
      ok_overlay[i] = make_overlay(t, "deb", "v1", dir.path / fmt::format("o{}.qcow2", i)).has_value();
    });
  for (auto& th : threads)
    th.join();
  for (int i = 0; i < n; ++i) {
    BOOST_TEST(ok[i] == 1, "work disk " << i);
    BOOST_TEST(ok_overlay[i] == 1, "overlay " << i);
  }
  BOOST_TEST(templates("work-").size() == 1u);
  BOOST_TEST(templates("overlay").size() == 1u);
  for (const auto& e : fs::directory_iterator(vdir()))
    BOOST_TEST(e.path().extension() != ".tmp", e.path());
  for (int i = 1; i < n; ++i)
    BOOST_TEST(same_bytes(dir.path / "w0.ext4", dir.path / fmt::format("w{}.ext4", i)), i);
}

BOOST_FIXTURE_TEST_CASE(templates_of_removed_image_versions_are_pruned, fixture) {
  fs::create_directories(t.root / "deb" / "v0");
  std::ofstream(t.root / "deb" / "v0" / "overlay.qcow2") << "stale";
  fs::create_directories(t.root / "gone" / "v9");
  BOOST_TEST_REQUIRE(make_overlay(t, "deb", "v1", dir.path / "o.qcow2").has_value());
  BOOST_TEST(!fs::exists(t.root / "deb" / "v0"));
  BOOST_TEST(!fs::exists(t.root / "gone"));
  BOOST_TEST(fs::exists(vdir() / "overlay.qcow2"));
}

BOOST_FIXTURE_TEST_CASE(a_missing_seed_fails_and_leaves_no_template, fixture) {
  fs::remove(t.images / "deb" / "v1" / "work-seed.ext4");
  auto r = make_work_disk(t, "deb", "v1", 64, key, dir.path / "w.ext4");
  BOOST_TEST_REQUIRE(!r.has_value());
  BOOST_TEST(r.err().message.find("work-seed.ext4") != std::string::npos, r.err().message);
  BOOST_TEST(templates("work-").empty());
}

BOOST_AUTO_TEST_SUITE_END()
