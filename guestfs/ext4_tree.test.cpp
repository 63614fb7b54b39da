// Tests of ext4_image's writes by inode (ext4_tree.cpp): trees written, renamed and removed in
// real images, checked with the real debugfs and `e2fsck -fn` (a leaked block or inode, a
// wrong link count or a bad directory shows there).
#include <boost/test/unit_test.hpp>

#include <fmt/format.h>

#include "guestfs/ext4.hpp"
#include "guestfs/ext4_support.test.hpp"

namespace banger::guestfs {

namespace {

using namespace ext4_test;
namespace fs = std::filesystem;

} // namespace

BOOST_AUTO_TEST_SUITE(guestfs_ext4_tree)

BOOST_AUTO_TEST_CASE(a_tree_written_by_inode_reads_back_and_checks_clean) {
  image_fixture f;
  std::string big(300'000, 'x');
  for (std::size_t i = 0; i < big.size(); ++i)
    big[i] = static_cast<char>('a' + i % 26);
  {
    auto img = f.open_rw();
    ok(img.mkdir_p("/root", 0700, 0, 0));
    auto root = ok(img.inode_of("/root"));
    auto ws = ok(img.mkdir_in(root, "ws", 0755, 0, 0, 1'000'000));
    auto src = ok(img.mkdir_in(ws, "src", 0755, 0, 0, 1'000'000));
    auto w = ok(img.create_in(src, "big.bin", 0644, 0, 0));
    ok(w.write(std::string_view(big).substr(0, 100'000)));
    ok(w.write(std::string_view(big).substr(100'000)));
    auto big_ino = ok(w.finish(1'234'567));
    auto e = ok(img.create_in(ws, "run.sh", 0755, 0, 0));
    ok(e.write("#!/bin/sh\n"));
    ok(e.finish(1'234'567));
    auto empty = ok(img.create_in(ws, "empty", 0644, 0, 0));
    ok(empty.finish(1'234'567));
    ok(img.symlink_in(ws, "passwd", "/etc/passwd", 0, 0, 1'234'567));
    // A name with a newline and invalid UTF-8: bytes, as workspaces ship them.
    auto odd = ok(img.create_in(ws, "new\nline\xff", 0644, 0, 0));
    ok(odd.write("odd"));
    ok(odd.finish(1'234'567));

    auto st = ok(img.stat(big_ino));
    BOOST_TEST(st.size == big.size());
    BOOST_TEST(st.mtime == 1'234'567);
    BOOST_TEST((st.type == entry_type::regular));
    BOOST_TEST(st.mode == 0644u);
    refused(img.create_in(ws, "run.sh", 0644, 0, 0), errc::already_exists, "a second run.sh");
    refused(img.mkdir_in(ws, "..", 0755, 0, 0, 0), errc::bad_request, "..");
    refused(img.mkdir_in(ws, "a/b", 0755, 0, 0, 0), errc::bad_request, "a slash");
    refused(img.symlink_in(ws, "l", "", 0, 0, 0), errc::bad_request, "an empty target");
    ok(img.close());
  }
  require_clean(f.img);
  auto img = f.open_ro();
  BOOST_TEST(ok(img.read_file("/root/ws/src/big.bin", 1 << 20)) == big);
  BOOST_TEST(ok(img.read_file("/root/ws/run.sh")) == "#!/bin/sh\n");
  BOOST_TEST(ok(img.read_file("/root/ws/empty")).empty());
  BOOST_TEST(dstat(f.img, "/root/ws/run.sh").mode == 0755u);
  BOOST_TEST(dstat(f.img, "/root/ws/passwd").type == "symlink");
  auto names = ok(img.list("/root/ws"));
  bool odd_seen = false;
  for (const auto& e : names)
    odd_seen = odd_seen || e.name == "new\nline\xff";
  BOOST_TEST(odd_seen);
}

BOOST_AUTO_TEST_CASE(renaming_in_a_directory_swaps_trees_and_never_replaces) {
  image_fixture f;
  {
    auto img = f.open_rw();
    ok(img.mkdir_p("/root", 0700, 0, 0));
    auto root = ok(img.inode_of("/root"));
    auto fresh = ok(img.mkdir_in(root, ".repo.new", 0755, 0, 0, 0));
    auto w = ok(img.create_in(fresh, "f", 0644, 0, 0));
    ok(w.write("new"));
    ok(w.finish(0));
    auto old = ok(img.mkdir_in(root, "repo", 0755, 0, 0, 0));
    auto o = ok(img.create_in(old, "f", 0644, 0, 0));
    ok(o.write("old"));
    ok(o.finish(0));
    refused(img.rename_in(root, ".repo.new", "repo"), errc::already_exists, "onto an existing name");
    refused(img.rename_in(root, "missing", "x"), errc::not_found, "a missing name");
    ok(img.rename_in(root, "repo", ".repo.old"));
    ok(img.rename_in(root, ".repo.new", "repo"));
    ok(img.close());
  }
  require_clean(f.img);
  auto img = f.open_ro();
  BOOST_TEST(ok(img.read_file("/root/repo/f")) == "new");
  BOOST_TEST(ok(img.read_file("/root/.repo.old/f")) == "old");
  BOOST_TEST(!ok(img.exists("/root/.repo.new")));
}

BOOST_AUTO_TEST_CASE(removing_a_tree_frees_its_blocks_and_inodes) {
  image_fixture f;
  std::uint64_t bytes_before = 0, inodes_before = 0;
  {
    auto img = f.open_rw();
    ok(img.mkdir_p("/root/keep", 0700, 0, 0));
    ok(img.write_file("/root/keep/hard", "shared", 0644, 0, 0));
    bytes_before = img.free_bytes();
    inodes_before = img.free_inodes();
    auto root = ok(img.inode_of("/root"));
    auto t = ok(img.mkdir_in(root, "tree", 0755, 0, 0, 0));
    auto cur = t;
    for (int depth = 0; depth < 5; ++depth) {
      for (int i = 0; i < 40; ++i) {
        auto w = ok(img.create_in(cur, "f" + std::to_string(i), 0644, 0, 0));
        ok(w.write(std::string(5000 + i, 'z')));
        ok(w.finish(0));
      }
      ok(img.symlink_in(cur, "fast", "short", 0, 0, 0));
      ok(img.symlink_in(cur, "slow", std::string(200, 't'), 0, 0, 0)); // longer than the inode holds
      cur = ok(img.mkdir_in(cur, "d", 0755, 0, 0, 0));
    }
    BOOST_TEST(img.free_bytes() < bytes_before - 5 * 40 * 5000);
    ok(img.remove_tree_in(root, "tree"));
    ok(img.remove_tree_in(root, "tree")); // gone already: success
    BOOST_TEST(img.free_bytes() == bytes_before);
    BOOST_TEST(img.free_inodes() == inodes_before);
    ok(img.close());
  }
  require_clean(f.img);
  auto img = f.open_ro();
  BOOST_TEST(!ok(img.exists("/root/tree")));
  BOOST_TEST(ok(img.read_file("/root/keep/hard")) == "shared");
}

BOOST_AUTO_TEST_CASE(a_full_image_fails_the_write_with_a_clear_error) {
  image_fixture f; // 32 MiB
  auto img = f.open_rw();
  auto root = ok(img.inode_of("/"));
  auto w = ok(img.create_in(root, "huge", 0644, 0, 0));
  std::string chunk(1 << 20, 'h');
  expected<void> r;
  for (int i = 0; i < 64 && r; ++i)
    r = w.write(chunk);
  BOOST_TEST_REQUIRE(!r.has_value());
  BOOST_TEST((r.err().code == errc::operation_failed));
  BOOST_TEST(r.err().message.find("huge") != std::string::npos, r.err().message);
  ok(img.remove_tree_in(root, "huge"));
  ok(img.close());
  // libext2fs can leave the blocks of the failed chunk marked in use (e2fsck reports bitmap
  // differences, nothing worse): writers check free_bytes() before they start, as the
  // workspace landing does, so that a full image is refused rather than met.
  auto r2 = test::run({tool("e2fsck"), "-fn", f.img.string()});
  BOOST_TEST(r2.out.find("Pass 4") != std::string::npos, r2.out);
  BOOST_TEST(r2.out.find("Inode") == std::string::npos, r2.out); // no inode or directory damage
}

// create_in with a size: the blocks allocated at once and written straight to, in chunks that
// do not line up with blocks; fewer bytes than declared give the rest back, more are refused.
BOOST_AUTO_TEST_CASE(a_file_of_known_size_is_allocated_at_once_and_checks_clean) {
  image_fixture f;
  std::string body(70'001, '\0');
  for (std::size_t i = 0; i < body.size(); ++i)
    body[i] = static_cast<char>('A' + (i * 7) % 53);
  std::uint64_t free_before = 0;
  {
    auto img = f.open_rw();
    auto root = ok(img.inode_of("/"));
    free_before = img.free_bytes();
    auto w = ok(img.create_in(root, "exact", 0640, 0, 0, body.size()));
    BOOST_TEST(img.free_bytes() <= free_before - body.size()); // allocated before any byte came
    for (std::size_t off = 0; off < body.size(); off += 4093)
      ok(w.write(std::string_view(body).substr(off, 4093)));
    auto ino = ok(w.finish(42));
    auto st = ok(img.stat(ino));
    BOOST_TEST(st.size == body.size());
    BOOST_TEST(st.mode == 0640u);

    auto s = ok(img.create_in(root, "short", 0644, 0, 0, 1 << 20));
    ok(s.write(std::string_view(body).substr(0, 5000)));
    ok(s.finish(42));

    auto over = ok(img.create_in(root, "over", 0644, 0, 0, 10));
    ok(over.write("0123456789"));
    refused(over.write("x"), errc::bad_request, "an 11th byte");

    auto zero = ok(img.create_in(root, "zero", 0644, 0, 0, 0));
    ok(zero.finish(42));
    refused(img.create_in(root, "too-big", 0644, 0, 0, 64u << 20), errc::operation_failed, "more than the image has");
    ok(img.remove_tree_in(root, "over"));
    ok(img.close());
  }
  require_clean(f.img);
  auto img = f.open_ro();
  BOOST_TEST(ok(img.read_file("/exact")) == body);
  BOOST_TEST(ok(img.read_file("/short")) == body.substr(0, 5000));
  BOOST_TEST(ok(img.read_file("/zero")).empty());
  BOOST_TEST(!ok(img.exists("/over")));
  BOOST_TEST(!ok(img.exists("/too-big")));
  BOOST_TEST(dstat(f.img, "/short").size == 5000u);
  BOOST_TEST(dstat(f.img, "/short").blockcount == 16u); // two 4 KiB blocks kept of the 256 allocated
}

// A directory this image made knows its names without reading its blocks: a name is taken once
// linked, and free again once renamed away or removed.
BOOST_AUTO_TEST_CASE(names_in_a_made_directory_follow_renames_and_removals) {
  image_fixture f;
  {
    auto img = f.open_rw();
    auto root = ok(img.inode_of("/"));
    auto d = ok(img.mkdir_in(root, "d", 0755, 0, 0, 0));
    for (int i = 0; i < 300; ++i) // several directory blocks
      ok(img.symlink_in(d, fmt::format("link-with-a-longish-name-{:04}", i), "t", 0, 0, 0));
    refused(img.symlink_in(d, "link-with-a-longish-name-0150", "t", 0, 0, 0), errc::already_exists, "a taken name");
    ok(img.rename_in(d, "link-with-a-longish-name-0150", "moved"));
    refused(img.create_in(d, "moved", 0644, 0, 0), errc::already_exists, "the new name");
    ok(img.mkdir_in(d, "link-with-a-longish-name-0150", 0755, 0, 0, 0));
    ok(img.remove_tree_in(d, "link-with-a-longish-name-0150"));
    auto w = ok(img.create_in(d, "link-with-a-longish-name-0150", 0644, 0, 0, 2));
    ok(w.write("ok"));
    ok(w.finish(0));
    ok(img.close());
  }
  require_clean(f.img);
  auto img = f.open_ro();
  BOOST_TEST(ok(img.list("/d")).size() == 301u);
  BOOST_TEST(ok(img.read_file("/d/link-with-a-longish-name-0150")) == "ok");
  BOOST_TEST(dstat(f.img, "/d/moved").type == "symlink");
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace banger::guestfs
