// Tests of .deb reading: packages built by dpkg-deb (xz, zstd and gzip data archives) are
// listed and their kernel members extracted; hostile packages written by hand are refused
// whole and leave no trace beside the destination.
#include <boost/test/unit_test.hpp>

#include <algorithm>

#include "guestfs/deb.hpp"
#include "guestfs/kernel_fixtures.test.hpp"
#include "tests/support/proc.hpp"

namespace banger::guestfs {

namespace {

namespace fs = std::filesystem;
using banger::test::temp_dir;
using fixtures::member;
using fixtures::slurp;
using fixtures::why;
using fixtures::write;
using fixtures::write_deb;

/// A package tree in `dir`/pkg built into `dir`/pkg.deb with dpkg-deb -Z`codec`.
fs::path build_deb(const fs::path& dir, const std::string& codec) {
  auto pkg = dir / "pkg";
  write(pkg / "DEBIAN/control", "Package: linux-image-x\nVersion: 1.0\nArchitecture: amd64\n"
                                "Maintainer: banger tests <t@example.org>\nDescription: test kernel\n");
  write(pkg / "boot/vmlinuz-x", "not really a kernel");
  write(pkg / "boot/config-x", "CONFIG_VIRTIO=m\n");
  write(pkg / "boot/System.map-x", "ffffffff81000000 T _text\n");
  write(pkg / "lib/modules/x/kernel/drivers/virtio/virtio.ko", "virtio module");
  write(pkg / "lib/modules/x/modules.builtin", "kernel/fs/ext4/ext4.ko\n");
  write(pkg / "usr/share/doc/linux-image-x/changelog", "changes");
  auto deb = dir / ("pkg-" + codec + ".deb");
  auto r = banger::test::run({"dpkg-deb", "--root-owner-group", "-Z" + codec, "--build", pkg.string(), deb.string()});
  BOOST_TEST_REQUIRE(r.exit_code == 0, "dpkg-deb failed: " << r.err);
  return deb;
}

/// Nothing but `keep` is left in `dir` (no destination, no partial staging directory).
void require_only(const fs::path& dir, const std::vector<std::string>& keep) {
  for (auto& e : fs::directory_iterator(dir)) {
    auto n = e.path().filename().string();
    BOOST_TEST((std::find(keep.begin(), keep.end(), n) != keep.end()), "left behind: " << n);
  }
}

void require_refused(const std::vector<member>& members, const std::string& needle, std::uint64_t cap = 1 << 20) {
  temp_dir tmp;
  write_deb(tmp.path / "hostile.deb", members);
  extract_options opts{is_kernel_member};
  opts.max_total_bytes = cap;
  auto r = extract_deb(tmp.path / "hostile.deb", tmp.path / "out", opts);
  BOOST_TEST_REQUIRE(!r.has_value());
  BOOST_TEST((r.err().code == errc::bad_request));
  BOOST_TEST(r.err().message.find(needle) != std::string::npos, r.err().message);
  require_only(tmp.path, {"hostile.deb"});
  BOOST_TEST(!fs::exists(tmp.path.parent_path() / "evil"));
}

} // namespace

BOOST_AUTO_TEST_SUITE(deb)

BOOST_AUTO_TEST_CASE(lists_and_extracts_kernel_members_for_every_codec) {
  for (std::string codec : {"xz", "zstd", "gzip"}) {
    BOOST_TEST_CONTEXT("codec " << codec) {
      temp_dir tmp;
      auto deb = build_deb(tmp.path, codec);
      auto members = list_deb(deb);
      BOOST_TEST_REQUIRE(members.has_value(), why(members));
      auto has = [&](std::string p, char type) {
        return std::any_of(members->begin(), members->end(),
                           [&](const deb_member& m) { return m.path == p && m.type == type; });
      };
      BOOST_TEST(has("boot/vmlinuz-x", 'f'));
      BOOST_TEST(has("lib/modules/x/kernel/drivers/virtio", 'd'));
      BOOST_TEST(has("usr/share/doc/linux-image-x/changelog", 'f'));

      auto out = tmp.path / "tree";
      auto r = extract_deb(deb, out, extract_options{is_kernel_member});
      BOOST_TEST_REQUIRE(r.has_value(), why(r));
      BOOST_TEST(slurp(out / "boot/vmlinuz-x") == "not really a kernel");
      BOOST_TEST(slurp(out / "boot/config-x") == "CONFIG_VIRTIO=m\n");
      BOOST_TEST(slurp(out / "lib/modules/x/kernel/drivers/virtio/virtio.ko") == "virtio module");
      BOOST_TEST(!fs::exists(out / "boot/System.map-x"));
      BOOST_TEST(!fs::exists(out / "usr"));
      BOOST_TEST(r->files.size() == 4u);
      BOOST_TEST(r->total_bytes == 19u + 16u + 13u + 23u);
      require_only(tmp.path, {"pkg", "pkg-" + codec + ".deb", "tree"});
    }
  }
}

BOOST_AUTO_TEST_CASE(existing_destination_is_refused) {
  temp_dir tmp;
  auto deb = build_deb(tmp.path, "xz");
  fs::create_directory(tmp.path / "tree");
  auto r = extract_deb(deb, tmp.path / "tree", extract_options{is_kernel_member});
  BOOST_TEST_REQUIRE(!r.has_value());
  BOOST_TEST((r.err().code == errc::already_exists));
  BOOST_TEST(fs::is_empty(tmp.path / "tree"));
}

BOOST_AUTO_TEST_CASE(not_a_package_fails_cleanly) {
  temp_dir tmp;
  write(tmp.path / "junk.deb", std::string(5000, 'j'));
  auto r = extract_deb(tmp.path / "junk.deb", tmp.path / "out", extract_options{is_kernel_member});
  BOOST_TEST_REQUIRE(!r.has_value());
  BOOST_TEST((r.err().code == errc::bad_request));
  require_only(tmp.path, {"junk.deb"});
  BOOST_TEST(!list_deb(tmp.path / "missing.deb").has_value());
}

BOOST_AUTO_TEST_CASE(parent_directory_escape_is_refused) {
  require_refused({{"./boot/vmlinuz-x", 'f', "k", {}}, {"../evil", 'f', "pwned", {}}}, "\"..\"");
  // Even when the member would not be selected: the package is hostile.
  require_refused({{"lib/modules/x/../../../evil", 'f', "pwned", {}}}, "\"..\"");
}

BOOST_AUTO_TEST_CASE(absolute_path_is_refused) { require_refused({{"/tmp/evil", 'f', "pwned", {}}}, "absolute"); }

BOOST_AUTO_TEST_CASE(oversized_member_is_refused) {
  require_refused(
    {{"boot/config-x", 'f', std::string(600, 'c'), {}}, {"boot/vmlinuz-x", 'f', std::string(600, 'k'), {}}}, "byte cap",
    1000);
}

BOOST_AUTO_TEST_CASE(symlinks_leaving_the_tree_are_refused) {
  require_refused({{"lib/modules/x/build", 'l', {}, "/usr/src/linux-headers-x"}}, "leaves the package tree");
  require_refused({{"lib/modules/x/up", 'l', {}, "../../../.."}}, "leaves the package tree");
  require_refused({{"lib/modules/x/dot", 'l', {}, "."}, {"lib/modules/x/sneaky", 'l', {}, "dot/../../../.."}},
                  "leaves the package tree");
}

BOOST_AUTO_TEST_CASE(writing_through_a_symlink_is_refused) {
  require_refused({{"lib/modules/x/kernel/", 'd', {}, {}},
                   {"lib/modules/x/link", 'l', {}, "kernel"},
                   {"lib/modules/x/link/a.ko", 'f', "a", {}}},
                  "not a directory");
}

BOOST_AUTO_TEST_CASE(device_nodes_and_hard_links_are_refused) {
  require_refused({{"lib/modules/x/mem", 'c', {}, {}}}, "device node");
  require_refused({{"boot/vmlinuz-x", 'f', "k", {}}, {"boot/config-x", 'h', {}, "boot/vmlinuz-x"}}, "hard link");
}

BOOST_AUTO_TEST_CASE(duplicate_members_are_refused) {
  require_refused({{"boot/vmlinuz-x", 'f', "k", {}}, {"boot/vmlinuz-x", 'f', "other", {}}}, "cannot be created");
}

BOOST_AUTO_TEST_CASE(symlinks_inside_the_tree_are_kept) {
  temp_dir tmp;
  write_deb(tmp.path / "ok.deb", {{"lib/modules/x/kernel/a.ko", 'f', "a", {}},
                                  {"lib/modules/x/kernel/alias.ko", 'l', {}, "a.ko"},
                                  {"lib/modules/x/kernel/sub/up.ko", 'l', {}, "../a.ko"},
                                  {"usr/share/evil-but-unselected", 'l', {}, "/etc/passwd"}});
  auto r = extract_deb(tmp.path / "ok.deb", tmp.path / "out", extract_options{is_kernel_member});
  BOOST_TEST_REQUIRE(r.has_value(), why(r));
  BOOST_TEST(fs::read_symlink(tmp.path / "out/lib/modules/x/kernel/alias.ko") == "a.ko");
  BOOST_TEST(slurp(tmp.path / "out/lib/modules/x/kernel/sub/up.ko") == "a");
  BOOST_TEST(!fs::exists(tmp.path / "out/usr"));
}

BOOST_AUTO_TEST_CASE(member_names_are_normalised) {
  BOOST_TEST(*normalise_member_name("./boot//vmlinuz-x") == "boot/vmlinuz-x");
  BOOST_TEST(*normalise_member_name("./lib/modules/") == "lib/modules");
  BOOST_TEST(*normalise_member_name("./") == "");
  BOOST_TEST(!normalise_member_name("/boot").has_value());
  BOOST_TEST(!normalise_member_name("a/../b").has_value());
  BOOST_TEST(is_kernel_member("usr/lib/modules/x/kernel/a.ko"));
  BOOST_TEST(!is_kernel_member("boot/System.map-x"));
  BOOST_TEST(!is_kernel_member("lib/modulesx"));
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace banger::guestfs
