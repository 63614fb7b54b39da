// Tests of guestfs/ext4: real images made by mkfs.ext4, edited in-process, then checked from the
// outside with the real `debugfs` (stat, cat) and `e2fsck -fn` (a bad inode, bitmap or directory
// block shows there). Refused calls are checked to leave the image file byte-for-byte unchanged.
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <optional>
#include <random>
#include <regex>

#include "guestfs/ext4.hpp"
#include "guestfs/ext4_support.test.hpp"
#include "tests/support/proc.hpp"

namespace banger::guestfs {

namespace {

using namespace ext4_test;
namespace fs = std::filesystem;
using banger::test::temp_dir;
using namespace std::string_literals;

const std::vector<std::string> bad_paths{
  "",
  "relative/x",
  "../x",
  "/a/../b",
  "/a/./b",
  "/..",
  "/.",
  "/a//b",
  "/a/",
  "/a\nb",
  std::string("/a\0b", 4),
  "/a\x7f"
  "b",
  "/a\tb",
  "/a\x1b[0m",
  "/" + std::string(256, 'n'),
  std::string(1, '/') + std::string(4095, 'x'),
};

} // namespace

BOOST_AUTO_TEST_SUITE(guestfs_ext4)

BOOST_AUTO_TEST_CASE(validate_accepts_plain_absolute_paths) {
  for (std::string p : {"/", "/etc", "/etc/app/config.toml", "/a b/ü-ß", "/.hidden", "/..x", "/x..", "/a.b/c"})
    BOOST_TEST(validate_guest_path(p).has_value(), p);
  BOOST_TEST(validate_guest_path("/" + std::string(255, 'n')).has_value());
}

BOOST_AUTO_TEST_CASE(validate_refuses_traversal_nul_control_and_overlong) {
  for (const auto& p : bad_paths) {
    auto r = validate_guest_path(p);
    refused(r, errc::bad_request, "validate " + std::to_string(p.size()) + " bytes");
  }
  // The message shows the offending bytes escaped, never raw.
  auto r = validate_guest_path("/a\nb");
  BOOST_TEST(r.err().message.find("\\x0a") != std::string::npos, r.err().message);
}

BOOST_FIXTURE_TEST_CASE(written_files_have_mode_owner_and_content_seen_by_debugfs, image_fixture) {
  {
    auto im = open_rw();
    ok(im.mkdir_p("/etc/app", 0750, 1000, 1001));
    ok(im.write_file("/etc/app/config", "hello world\n", 0640, 1000, 1001));
    ok(im.write_file("/etc/app/suid", "#!/bin/sh\n", 04755, 0, 0));
    ok(im.write_file("/etc/app/empty", "", 0600, 100000, 200000)); // uids beyond 16 bits
    ok(im.close());
  }
  auto d = dstat(img, "/etc");
  BOOST_TEST(d.type == "directory");
  BOOST_TEST(d.mode == 0750u);
  BOOST_TEST(d.uid == 1000u);
  BOOST_TEST(d.gid == 1001u);
  d = dstat(img, "/etc/app");
  BOOST_TEST(d.type == "directory");
  BOOST_TEST(d.mode == 0750u);
  auto f = dstat(img, "/etc/app/config");
  BOOST_TEST(f.type == "regular");
  BOOST_TEST(f.mode == 0640u);
  BOOST_TEST(f.uid == 1000u);
  BOOST_TEST(f.gid == 1001u);
  BOOST_TEST(f.size == 12u);
  BOOST_TEST(debugfs(img, "cat /etc/app/config") == "hello world\n");
  BOOST_TEST(dstat(img, "/etc/app/suid").mode == 04755u);
  auto e = dstat(img, "/etc/app/empty");
  BOOST_TEST(e.size == 0u);
  BOOST_TEST(e.uid == 100000u);
  BOOST_TEST(e.gid == 200000u);
  require_clean(img);

  auto im = open_ro();
  BOOST_TEST(ok(im.read_file("/etc/app/config")) == "hello world\n");
  BOOST_TEST(ok(im.read_file("/etc/app/empty")).empty());
  BOOST_TEST(ok(im.exists("/etc/app/config")));
}

BOOST_FIXTURE_TEST_CASE(mkdir_p_is_idempotent_and_leaves_existing_directories_alone, image_fixture) {
  {
    auto im = open_rw();
    ok(im.mkdir_p("/a", 0700, 1, 1));
    ok(im.mkdir_p("/a/b/c", 0755, 2, 2));
    ok(im.mkdir_p("/a/b/c", 0711, 3, 3));
    ok(im.mkdir_p("/", 0700, 9, 9));
    ok(im.close());
  }
  BOOST_TEST(dstat(img, "/a").mode == 0700u);
  BOOST_TEST(dstat(img, "/a").uid == 1u);
  BOOST_TEST(dstat(img, "/a/b/c").mode == 0755u);
  BOOST_TEST(dstat(img, "/a/b/c").uid == 2u);
  BOOST_TEST(dstat(img, "/").uid == 0u);
  require_clean(img);
}

BOOST_FIXTURE_TEST_CASE(overwrite_with_shorter_content_frees_the_old_blocks, image_fixture) {
  {
    auto im = open_rw();
    ok(im.write_file("/f", std::string(20000, 'x'), 0644, 0, 0));
    ok(im.close());
  }
  BOOST_TEST(dstat(img, "/f").size == 20000u);
  BOOST_TEST(dstat(img, "/f").blockcount == 40u); // 5 blocks of 4 KiB, in 512-byte units
  {
    auto im = open_rw();
    ok(im.write_file("/f", "short", 0600, 7, 8));
    ok(im.close());
  }
  auto s = dstat(img, "/f");
  BOOST_TEST(s.size == 5u);
  BOOST_TEST(s.blockcount == 8u);
  BOOST_TEST(s.mode == 0600u);
  BOOST_TEST(s.uid == 7u);
  BOOST_TEST(s.gid == 8u);
  BOOST_TEST(debugfs(img, "cat /f") == "short");
  require_clean(img);
}

BOOST_FIXTURE_TEST_CASE(chmod_chown_and_set_root, image_fixture) {
  {
    auto im = open_rw();
    ok(im.mkdir_p("/d", 0755, 0, 0));
    ok(im.write_file("/d/f", "data", 0644, 0, 0));
    ok(im.chmod("/d/f", 0400));
    ok(im.chown("/d/f", 42, 43));
    ok(im.chmod("/d", 01777));
    ok(im.set_root(0700, 5, 6));
    refused(im.chmod("/d/f", 010644), errc::bad_request, "chmod with file-type bits");
    refused(im.chmod("/missing", 0644), errc::not_found, "chmod of a missing file");
    ok(im.close());
  }
  auto f = dstat(img, "/d/f");
  BOOST_TEST(f.type == "regular");
  BOOST_TEST(f.mode == 0400u);
  BOOST_TEST(f.uid == 42u);
  BOOST_TEST(f.gid == 43u);
  auto d = dstat(img, "/d");
  BOOST_TEST(d.type == "directory");
  BOOST_TEST(d.mode == 01777u);
  auto r = dstat(img, "/");
  BOOST_TEST(r.type == "directory");
  BOOST_TEST(r.mode == 0700u);
  BOOST_TEST(r.uid == 5u);
  BOOST_TEST(r.gid == 6u);
  require_clean(img);
}

BOOST_FIXTURE_TEST_CASE(list_reports_entries_sorted_with_metadata, image_fixture) {
  auto im = open_rw();
  ok(im.mkdir_p("/srv/sub", 0711, 3, 4));
  ok(im.write_file("/srv/b.txt", "12345", 0640, 10, 20));
  ok(im.symlink("/srv/a-link", "b.txt", 11, 21));
  auto entries = ok(im.list("/srv"));
  BOOST_TEST_REQUIRE(entries.size() == 3u);
  BOOST_TEST(entries[0].name == "a-link");
  BOOST_TEST((entries[0].type == entry_type::symlink));
  BOOST_TEST(entries[0].size == 5u);
  BOOST_TEST(entries[0].uid == 11u);
  BOOST_TEST(entries[1].name == "b.txt");
  BOOST_TEST((entries[1].type == entry_type::regular));
  BOOST_TEST(entries[1].mode == 0640u);
  BOOST_TEST(entries[1].uid == 10u);
  BOOST_TEST(entries[1].gid == 20u);
  BOOST_TEST(entries[1].size == 5u);
  BOOST_TEST(entries[2].name == "sub");
  BOOST_TEST((entries[2].type == entry_type::directory));
  BOOST_TEST(entries[2].mode == 0711u);
  auto root = ok(im.list("/"));
  BOOST_TEST_REQUIRE(root.size() == 2u);
  BOOST_TEST(root[0].name == "lost+found");
  BOOST_TEST(root[1].name == "srv");
  refused(im.list("/srv/b.txt"), errc::conflict, "list of a file");
  refused(im.list("/nope"), errc::not_found, "list of a missing directory");
  ok(im.close());
  require_clean(img);
}

BOOST_FIXTURE_TEST_CASE(exists_is_false_for_missing_and_an_error_for_invalid_paths, image_fixture) {
  auto im = open_rw();
  ok(im.write_file("/file", "x", 0644, 0, 0));
  ok(im.symlink("/dangling", "/nowhere", 0, 0));
  BOOST_TEST(ok(im.exists("/")));
  BOOST_TEST(ok(im.exists("/file")));
  BOOST_TEST(ok(im.exists("/dangling")));
  BOOST_TEST(!ok(im.exists("/missing")));
  BOOST_TEST(!ok(im.exists("/missing/deeper")));
  BOOST_TEST(!ok(im.exists("/file/under-a-file")));
  refused(im.exists("/a/../file"), errc::bad_request, "exists with ..");
  refused(im.read_file("/dangling"), errc::not_found, "read through a dangling symlink");
}

BOOST_FIXTURE_TEST_CASE(refused_paths_leave_the_image_unchanged, image_fixture) {
  {
    auto im = open_rw();
    ok(im.mkdir_p("/a", 0755, 0, 0));
    ok(im.write_file("/a/b", "keep", 0644, 0, 0));
    ok(im.close());
  }
  const std::string before = slurp(img);
  {
    auto im = open_rw();
    for (const auto& p : bad_paths) {
      auto what = "path of " + std::to_string(p.size()) + " bytes";
      refused(im.mkdir_p(p, 0755, 0, 0), errc::bad_request, "mkdir_p " + what);
      refused(im.write_file(p, "evil", 0644, 0, 0), errc::bad_request, "write_file " + what);
      refused(im.symlink(p, "/etc/shadow", 0, 0), errc::bad_request, "symlink " + what);
      refused(im.chmod(p, 0777), errc::bad_request, "chmod " + what);
      refused(im.chown(p, 1, 1), errc::bad_request, "chown " + what);
      refused(im.chown_tree(p, 1, 1), errc::bad_request, "chown_tree " + what);
      refused(im.read_file(p), errc::bad_request, "read_file " + what);
      refused(im.exists(p), errc::bad_request, "exists " + what);
      refused(im.list(p), errc::bad_request, "list " + what);
    }
    refused(im.symlink("/a/l", "x\ny", 0, 0), errc::bad_request, "symlink target with a newline");
    refused(im.symlink("/a/l", std::string("x\0y", 3), 0, 0), errc::bad_request, "symlink target with NUL");
    refused(im.symlink("/a/l", std::string(4096, 't'), 0, 0), errc::bad_request, "symlink target of a block");
    refused(im.write_file("/a/c", "x", 0100644, 0, 0), errc::bad_request, "mode with type bits");
    refused(im.set_root(070000, 0, 0), errc::bad_request, "set_root with type bits");
    ok(im.close());
  }
  BOOST_TEST((slurp(img) == before), "a refused call changed the image");
  require_clean(img);
}

BOOST_FIXTURE_TEST_CASE(missing_parents_and_wrong_types_are_named, image_fixture) {
  auto im = open_rw();
  ok(im.write_file("/file", "x", 0644, 0, 0));
  ok(im.mkdir_p("/dir", 0755, 0, 0));
  auto r = im.write_file("/nope/deeper/x", "x", 0644, 0, 0);
  refused(r, errc::not_found, "write under a missing parent");
  BOOST_TEST(r.err().message.find("\"/nope\"") != std::string::npos, r.err().message);
  BOOST_TEST(r.err().message.find(img.string()) != std::string::npos, r.err().message);
  refused(im.write_file("/file/x", "x", 0644, 0, 0), errc::conflict, "write under a file");
  refused(im.write_file("/dir", "x", 0644, 0, 0), errc::conflict, "write over a directory");
  refused(im.write_file("/", "x", 0644, 0, 0), errc::conflict, "write over the root");
  refused(im.mkdir_p("/file/sub", 0755, 0, 0), errc::conflict, "mkdir_p through a file");
  refused(im.symlink("/file", "x", 0, 0), errc::already_exists, "symlink over a file");
  refused(im.read_file("/dir"), errc::conflict, "read of a directory");
  refused(im.read_file("/missing"), errc::not_found, "read of a missing file");
  ok(im.close());
  require_clean(img);
}

BOOST_FIXTURE_TEST_CASE(symlinks_are_created_and_followed_inside_the_image, image_fixture) {
  const std::string long_target = "/usr/lib/" + std::string(200, 'q'); // a slow symlink (own block)
  {
    auto im = open_rw();
    ok(im.mkdir_p("/usr/bin", 0755, 0, 0));
    ok(im.symlink("/bin", "usr/bin", 0, 0));
    ok(im.write_file("/bin/tool", "tool", 0755, 0, 0)); // through the symlink
    ok(im.symlink("/long", long_target, 3, 4));
    refused(im.write_file("/bin", "x", 0644, 0, 0), errc::conflict, "write over a symlink");
    BOOST_TEST(ok(im.read_file("/bin/tool")) == "tool");
    BOOST_TEST(ok(im.list("/bin")).size() == 1u);
    ok(im.close());
  }
  BOOST_TEST(dstat(img, "/usr/bin/tool").size == 4u);
  auto l = dstat(img, "/bin");
  BOOST_TEST(l.type == "symlink");
  BOOST_TEST(l.size == 7u);
  auto ll = dstat(img, "/long");
  BOOST_TEST(ll.type == "symlink");
  BOOST_TEST(ll.size == long_target.size());
  BOOST_TEST(ll.uid == 3u);
  BOOST_TEST(ll.raw.find("Fast link dest") == std::string::npos);
  require_clean(img);
}

BOOST_FIXTURE_TEST_CASE(large_file_round_trip, image_fixture) {
  std::string data(3u << 20, '\0');
  std::mt19937 gen(42);
  for (auto& c : data)
    c = static_cast<char>(gen());
  {
    auto im = open_rw();
    ok(im.mkdir_p("/big", 0755, 0, 0));
    ok(im.write_file("/big/blob", data, 0644, 1, 2));
    ok(im.close());
  }
  BOOST_TEST(dstat(img, "/big/blob").size == data.size());
  BOOST_TEST((debugfs(img, "cat /big/blob") == data));
  auto im = open_ro();
  BOOST_TEST((ok(im.read_file("/big/blob")) == data));
  refused(im.read_file("/big/blob", 1u << 20), errc::bad_request, "read over max_bytes");
  require_clean(img);
}

BOOST_FIXTURE_TEST_CASE(many_entries_grow_the_directory, image_fixture) {
  {
    auto im = open_rw();
    ok(im.mkdir_p("/many", 0755, 0, 0));
    for (int i = 0; i < 300; ++i)
      ok(im.write_file("/many/" + std::string(100, 'f') + std::to_string(i), std::to_string(i), 0644, 0, 0));
    for (int i = 0; i < 50; ++i)
      ok(im.mkdir_p("/many/dir-" + std::string(150, 'd') + std::to_string(i), 0755, 0, 0));
    BOOST_TEST(ok(im.list("/many")).size() == 350u);
    ok(im.close());
  }
  BOOST_TEST(dstat(img, "/many").size > 4096u); // more than one block
  BOOST_TEST(debugfs(img, "cat /many/" + std::string(100, 'f') + "299") == "299");
  require_clean(img);
}

BOOST_FIXTURE_TEST_CASE(read_only_open_refuses_writes, image_fixture) {
  const std::string before = slurp(img);
  {
    auto im = open_ro();
    BOOST_TEST(!im.writable());
    refused(im.write_file("/x", "x", 0644, 0, 0), errc::bad_request, "write_file read-only");
    refused(im.mkdir_p("/d", 0755, 0, 0), errc::bad_request, "mkdir_p read-only");
    refused(im.symlink("/l", "x", 0, 0), errc::bad_request, "symlink read-only");
    refused(im.chmod("/", 0700), errc::bad_request, "chmod read-only");
    refused(im.chown("/", 1, 1), errc::bad_request, "chown read-only");
    refused(im.set_root(0700, 1, 1), errc::bad_request, "set_root read-only");
    BOOST_TEST(ok(im.exists("/lost+found")));
    // A reader holds a shared lock: a writer is refused, another reader is not.
    refused(ext4_image::open(img, true), errc::conflict, "writable open beside a reader");
    ok(ext4_image::open(img, false));
    ok(im.close());
  }
  BOOST_TEST((slurp(img) == before), "a read-only open changed the image");
  auto w = open_rw();
  refused(ext4_image::open(img, false), errc::conflict, "open beside a writer");
}

BOOST_FIXTURE_TEST_CASE(fixed_time_stamps_new_inodes, image_fixture) {
  {
    auto im = open_rw(1700000000);
    ok(im.write_file("/t", "x", 0644, 0, 0));
    ok(im.close());
  }
  auto s = dstat(img, "/t");
  BOOST_TEST(s.raw.find("mtime: 0x6553f100") != std::string::npos, s.raw);
  BOOST_TEST(s.raw.find("ctime: 0x6553f100") != std::string::npos, s.raw);
}

BOOST_AUTO_TEST_CASE(create_image_from_a_tree_then_chown_in_process) {
  temp_dir dir{"banger-ext4"};
  auto src = dir.path / "src";
  fs::create_directories(src / "sub");
  {
    std::ofstream(src / "a.txt") << "alpha";
    std::ofstream(src / "sub" / "b.sh") << "#!/bin/sh\necho b\n";
  }
  fs::permissions(src / "a.txt", fs::perms(0640));
  fs::permissions(src / "sub" / "b.sh", fs::perms(0755));
  fs::create_symlink("../a.txt", src / "sub" / "link");

  auto img = dir.path / "tree.ext4";
  ok(create_image(img, 32u << 20, src));
  {
    auto im = ok(ext4_image::open(img, true));
    BOOST_TEST(ok(im.read_file("/sub/link")) == "alpha");
    ok(im.chown("/sub/b.sh", 1234, 5678));
    ok(im.chmod("/a.txt", 0604));
    ok(im.close());
  }
  auto b = dstat(img, "/sub/b.sh");
  BOOST_TEST(b.uid == 1234u);
  BOOST_TEST(b.gid == 5678u);
  BOOST_TEST(b.mode == 0755u);
  BOOST_TEST(dstat(img, "/a.txt").mode == 0604u);
  BOOST_TEST(debugfs(img, "cat /a.txt") == "alpha");
  BOOST_TEST(dstat(img, "/sub/link").type == "symlink");
  require_clean(img);

  // With content_owner every copied inode is chowned; /lost+found stays root's.
  auto owned = dir.path / "owned.ext4";
  ok(create_image(owned, 32u << 20, src, owner{1000, 1001}));
  for (const char* p : {"/", "/a.txt", "/sub", "/sub/b.sh", "/sub/link"}) {
    auto s = dstat(owned, p);
    BOOST_TEST(s.uid == 1000u, p);
    BOOST_TEST(s.gid == 1001u, p);
  }
  BOOST_TEST(dstat(owned, "/lost+found").uid == 0u);
  BOOST_TEST(dstat(owned, "/sub/b.sh").mode == 0755u);
  require_clean(owned);
}

BOOST_AUTO_TEST_CASE(create_image_refusals) {
  temp_dir dir{"banger-ext4"};
  auto img = dir.path / "x.ext4";
  refused(create_image(img, 1000), errc::bad_request, "size not a multiple of 4096");
  BOOST_TEST(!fs::exists(img));
  refused(create_image(img, 32u << 20, dir.path / "no-such-dir"), errc::not_found, "missing source");
  BOOST_TEST(!fs::exists(img));
  { std::ofstream(img) << "precious"; }
  refused(create_image(img, 32u << 20), errc::already_exists, "existing file");
  BOOST_TEST(slurp(img) == "precious");
}

BOOST_AUTO_TEST_CASE(open_refuses_missing_and_non_ext4_files) {
  temp_dir dir{"banger-ext4"};
  auto r = ext4_image::open(dir.path / "missing.ext4", false);
  refused(r, errc::not_found, "missing image");
  BOOST_TEST(r.err().message.find("missing.ext4") != std::string::npos, r.err().message);
  auto junk = dir.path / "junk.ext4";
  { std::ofstream(junk) << std::string(1 << 20, 'j'); }
  auto j = ext4_image::open(junk, true);
  refused(j, errc::bad_request, "not an ext4 image");
  BOOST_TEST(j.err().message.find("junk.ext4") != std::string::npos, j.err().message);
}

BOOST_FIXTURE_TEST_CASE(calls_after_close_fail, image_fixture) {
  auto im = open_rw();
  ok(im.close());
  ok(im.close()); // idempotent
  refused(im.exists("/"), errc::internal, "exists after close");
  refused(im.write_file("/x", "x", 0644, 0, 0), errc::internal, "write after close");
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace banger::guestfs
