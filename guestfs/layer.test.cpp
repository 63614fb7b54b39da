// apply_layer: OCI layers built here with libarchive (pax tar, in memory), applied into real
// ext4 images, read back with ext4_image and debugfs and checked with `e2fsck -fn`. The
// changeset rules (replacement, whiteouts, opaque directories, hard links) and the hostile
// categories, each refused with the entry named and nothing outside the image touched.
#include <boost/test/unit_test.hpp>

#include <archive.h>
#include <archive_entry.h>

#include <fmt/format.h>

#include "guestfs/ext4_support.test.hpp"
#include "guestfs/layer.hpp"

namespace banger::guestfs {

namespace {

using namespace ext4_test;

struct member {
  std::string name;
  char type = 'f'; // f file, d dir, l symlink, h hard link, c/b char/block device, p fifo
  std::string data_or_target;
  std::uint32_t mode = 0;
  std::int64_t uid = 0, gid = 0;
  unsigned major = 0, minor = 0;                             // c and b
  std::vector<std::pair<std::string, std::string>> xattrs{}; // name, value
};

/// A pax tar of `members`, in memory.
std::string tar_of(const std::vector<member>& members) {
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_add_filter_none(a);
  std::vector<char> buf(16 << 20);
  std::size_t used = 0;
  BOOST_REQUIRE(archive_write_open_memory(a, buf.data(), buf.size(), &used) == ARCHIVE_OK);
  for (const auto& m : members) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, m.name.c_str());
    archive_entry_set_uid(e, m.uid);
    archive_entry_set_gid(e, m.gid);
    archive_entry_set_mtime(e, 1'700'000'000, 0);
    switch (m.type) {
    case 'd':
      archive_entry_set_filetype(e, AE_IFDIR);
      archive_entry_set_perm(e, m.mode ? m.mode : 0755);
      break;
    case 'l':
      archive_entry_set_filetype(e, AE_IFLNK);
      archive_entry_set_perm(e, 0777);
      archive_entry_set_symlink(e, m.data_or_target.c_str());
      break;
    case 'h':
      archive_entry_set_filetype(e, AE_IFREG);
      archive_entry_set_perm(e, 0644);
      archive_entry_set_hardlink(e, m.data_or_target.c_str());
      break;
    case 'c':
    case 'b':
      archive_entry_set_filetype(e, m.type == 'c' ? AE_IFCHR : AE_IFBLK);
      archive_entry_set_perm(e, m.mode ? m.mode : 0600);
      archive_entry_set_rdevmajor(e, m.major);
      archive_entry_set_rdevminor(e, m.minor);
      break;
    case 'p':
      archive_entry_set_filetype(e, AE_IFIFO);
      archive_entry_set_perm(e, m.mode ? m.mode : 0644);
      break;
    default:
      archive_entry_set_filetype(e, AE_IFREG);
      archive_entry_set_perm(e, m.mode ? m.mode : 0644);
      archive_entry_set_size(e, static_cast<la_int64_t>(m.data_or_target.size()));
    }
    for (const auto& [n, v] : m.xattrs)
      archive_entry_xattr_add_entry(e, n.c_str(), v.data(), v.size());
    BOOST_REQUIRE(archive_write_header(a, e) >= ARCHIVE_WARN); // WARN: a name that is not UTF-8
    if (m.type == 'f')
      archive_write_data(a, m.data_or_target.data(), m.data_or_target.size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
  return std::string(buf.data(), used);
}

/// One ustar entry preceded by a pax extended header holding `pax` (e.g. {{"path", "../x"}}):
/// written by hand, because a tar writer never sets a pax path that disagrees with the name.
std::string pax_override(const std::string& name, char typeflag, const std::string& linkname,
                         const std::vector<std::pair<std::string, std::string>>& pax) {
  auto header = [](const std::string& n, char type, std::size_t size, const std::string& link) {
    std::string h(512, '\0');
    auto put = [&](std::size_t at, std::size_t len, const std::string& v) {
      h.replace(at, std::min(len, v.size()), v.substr(0, len));
    };
    put(0, 100, n);
    put(100, 8, "0000644");
    put(108, 8, "0000000");
    put(116, 8, "0000000");
    put(124, 12, fmt::format("{:011o}", size));
    put(136, 12, fmt::format("{:011o}", 1'700'000'000));
    h[156] = type;
    put(157, 100, link);
    put(257, 6, std::string("ustar\0", 6));
    put(263, 2, "00");
    put(148, 8, "        ");
    unsigned sum = 0;
    for (unsigned char c : h)
      sum += c;
    put(148, 8, fmt::format("{:06o}", sum) + std::string(1, '\0') + " ");
    return h;
  };
  auto pad = [](std::string b) { return b + std::string((512 - b.size() % 512) % 512, '\0'); };
  std::string records;
  for (const auto& [k, v] : pax) {
    std::string body = " " + k + "=" + v + "\n";
    auto len = body.size() + 1;
    while (std::to_string(len).size() + body.size() != len)
      ++len;
    records += std::to_string(len) + body;
  }
  return header("PaxHeader/" + name, 'x', records.size(), "") + pad(records) + header(name, typeflag, 0, linkname) +
         std::string(1024, '\0');
}

/// apply_layer over `tar` (an uncompressed tar in memory).
expected<layer_stats> apply_tar(ext4_image& img, const std::string& tar, const layer_limits& lim = {}) {
  archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  BOOST_REQUIRE(archive_read_open_memory(a, tar.data(), tar.size()) == ARCHIVE_OK);
  auto r = apply_layer(img, a, "layer 1", lim);
  archive_read_free(a);
  return r;
}

struct layer_fixture {
  temp_dir dir{"banger-layer"};
  fs::path img = dir.path / "rootfs.ext4";
  layer_fixture() { ok(create_image(img, 64u << 20)); }
  ext4_image open() { return ok(ext4_image::open(img, true, 1'800'000'000)); }
};

} // namespace

BOOST_AUTO_TEST_SUITE(guestfs_layer)

// Two layers as an image has them: the second changes, replaces and hides what the first left.
BOOST_AUTO_TEST_CASE(layers_apply_in_order_with_whiteouts_and_type_changes) {
  layer_fixture f;
  {
    auto img = f.open();
    auto s1 = ok(apply_tar(img, tar_of({
                                  {"./", 'd', ""},
                                  {"./etc/", 'd', ""},
                                  {"./etc/passwd", 'f', "root:x:0:0::/root:/bin/sh\n"},
                                  {"./usr/bin/ping", 'f', "ELF", 04755, 0, 0},
                                  {"./usr/bin/ping6", 'h', "./usr/bin/ping"},
                                  {"./home/u", 'd', "", 0700, 1000, 1000},
                                  {"./home/u/notes", 'f', "n", 0600, 1000, 1000},
                                  {"./srv/old", 'd', ""},
                                  {"./srv/old/a", 'f', "a"},
                                  {"./srv/keep", 'f', "k"},
                                  {"./var/lib", 'd', ""},
                                  {"./var/lib/x", 'f', "x"},
                                  {"./opt/app", 'l', "/usr/bin/ping"},
                                  {"./big", 'f', std::string(300'000, 'b')},
                                  {"./nobody", 'f', "", 0644, 4294967294LL, 4294967294LL},
                                })));
    BOOST_TEST(s1.files == 8u);
    auto s2 = ok(apply_tar(img, tar_of({
                                  {"./etc/passwd", 'f', "root:x:0:0::/root:/bin/bash\n"}, // replaced
                                  {"./srv/.wh.old", 'f', ""},                             // hidden
                                  {"./var/lib/.wh..wh..opq", 'f', ""},                    // emptied...
                                  {"./var/lib/y", 'f', "y"},                              // ...but for this
                                  {"./opt/app", 'f', "now a file"},                       // symlink -> file
                                  {"./big", 'd', ""},                                     // file -> dir
                                  {"./home/u", 'd', "", 0750, 1000, 1000},                // attrs only
                                  {"./.wh.nobody", 'f', ""},
                                  {"./.wh.not-there", 'f', ""},
                                  {"./none/.wh.deeper", 'f', ""}, // nothing below a missing dir
                                })));
    BOOST_TEST(s2.whiteouts == 5u);
    ok(img.close());
  }
  require_clean(f.img);
  auto img = ok(ext4_image::open(f.img, false));
  BOOST_TEST(ok(img.read_file("/etc/passwd")) == "root:x:0:0::/root:/bin/bash\n");
  BOOST_TEST(!ok(img.exists("/srv/old")));
  BOOST_TEST(ok(img.read_file("/srv/keep")) == "k");
  BOOST_TEST(!ok(img.exists("/var/lib/x")));
  BOOST_TEST(ok(img.read_file("/var/lib/y")) == "y");
  BOOST_TEST(ok(img.read_file("/opt/app")) == "now a file");
  BOOST_TEST(dstat(f.img, "/big").type == "directory");
  BOOST_TEST(!ok(img.exists("/nobody")));
  BOOST_TEST(!ok(img.exists("/none")));
  BOOST_TEST(ok(img.read_file("/home/u/notes")) == "n"); // a directory over a directory keeps it
  auto home = dstat(f.img, "/home/u");
  BOOST_TEST(home.mode == 0750u);
  BOOST_TEST(home.uid == 1000u);
  auto ping = dstat(f.img, "/usr/bin/ping");
  BOOST_TEST(ping.mode == 04755u); // setuid kept
  BOOST_TEST(debugfs(f.img, "stat /usr/bin/ping").find("Links: 2") != std::string::npos);
  BOOST_TEST(ok(img.read_file("/usr/bin/ping6")) == "ELF");
}

BOOST_AUTO_TEST_CASE(whiteouts_in_a_layer_hide_only_lower_layers_whatever_the_order) {
  layer_fixture f;
  {
    auto img = f.open();
    ok(apply_tar(img, tar_of({{"d/lower", 'f', "l"}, {"d/sub/lower2", 'f', "l2"}, {"gone", 'f', "g"}})));
    ok(apply_tar(img, tar_of({
                        {"d/mine", 'f', "m"}, // before the opaque marker
                        {"d/.wh..wh..opq", 'f', ""},
                        {"d/sub/mine2", 'f', "m2"}, // below a lower directory, after it
                        {"gone", 'f', "again"},
                        {".wh.gone", 'f', ""}, // this layer's own: kept
                      })));
    ok(img.close());
  }
  require_clean(f.img);
  auto img = ok(ext4_image::open(f.img, false));
  BOOST_TEST(ok(img.read_file("/d/mine")) == "m");
  BOOST_TEST(ok(img.read_file("/d/sub/mine2")) == "m2");
  BOOST_TEST(!ok(img.exists("/d/lower")));
  BOOST_TEST(!ok(img.exists("/d/sub/lower2")));
  BOOST_TEST(ok(img.read_file("/gone")) == "again");
}

// Each hostile layer is refused, naming the entry; the image's own namespace is all it can
// touch, so the host's files are never in reach (checked: nothing appears outside the image).
BOOST_AUTO_TEST_CASE(hostile_layers_are_refused_saying_which_entry) {
  struct hostile_case {
    std::string what;
    std::vector<member> members;
    std::string why;
  };
  const std::vector<hostile_case> hostile{
    {"dotdot", {{"etc/../../escape", 'f', "x"}}, "\"..\""},
    {"absolute", {{"/etc/escape", 'f', "x"}}, "absolute"},
    {"symlink parent, same layer", {{"etc", 'l', "/tmp"}, {"etc/escape", 'f', "x"}}, "is a symlink"},
    {"symlink parent, relative", {{"up", 'l', "../../.."}, {"up/escape", 'f', "x"}}, "is a symlink"},
    {"whiteout through a symlink", {{"l", 'l', "/etc"}, {"l/.wh.passwd", 'f', ""}}, "is a symlink"},
    {"whiteout with content", {{".wh.x", 'f', "data"}}, "empty regular file"},
    {"malformed whiteout", {{".wh.", 'f', ""}}, "malformed whiteout"},
    {"malformed whiteout 2", {{".wh..wh.x", 'f', ""}}, "malformed whiteout"},
    {"hard link out of the tree", {{"shadow", 'h', "../../etc/shadow"}}, "\"..\""},
    {"hard link absolute", {{"shadow", 'h', "/etc/shadow"}}, "absolute"},
    {"hard link to nothing", {{"x", 'h', "missing"}}, "not in the image"},
    {"hard link to a symlink", {{"s", 'l', "t"}, {"x", 'h', "s"}}, "not a regular file"},
    {"hard link to a directory", {{"d", 'd', ""}, {"x", 'h', "d"}}, "not a regular file"},
    {"hard link through a symlink", {{"d/f", 'f', "f"}, {"s", 'l', "d"}, {"x", 'h', "s/f"}}, "is a symlink"},
    {"file under a file", {{"f", 'f', "f"}, {"f/g", 'f', "g"}}, "not a directory"},
    {"device number out of range", {{"dev/x", 'c', "", 0600, 0, 0, 5000, 1}}, "outside what Linux encodes"},
    {"system.* xattr", {{"f", 'f', "", 0644, 0, 0, 0, 0, {{"system.posix_acl_access", "x"}}}}, "only user.*"},
    {"xattr flood",
     {{"f", 'f', "", 0644, 0, 0, 0, 0,
       [] {
         std::vector<std::pair<std::string, std::string>> many;
         for (std::size_t i = 0; i <= max_xattrs; ++i)
           many.emplace_back(fmt::format("user.x{}", i), "v");
         return many;
       }()}},
     "more than 64 extended attributes"},
    {"huge xattr", {{"f", 'f', "", 0644, 0, 0, 0, 0, {{"user.big", std::string(70000, 'v')}}}}, "too long"},
    {"long component", {{std::string(256, 'n'), 'f', ""}}, "over 255"},
    {"long path", {{std::string(2100, 'a') + "/" + std::string(2100, 'b'), 'f', ""}}, "over 4095"},
    {"long symlink target", {{"s", 'l', std::string(5000, 't')}}, "symlink target"},
    {"empty component", {{"a//b", 'f', ""}}, "empty"},
    {"uid (uid_t)-1", {{"f", 'f', "", 0644, 4294967295LL, 0}}, "outside"},
    {"uid past 32 bits", {{"f", 'f', "", 0644, 0, 1LL << 40}}, "outside"},
  };
  for (const auto& [what, members, why] : hostile) {
    BOOST_TEST_CONTEXT(what) {
      layer_fixture f;
      auto img = f.open();
      auto r = apply_tar(img, tar_of(members));
      BOOST_TEST_REQUIRE(!r.has_value());
      BOOST_TEST((r.err().code == errc::bad_request), r.err().message);
      BOOST_TEST(r.err().message.find(why) != std::string::npos, r.err().message);
      BOOST_TEST(r.err().message.find("layer 1") == 0u, r.err().message);
    }
  }
  BOOST_TEST(!fs::exists("/etc/escape"));
  BOOST_TEST(!fs::exists("/tmp/escape"));
}

// A pax header overrides the ustar name and link name; the override is what is checked.
BOOST_AUTO_TEST_CASE(pax_path_and_linkpath_overrides_are_checked_too) {
  struct pax_case {
    std::string what;
    std::string tar;
    std::string why;
  };
  std::vector<pax_case> cases{
    {"pax path with ..", pax_override("benign", '0', "", {{"path", "../../escape"}}), "\"..\""},
    {"pax path absolute", pax_override("benign", '0', "", {{"path", "/etc/escape"}}), "absolute"},
    {"pax linkpath out of the tree", pax_override("link", '1', "benign", {{"linkpath", "../../etc/shadow"}}), "\"..\""},
    {"pax linkpath absolute", pax_override("link", '1', "benign", {{"linkpath", "/etc/shadow"}}), "absolute"},
  };
  for (const auto& [what, tar, why] : cases) {
    BOOST_TEST_CONTEXT(what) {
      layer_fixture f;
      auto img = f.open();
      auto r = apply_tar(img, tar);
      BOOST_TEST_REQUIRE(!r.has_value());
      BOOST_TEST(r.err().message.find(why) != std::string::npos, r.err().message);
      BOOST_TEST(!ok(img.exists("/benign")));
    }
  }
  // The same hand-made tar with a harmless override is applied under the override's name.
  layer_fixture f;
  auto img = f.open();
  auto r = apply_tar(img, pax_override("benign", '0', "", {{"path", "etc/renamed"}}));
  BOOST_TEST_REQUIRE(r.has_value(), (r ? "" : r.err().message));
  BOOST_TEST(ok(img.exists("/etc/renamed")));
  BOOST_TEST(!ok(img.exists("/benign")));
  BOOST_TEST(!fs::exists("/etc/escape"));
}

// A symlink loop is only text to the image: an entry below it is refused like any other
// entry below a symlink, and the loop itself is stored as given.
BOOST_AUTO_TEST_CASE(symlink_loops_are_stored_and_never_walked) {
  layer_fixture f;
  auto img = f.open();
  BOOST_TEST_REQUIRE(apply_tar(img, tar_of({{"a", 'l', "b"}, {"b", 'l', "a"}, {"self", 'l', "self"}})).has_value());
  auto below = apply_tar(img, tar_of({{"a/x", 'f', "x"}}));
  BOOST_TEST_REQUIRE(!below.has_value());
  BOOST_TEST(below.err().message.find("is a symlink") != std::string::npos, below.err().message);
  auto through = apply_tar(img, tar_of({{"self/.wh.x", 'f', ""}}));
  BOOST_TEST_REQUIRE(!through.has_value());
  BOOST_TEST(through.err().message.find("is a symlink") != std::string::npos, through.err().message);
  ok(img.close());
  require_clean(f.img);
}

// Device nodes and fifos are the guest's inodes, xattrs (security.capability among them) are
// kept; debugfs reads them back independently, and removing them in a later layer frees what
// they held (an attribute block included): e2fsck stays clean.
BOOST_AUTO_TEST_CASE(device_nodes_fifos_and_xattrs_become_the_images_own) {
  layer_fixture f;
  // A file capability as setcap writes it (VFS_CAP_REVISION_2, cap_net_raw permitted+effective).
  std::string cap("\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 20);
  std::string big(3000, 'b'); // cannot fit in the inode: an attribute block
  {
    auto img = f.open();
    auto r = apply_tar(img, tar_of({{"dev", 'd', ""},
                                    {"dev/null", 'c', "", 0666, 0, 0, 1, 3},
                                    {"dev/sda", 'b', "", 0660, 0, 6, 8, 0},
                                    {"dev/wide", 'c', "", 0600, 0, 0, 300, 70000},
                                    {"run", 'd', ""},
                                    {"run/initctl", 'p', "", 0600},
                                    {"bin", 'd', "", 0755, 0, 0, 0, 0, {{"user.dir-note", "d"}}},
                                    {"bin/ping", 'f', "ELF", 04755, 0, 0, 0, 0, {{"security.capability", cap}}},
                                    {"bin/fat", 'f', "x", 0644, 0, 0, 0, 0, {{"user.big", big}}}}));
    BOOST_TEST_REQUIRE(r.has_value(), (r ? "" : r.err().message));
    BOOST_TEST(r->nodes == 4u);
    BOOST_TEST(r->xattrs == 3u);
    auto info = [&](const char* p) { return ok(img.stat(ok(img.inode_of(p)))); };
    BOOST_TEST(info("/dev/null").format == 0020000u); // S_IFCHR
    BOOST_TEST(info("/dev/null").rdev_major == 1u);
    BOOST_TEST(info("/dev/null").rdev_minor == 3u);
    BOOST_TEST(info("/dev/null").mode == 0666u);
    BOOST_TEST(info("/dev/sda").format == 0060000u); // S_IFBLK
    BOOST_TEST(info("/dev/sda").gid == 6u);
    BOOST_TEST(info("/dev/wide").rdev_major == 300u);
    BOOST_TEST(info("/dev/wide").rdev_minor == 70000u);
    BOOST_TEST(info("/run/initctl").format == 0010000u); // S_IFIFO
    BOOST_TEST(info("/bin/ping").mode == 04755u);
    BOOST_TEST(ok(img.get_xattr(ok(img.inode_of("/bin/ping")), "security.capability")).value_or("") == cap);
    BOOST_TEST(ok(img.get_xattr(ok(img.inode_of("/bin")), "user.dir-note")).value_or("") == "d");
    BOOST_TEST(ok(img.get_xattr(ok(img.inode_of("/bin/fat")), "user.big")).value_or("") == big);
    BOOST_TEST(!ok(img.get_xattr(ok(img.inode_of("/bin/ping")), "user.absent")).has_value());
    ok(img.close());
  }
  require_clean(f.img);
  // An independent reader: debugfs decodes the same device numbers and finds the attributes.
  auto null_stat = debugfs(f.img, "stat /dev/null");
  BOOST_TEST(null_stat.find("character special") != std::string::npos, null_stat);
  BOOST_TEST(null_stat.find("Device major/minor number: 01:03") != std::string::npos, null_stat);
  auto wide = debugfs(f.img, "stat /dev/wide");
  BOOST_TEST(wide.find("Device major/minor number: 300:70000") != std::string::npos, wide);
  auto xattrs = debugfs(f.img, "ea_list /bin/ping");
  BOOST_TEST(xattrs.find("security.capability") != std::string::npos, xattrs);

  // A second layer removes them all: nothing they held stays allocated.
  {
    auto img = f.open();
    auto r = apply_tar(img, tar_of({{"dev/.wh.wide", 'f', ""},
                                    {"dev/.wh.null", 'f', ""},
                                    {"run/.wh.initctl", 'f', ""},
                                    {"bin/.wh.fat", 'f', ""},
                                    {"bin/ping", 'f', "plain"}}));
    BOOST_TEST_REQUIRE(r.has_value(), (r ? "" : r.err().message));
    BOOST_TEST(!ok(img.exists("/dev/null")));
    BOOST_TEST(!ok(img.exists("/bin/fat")));
    BOOST_TEST(!ok(img.get_xattr(ok(img.inode_of("/bin/ping")), "security.capability")).has_value());
    ok(img.close());
  }
  require_clean(f.img);
}

BOOST_AUTO_TEST_CASE(names_are_bytes_and_deep_trees_and_limits_hold) {
  layer_fixture f;
  std::string deep;
  for (int i = 0; i < 200; ++i)
    deep += "d/";
  {
    auto img = f.open();
    ok(apply_tar(img, tar_of({{"new\nline\x01\xff", 'f', "odd"}, {deep + "leaf", 'f', "deep"}})));
    // Caps: entries, bytes, depth, each named in the error.
    auto many = apply_tar(img, tar_of({{"a", 'f', ""}, {"b", 'f', ""}, {"c", 'f', ""}}), layer_limits{2, 1 << 20, 256});
    BOOST_TEST_REQUIRE(!many.has_value());
    BOOST_TEST(many.err().message.find("more than 2 entries") != std::string::npos, many.err().message);
    auto big = apply_tar(img, tar_of({{"big", 'f', std::string(5000, 'x')}}), layer_limits{100, 4096, 256});
    BOOST_TEST_REQUIRE(!big.has_value());
    BOOST_TEST(big.err().message.find("4096 bytes") != std::string::npos, big.err().message);
    auto too_deep = apply_tar(img, tar_of({{deep + "leaf2", 'f', ""}}), layer_limits{100, 1 << 20, 100});
    BOOST_TEST_REQUIRE(!too_deep.has_value());
    BOOST_TEST(too_deep.err().message.find("deeper than 100") != std::string::npos, too_deep.err().message);
    auto empty = ok(apply_tar(img, tar_of({})));
    BOOST_TEST(empty.entries == 0u);
    ok(img.close());
  }
  auto img = ok(ext4_image::open(f.img, false));
  auto odd = ok(img.lookup_in(2, "new\nline\x01\xff")); // names are bytes; paths refuse control characters
  BOOST_TEST_REQUIRE(odd.has_value());
  BOOST_TEST(odd->size == 3u);
  BOOST_TEST(ok(img.read_file("/" + deep + "leaf")) == "deep");
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace banger::guestfs
