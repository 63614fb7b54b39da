// Tests of module resolution (modules.dep and .modinfo trees, built-ins, missing modules,
// cycles) and of the initramfs archive, listed back with libarchive; the /init script is
// syntax-checked and its ip= netmask helper run with busybox.
#include <boost/test/unit_test.hpp>

#include <map>

#include "guestfs/initramfs.hpp"
#include "guestfs/kernel_fixtures.test.hpp"
#include "tests/support/proc.hpp"

namespace banger::guestfs {

namespace {

namespace fs = std::filesystem;
using banger::test::temp_dir;
using fixtures::why;
using fixtures::write;

std::vector<std::string> names(const std::vector<kernel_module>& ms) {
  std::vector<std::string> out;
  for (auto& m : ms)
    out.push_back(m.name);
  return out;
}

/// A modules.dep tree: a -> b -> c (modules.dep lists each closure), plus x-y and ext4 built in.
fs::path dep_tree(const fs::path& root) {
  auto dir = root / "lib/modules/x";
  write(dir / "kernel/a.ko", "module a");
  write(dir / "kernel/sub/b.ko", "module b");
  write(dir / "kernel/c.ko", "module c");
  write(dir / "kernel/x-y.ko", "module x_y");
  write(dir / "modules.dep", "kernel/a.ko: kernel/sub/b.ko kernel/c.ko\n"
                             "kernel/sub/b.ko: kernel/c.ko\n"
                             "kernel/c.ko:\n"
                             "kernel/x-y.ko: kernel/c.ko\n"
                             "kernel/needy.ko: kernel/gone.ko\n");
  write(dir / "modules.builtin", "kernel/fs/ext4/ext4.ko\n");
  return dir;
}

struct cpio_entry {
  char type;
  std::string data;
  std::string link;
};

/// The initramfs read back: name -> entry, plus the names in archive order.
std::map<std::string, cpio_entry> read_cpio(const fs::path& p, std::vector<std::string>& order) {
  std::map<std::string, cpio_entry> out;
  archive* a = archive_read_new();
  archive_read_support_filter_all(a);
  archive_read_support_format_all(a);
  BOOST_TEST_REQUIRE(archive_read_open_filename(a, p.c_str(), 65536) == ARCHIVE_OK);
  archive_entry* e = nullptr;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    BOOST_TEST(archive_format(a) == ARCHIVE_FORMAT_CPIO_SVR4_NOCRC);
    cpio_entry ce{'?', {}, {}};
    switch (archive_entry_filetype(e)) {
    case AE_IFREG: ce.type = 'f'; break;
    case AE_IFDIR: ce.type = 'd'; break;
    case AE_IFLNK: ce.type = 'l'; break;
    case AE_IFCHR: ce.type = 'c'; break;
    }
    if (ce.type == 'l')
      ce.link = archive_entry_symlink(e);
    if (ce.type == 'c')
      ce.data = std::to_string(archive_entry_rdevmajor(e)) + ":" + std::to_string(archive_entry_rdevminor(e));
    std::string buf(65536, '\0');
    la_ssize_t n;
    while ((n = archive_read_data(a, buf.data(), buf.size())) > 0)
      if (ce.type == 'f')
        ce.data.append(buf.data(), static_cast<std::size_t>(n));
    order.push_back(archive_entry_pathname(e));
    out[archive_entry_pathname(e)] = ce;
  }
  BOOST_TEST(archive_filter_code(a, 0) == ARCHIVE_FILTER_GZIP);
  archive_read_free(a);
  return out;
}

} // namespace

BOOST_AUTO_TEST_SUITE(initramfs)

BOOST_AUTO_TEST_CASE(modules_dep_orders_dependencies_first) {
  temp_dir tmp;
  auto dir = dep_tree(tmp.path);
  auto r = resolve_modules(dir, {"a"});
  BOOST_TEST_REQUIRE(r.has_value(), why(r));
  BOOST_TEST(names(*r) == (std::vector<std::string>{"c", "b", "a"}), boost::test_tools::per_element());
  BOOST_TEST((*r)[1].file == dir / "kernel/sub/b.ko");

  // Each module once, built-ins omitted, '-' and '_' equivalent.
  r = resolve_modules(dir, {"ext4", "b", "x-y", "a", "c"});
  BOOST_TEST_REQUIRE(r.has_value(), why(r));
  BOOST_TEST(names(*r) == (std::vector<std::string>{"c", "b", "x_y", "a"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(missing_modules_are_named) {
  temp_dir tmp;
  auto dir = dep_tree(tmp.path);
  auto r = resolve_modules(dir, {"a", "virtio_blk"});
  BOOST_TEST_REQUIRE(!r.has_value());
  BOOST_TEST((r.err().code == errc::not_found));
  BOOST_TEST(r.err().message.find("virtio_blk") != std::string::npos, r.err().message);

  r = resolve_modules(dir, {"needy"});
  BOOST_TEST_REQUIRE(!r.has_value());
  BOOST_TEST(r.err().message.find("gone (needed by needy)") != std::string::npos, r.err().message);
}

BOOST_AUTO_TEST_CASE(modules_dep_naming_files_outside_is_refused) {
  for (std::string line : {"/etc/virtio.ko:\n", "../../../etc/virtio.ko:\n"}) {
    temp_dir tmp;
    write(tmp.path / "modules.dep", line);
    auto r = resolve_modules(tmp.path, {"virtio"});
    BOOST_TEST_REQUIRE(!r.has_value());
    BOOST_TEST(r.err().message.find("outside the modules directory") != std::string::npos, r.err().message);
  }
}

BOOST_AUTO_TEST_CASE(modinfo_fallback_without_modules_dep) {
  temp_dir tmp;
  auto dir = tmp.path / "usr/lib/modules/x";
  write(dir / "kernel/drivers/a.ko", fixtures::module_elf("a", "b,c-d"));
  write(dir / "kernel/b.ko.xz", fixtures::compress(compression::xz, fixtures::module_elf("b", "c_d")));
  write(dir / "kernel/c-d.ko.zst", fixtures::compress(compression::zstd, fixtures::module_elf("c_d", "")));
  write(dir / "kernel/loop1.ko", fixtures::module_elf("loop1", "loop2"));
  write(dir / "kernel/loop2.ko", fixtures::module_elf("loop2", "loop1"));
  write(dir / "kernel/orphan.ko", fixtures::module_elf("orphan", "nowhere"));
  auto found = find_modules_dir(tmp.path, "x");
  BOOST_TEST_REQUIRE(found.has_value(), why(found));
  BOOST_TEST(*found == dir);
  BOOST_TEST(!find_modules_dir(tmp.path, "y").has_value());

  auto r = resolve_modules(dir, {"a"});
  BOOST_TEST_REQUIRE(r.has_value(), why(r));
  BOOST_TEST(names(*r) == (std::vector<std::string>{"c_d", "b", "a"}), boost::test_tools::per_element());

  r = resolve_modules(dir, {"loop1"});
  BOOST_TEST_REQUIRE(!r.has_value());
  BOOST_TEST((r.err().code == errc::bad_request));
  BOOST_TEST(r.err().message.find("cycle") != std::string::npos, r.err().message);

  r = resolve_modules(dir, {"orphan"});
  BOOST_TEST_REQUIRE(!r.has_value());
  BOOST_TEST(r.err().message.find("nowhere (needed by orphan)") != std::string::npos, r.err().message);
}

BOOST_AUTO_TEST_CASE(initramfs_holds_init_busybox_and_modules_in_order) {
  temp_dir tmp;
  auto dir = tmp.path / "lib/modules/x";
  write(dir / "kernel/c.ko.xz", fixtures::compress(compression::xz, "module c, once compressed"));
  write(dir / "kernel/b.ko", "module b");
  write(dir / "kernel/a.ko.zst", fixtures::compress(compression::zstd, "module a"));
  std::vector<kernel_module> mods{
    {"c", dir / "kernel/c.ko.xz"}, {"b", dir / "kernel/b.ko"}, {"a", dir / "kernel/a.ko.zst"}};
  auto out = tmp.path / "initrd.img";
  auto r = build_initramfs(initramfs_spec{"/usr/bin/busybox", mods}, out);
  BOOST_TEST_REQUIRE(r.has_value(), why(r));
  BOOST_TEST(!fs::exists(tmp.path / "initrd.img.tmp"));

  std::vector<std::string> order;
  auto cpio = read_cpio(out, order);
  BOOST_TEST_REQUIRE(cpio.count("init") == 1u);
  BOOST_TEST(cpio["init"].type == 'f');
  BOOST_TEST(cpio["init"].data.find("modules=\"c b a\"") != std::string::npos);
  BOOST_TEST(cpio["bin/busybox"].data == fixtures::slurp("/usr/bin/busybox"));
  BOOST_TEST(cpio["bin/sh"].link == "busybox");
  BOOST_TEST(cpio["bin/switch_root"].link == "busybox");
  BOOST_TEST(cpio["dev/console"].type == 'c');
  BOOST_TEST(cpio["dev/console"].data == "5:1");
  BOOST_TEST(cpio["newroot"].type == 'd');
  BOOST_TEST(cpio["lib/modules/c.ko"].data == "module c, once compressed");
  BOOST_TEST(cpio["lib/modules/a.ko"].data == "module a");
  auto pos = [&](const std::string& n) { return std::find(order.begin(), order.end(), n) - order.begin(); };
  BOOST_TEST(pos("lib/modules/c.ko") < pos("lib/modules/b.ko"));
  BOOST_TEST(pos("lib/modules/b.ko") < pos("lib/modules/a.ko"));

  // Built twice, byte for byte the same (mtime 0, no gzip timestamp).
  auto again = tmp.path / "again.img";
  BOOST_TEST_REQUIRE(build_initramfs(initramfs_spec{"/usr/bin/busybox", mods}, again).has_value());
  BOOST_TEST((fixtures::slurp(out) == fixtures::slurp(again)));

  // cpio(1) agrees on the listing.
  auto listing = banger::test::run({"sh", "-c", "gzip -dc '" + out.string() + "' | cpio -t --quiet"});
  BOOST_TEST_REQUIRE(listing.exit_code == 0, listing.err);
  BOOST_TEST(listing.out.find("lib/modules/b.ko\n") != std::string::npos, listing.out);
}

BOOST_AUTO_TEST_CASE(missing_inputs_are_named) {
  temp_dir tmp;
  auto r = build_initramfs(initramfs_spec{tmp.path / "no-busybox", {}}, tmp.path / "i.img");
  BOOST_TEST_REQUIRE(!r.has_value());
  BOOST_TEST(r.err().message.find("busybox-static") != std::string::npos, r.err().message);
  r = build_initramfs(initramfs_spec{"/usr/bin/busybox", {{"gone", tmp.path / "gone.ko"}}}, tmp.path / "i.img");
  BOOST_TEST_REQUIRE(!r.has_value());
  BOOST_TEST(r.err().message.find("gone.ko") != std::string::npos, r.err().message);
  BOOST_TEST(fs::is_empty(tmp.path));
}

BOOST_AUTO_TEST_CASE(init_script_parses_and_converts_netmasks) {
  temp_dir tmp;
  auto script = init_script({"virtio_ring", "virtio"});
  write(tmp.path / "init", script);
  auto syntax = banger::test::run({"/usr/bin/busybox", "sh", "-n", (tmp.path / "init").string()});
  BOOST_TEST(syntax.exit_code == 0, syntax.err);

  // Run just the prefix_len function out of the script.
  auto begin = script.find("prefix_len() {");
  auto end = script.find("\n}\n", begin);
  BOOST_TEST_REQUIRE((begin != std::string::npos && end != std::string::npos));
  auto fn = script.substr(begin, end + 3 - begin);
  for (auto [mask, want] : std::vector<std::pair<std::string, std::string>>{
         {"255.255.255.0", "24\n"}, {"255.255.240.0", "20\n"}, {"255.255.255.255", "32\n"}, {"0.0.0.0", "0\n"}}) {
    auto r = banger::test::run({"/usr/bin/busybox", "sh", "-c", fn + "prefix_len " + mask});
    BOOST_TEST(r.exit_code == 0);
    BOOST_TEST(r.out == want, mask);
  }
  auto r = banger::test::run({"/usr/bin/busybox", "sh", "-c", fn + "prefix_len 255.0.255.x"});
  BOOST_TEST(r.exit_code != 0);
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace banger::guestfs
