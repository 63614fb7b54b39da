// Unit tests for image.hpp: real images built with stand-in guest binaries (small scripts, so
// the test needs no static build), read back in-process with ext4_image; manifests checked
// against sha256sum; hostile directories and tar files refused with nothing left behind. The
// debootstrap cache is tested offline: a stand-in `debootstrap` first in PATH either copies a
// small Debian-like tree or fails, so a hit is a build that never ran it.
#include <boost/test/unit_test.hpp>

#include <archive.h>
#include <archive_entry.h>
#include <cstdlib>
#include <fcntl.h>
#include <fmt/format.h>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "guestfs/ext4.hpp"
#include "guestfs/image.hpp"
#include "tests/support/proc.hpp"

namespace banger::guestfs {

namespace {

namespace fs = std::filesystem;
using banger::test::run;
using banger::test::temp_dir;

template <class T>
std::string why(const expected<T>& r) {
  return r ? std::string() : r.err().message;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void spit(const fs::path& p, std::string_view text, fs::perms mode = fs::perms(0644)) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
  fs::permissions(p, mode);
}

constexpr std::string_view fake_agent = "#!/bin/sh\n# stand-in banger-agent\n";
constexpr std::string_view fake_init = "#!/bin/sh\n# stand-in banger-init\n";

struct image_fixture {
  temp_dir tmp{"banger-image-test"};
  fs::path images = tmp.path / "images";
  guest_binaries bins{tmp.path / "bin/banger-agent", tmp.path / "bin/banger-init"};
  image_fixture() {
    spit(bins.agent, fake_agent, fs::perms(0755));
    spit(bins.init, fake_init, fs::perms(0755));
    fs::create_directories(images);
  }
  /// Whatever is in the images directory besides `keep`: a failed build must leave nothing.
  std::vector<std::string> leftovers(const std::string& keep = {}) const {
    std::vector<std::string> out;
    for (auto& e : fs::directory_iterator(images))
      if (e.path().filename() != keep)
        out.push_back(e.path().filename().string());
    return out;
  }
};

std::optional<ext4_entry> entry(const ext4_image& img, const std::string& dir, const std::string& name) {
  auto l = img.list(dir);
  if (!l)
    return std::nullopt;
  for (auto& e : *l)
    if (e.name == name)
      return e;
  return std::nullopt;
}

/// The injection every builder performs, checked inside rootfs.ext4.
void check_injected(const fs::path& rootfs) {
  auto img = ext4_image::open(rootfs, false);
  BOOST_TEST_REQUIRE(img.has_value(), why(img));
  for (auto [name, text] : {std::pair{"banger-init", fake_init}, std::pair{"banger-agent", fake_agent}}) {
    auto e = entry(*img, "/usr/local/sbin", name);
    BOOST_TEST_REQUIRE(e.has_value(), name << " missing from /usr/local/sbin");
    BOOST_TEST((e->type == entry_type::regular));
    BOOST_TEST(e->mode == 0755u);
    BOOST_TEST(e->uid == 0u);
    BOOST_TEST(e->gid == 0u);
    BOOST_TEST(*img->read_file(std::string("/usr/local/sbin/") + name) == text);
  }
  for (auto* d : {"/proc", "/sys", "/dev", "/run", "/tmp", "/root"})
    BOOST_TEST(*img->exists(d), d << " missing");
  auto ssh_keys = img->list("/etc/ssh");
  if (ssh_keys)
    for (auto& e : *ssh_keys)
      BOOST_TEST(!e.name.starts_with("ssh_host_"), "host key " << e.name << " left in the image");
}

void check_manifest_sums(const fs::path& dir) {
  auto j = nlohmann::json::parse(slurp(dir / "manifest.json"));
  std::vector<std::string> names;
  for (auto& f : j["files"]) {
    auto name = f["name"].get<std::string>();
    names.push_back(name);
    auto r = run({"sha256sum", (dir / name).string()});
    BOOST_TEST_REQUIRE(r.exit_code == 0, r.err);
    BOOST_TEST(r.out.substr(0, 64) == f["sha256"].get<std::string>(), name);
    BOOST_TEST(f["size"].get<std::uint64_t>() == fs::file_size(dir / name), name);
  }
  BOOST_TEST((names == std::vector<std::string>{"rootfs.ext4", "work-seed.ext4"}));
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(guestfs_image, image_fixture)

BOOST_AUTO_TEST_CASE(busybox_image_has_busybox_init_and_agent) {
  std::vector<std::string> stages;
  auto dest = images / "bb-1";
  auto m = build_busybox_image(
    "bb", bins, dest, [&](const std::string& stage, std::uint64_t, std::uint64_t) { stages.push_back(stage); });
  BOOST_TEST_REQUIRE(m.has_value(), why(m));
  BOOST_TEST(leftovers("bb-1").empty());
  BOOST_TEST(!stages.empty());
  BOOST_TEST(m->name == "bb");
  BOOST_TEST(m->source == "busybox");
  BOOST_TEST(m->init == "banger-init");
  BOOST_TEST(m->packages.empty());
  BOOST_TEST(m->created_ns > 0);
  BOOST_TEST(fs::file_size(dest / "rootfs.ext4") == 64u << 20);
  BOOST_TEST(fs::file_size(dest / "work-seed.ext4") == 16u << 20);

  check_injected(dest / "rootfs.ext4");
  auto img = ext4_image::open(dest / "rootfs.ext4", false);
  BOOST_TEST_REQUIRE(img.has_value(), why(img));
  auto init = entry(*img, "/sbin", "init");
  BOOST_TEST_REQUIRE(init.has_value());
  BOOST_TEST((init->type == entry_type::symlink));
  BOOST_TEST(*img->read_file("/sbin/init") == fake_init); // -> /usr/local/sbin/banger-init
  auto busybox = entry(*img, "/usr/bin", "busybox");
  BOOST_TEST_REQUIRE(busybox.has_value());
  BOOST_TEST(busybox->mode == 0755u);
  BOOST_TEST(busybox->size == fs::file_size("/usr/bin/busybox"));
  for (auto* applet : {"/bin/sh", "/bin/mount", "/usr/bin/seq", "/bin/stat", "/usr/sbin/httpd"})
    BOOST_TEST(*img->exists(applet), applet << " missing");
  BOOST_TEST(*img->read_file("/bin/sh") == slurp("/usr/bin/busybox")); // the symlink resolves in-image
  BOOST_TEST(img->read_file("/etc/passwd")->starts_with("root:x:0:0:root:/root:/bin/sh\n"));
  BOOST_TEST(*img->read_file("/etc/hostname") == "banger\n");
  BOOST_TEST(!*img->exists("/etc/ssh"));
  // Everything root-owned, though the tree was built by whoever ran the build.
  for (auto* dir : {"/", "/etc", "/usr/bin", "/bin", "/sbin"})
    for (auto& e : *img->list(dir))
      if (e.name != "lost+found")
        BOOST_TEST((e.uid == 0u && e.gid == 0u), dir << "/" << e.name << " owned by " << e.uid << ":" << e.gid);
  auto root = entry(*img, "/", "root");
  BOOST_TEST(root->mode == 0700u);
  BOOST_TEST(entry(*img, "/", "tmp")->mode == 01777u);

  auto seed = ext4_image::open(dest / "work-seed.ext4", false);
  BOOST_TEST_REQUIRE(seed.has_value(), why(seed));
  auto seed_root = seed->list("/");
  BOOST_TEST_REQUIRE(seed_root.has_value());
  BOOST_TEST(seed_root->size() == 1u); // lost+found only: busybox's /root is empty

  check_manifest_sums(dest);
  auto v = verify_image_dir(dest);
  BOOST_TEST_REQUIRE(v.has_value(), why(v));
  BOOST_TEST(v->name == "bb");
  BOOST_TEST(v->files.size() == 2u);
  BOOST_TEST(v->created_ns == m->created_ns);
}

BOOST_AUTO_TEST_CASE(verify_detects_a_tampered_or_missing_file) {
  auto dest = images / "bb";
  auto m = build_busybox_image("bb", bins, dest, {});
  BOOST_TEST_REQUIRE(m.has_value(), why(m));
  BOOST_TEST(verify_image_dir(dest).has_value());
  auto seed = dest / "work-seed.ext4";
  fs::copy_file(seed, tmp.path / "seed.bak");
  fs::resize_file(seed, 4096);
  auto short_seed = verify_image_dir(dest);
  BOOST_TEST_REQUIRE(!short_seed.has_value());
  BOOST_TEST(short_seed.err().message.find("work-seed.ext4 is 4096 bytes") != std::string::npos,
             short_seed.err().message);
  fs::copy_file(tmp.path / "seed.bak", seed, fs::copy_options::overwrite_existing);
  BOOST_TEST(verify_image_dir(dest).has_value());
  {
    // Same size, one byte changed near the end (free space): only the sha256 can tell.
    std::fstream f(dest / "rootfs.ext4", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-4096, std::ios::end);
    f.put('\x5a');
  }
  auto v = verify_image_dir(dest);
  BOOST_TEST_REQUIRE(!v.has_value());
  BOOST_TEST((v.err().code == errc::bad_request));
  BOOST_TEST(v.err().message.find("rootfs.ext4 has sha256") != std::string::npos, v.err().message);

  spit(dest / "manifest.json", R"({"files": [{"name": "../etc/passwd", "sha256": "", "size": 0}]})");
  auto v3 = verify_image_dir(dest);
  BOOST_TEST_REQUIRE(!v3.has_value());
  BOOST_TEST(v3.err().message.find("unsafe") != std::string::npos, v3.err().message);
  BOOST_TEST(!verify_image_dir(tmp.path / "nope").has_value());
}

BOOST_AUTO_TEST_CASE(a_failed_build_leaves_nothing_and_dest_must_be_new) {
  auto missing = bins;
  missing.agent = tmp.path / "no-such-agent";
  auto r = build_busybox_image("bb", missing, images / "bb", {});
  BOOST_TEST_REQUIRE(!r.has_value());
  BOOST_TEST(r.err().message.find("no-such-agent") != std::string::npos, r.err().message);
  auto left = leftovers();
  BOOST_TEST(left.empty(), "left behind: " << (left.empty() ? std::string() : left.front()));

  fs::create_directories(images / "taken");
  auto again = build_busybox_image("bb", bins, images / "taken", {});
  BOOST_TEST_REQUIRE(!again.has_value());
  BOOST_TEST((again.err().code == errc::already_exists));
  BOOST_TEST(leftovers("taken").empty());
  auto orphan = build_busybox_image("bb", bins, tmp.path / "no/parent/bb", {});
  BOOST_TEST_REQUIRE(!orphan.has_value());
  BOOST_TEST((orphan.err().code == errc::not_found));
}

BOOST_AUTO_TEST_CASE(debootstrap_spec_is_validated_before_anything_runs) {
  for (auto bad : {debootstrap_spec{"book worm", "http://deb.debian.org/debian", {}, {}},
                   debootstrap_spec{"bookworm", "ftp://x", {}, {}},
                   debootstrap_spec{"bookworm", "http://deb.debian.org/debian", {"curl,evil"}, {}},
                   debootstrap_spec{"bookworm", "http://deb.debian.org/debian", {"--option"}, {}}}) {
    auto r = build_debootstrap_image("d", bad, bins, images / "d", {});
    BOOST_TEST_REQUIRE(!r.has_value());
    BOOST_TEST((r.err().code == errc::bad_request), r.err().message);
  }
  BOOST_TEST(leftovers().empty());
}

/// A small root filesystem tree with things the import must handle.
fs::path sample_tree(const fs::path& at) {
  spit(at / "etc/ssh/ssh_host_ed25519_key", "PRIVATE");
  spit(at / "etc/ssh/ssh_host_ed25519_key.pub", "PUBLIC");
  spit(at / "etc/ssh/sshd_config", "Include /etc/ssh/sshd_config.d/*.conf\n");
  spit(at / "etc/os-release", "ID=sample\n");
  spit(at / "usr/sbin/sshd", "#!/bin/sh\n", fs::perms(0755));
  spit(at / "usr/bin/suid", "s", fs::perms(04755));
  spit(at / "root/.profile", "PS1='# '\n");
  fs::permissions(at / "root", fs::perms(0700));
  fs::create_directories(at / "usr/share/zoneinfo");
  spit(at / "usr/share/zoneinfo/UTC", "TZif");
  fs::create_symlink("/usr/share/zoneinfo/UTC", at / "etc/localtime"); // absolute: the guest's
  fs::create_symlink("usr/bin", at / "bin");
  fs::create_symlink("usr/sbin", at / "sbin");
  if (::geteuid() == 0)
    BOOST_REQUIRE(::chown((at / "usr/bin/suid").c_str(), 1234, 5678) == 0);
  fs::permissions(at / "usr/bin/suid", fs::perms(04755)); // chown cleared set-uid
  return at;
}

void check_sample_image(const fs::path& dest) {
  check_injected(dest / "rootfs.ext4");
  auto img = ext4_image::open(dest / "rootfs.ext4", false);
  BOOST_TEST_REQUIRE(img.has_value(), why(img));
  BOOST_TEST(*img->read_file("/etc/os-release") == "ID=sample\n");
  BOOST_TEST(*img->read_file("/etc/localtime") == "TZif"); // absolute link resolved in-image
  BOOST_TEST(*img->exists("/etc/ssh/sshd_config"));
  BOOST_TEST(!*img->exists("/etc/ssh/ssh_host_ed25519_key"));
  BOOST_TEST(!*img->exists("/etc/ssh/ssh_host_ed25519_key.pub"));
  auto dropin = img->read_file("/etc/ssh/sshd_config.d/banger.conf");
  BOOST_TEST_REQUIRE(dropin.has_value(), why(dropin));
  BOOST_TEST(dropin->find("PermitRootLogin prohibit-password\n") != std::string::npos);
  BOOST_TEST(dropin->find("PasswordAuthentication no\n") != std::string::npos);
  // /sbin -> usr/sbin: init was created through the image's own link.
  BOOST_TEST(*img->read_file("/usr/sbin/init") == fake_init);
  auto suid = entry(*img, "/usr/bin", "suid");
  BOOST_TEST_REQUIRE(suid.has_value());
  BOOST_TEST(suid->mode == 04755u);
  if (::geteuid() == 0) {
    BOOST_TEST(suid->uid == 1234u);
    BOOST_TEST(suid->gid == 5678u);
  } else {
    BOOST_TEST(suid->uid == 0u);
  }
  auto seed = ext4_image::open(dest / "work-seed.ext4", false);
  BOOST_TEST_REQUIRE(seed.has_value(), why(seed));
  BOOST_TEST(*seed->read_file("/.profile") == "PS1='# '\n");
  check_manifest_sums(dest);
  BOOST_TEST(verify_image_dir(dest).has_value());
}

BOOST_AUTO_TEST_CASE(directory_import_keeps_the_tree_and_injects) {
  auto src = sample_tree(tmp.path / "src");
  auto dest = images / "sample";
  auto m = import_dir_image("sample", src, bins, dest, {});
  BOOST_TEST_REQUIRE(m.has_value(), why(m));
  BOOST_TEST(m->source == "dir:" + src.string());
  BOOST_TEST(leftovers("sample").empty());
  check_sample_image(dest);
  BOOST_TEST(fs::exists(src / "etc/ssh/ssh_host_ed25519_key")); // the source is not touched
}

BOOST_AUTO_TEST_CASE(directory_import_refuses_specials_and_escaping_links) {
  auto fifo_src = sample_tree(tmp.path / "fifo");
  BOOST_REQUIRE(::mkfifo((fifo_src / "etc/pipe").c_str(), 0644) == 0);
  auto r = import_dir_image("x", fifo_src, bins, images / "x", {});
  BOOST_TEST_REQUIRE(!r.has_value());
  BOOST_TEST((r.err().code == errc::bad_request));
  BOOST_TEST(r.err().message.find("etc/pipe") != std::string::npos, r.err().message);
  BOOST_TEST(leftovers().empty());

  auto link_src = sample_tree(tmp.path / "link");
  fs::create_symlink("../../../etc/shadow", link_src / "etc/ssh/escape");
  auto l = import_dir_image("x", link_src, bins, images / "x", {});
  BOOST_TEST_REQUIRE(!l.has_value());
  BOOST_TEST(l.err().message.find("etc/ssh/escape") != std::string::npos, l.err().message);
  BOOST_TEST(leftovers().empty());
}

namespace {

struct tar_member {
  std::string name;
  char type = 'f'; // f file, d dir, l symlink, h hard link, c char device
  std::string data_or_target;
};

/// Writes a tar holding `members`, gzip'd unless `filter` names another libarchive write filter
/// (with libarchive: `tar` would refuse the hostile ones).
void write_tar(const fs::path& path, const std::vector<tar_member>& members,
               int (*filter)(archive*) = &archive_write_add_filter_gzip) {
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  BOOST_REQUIRE(filter(a) == ARCHIVE_OK);
  BOOST_REQUIRE(archive_write_open_filename(a, path.c_str()) == ARCHIVE_OK);
  for (auto& m : members) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, m.name.c_str());
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    switch (m.type) {
    case 'd':
      archive_entry_set_filetype(e, AE_IFDIR);
      archive_entry_set_perm(e, 0755);
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
      archive_entry_set_filetype(e, AE_IFCHR);
      archive_entry_set_perm(e, 0600);
      archive_entry_set_rdev(e, makedev(1, 3));
      break;
    default:
      archive_entry_set_filetype(e, AE_IFREG);
      archive_entry_set_perm(e, 0644);
      archive_entry_set_size(e, static_cast<la_int64_t>(m.data_or_target.size()));
    }
    BOOST_REQUIRE(archive_write_header(a, e) == ARCHIVE_OK);
    if (m.type == 'f')
      archive_write_data(a, m.data_or_target.data(), m.data_or_target.size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
}

} // namespace

BOOST_AUTO_TEST_CASE(tar_import_extracts_and_injects) {
  auto src = sample_tree(tmp.path / "src");
  auto tar = tmp.path / "sample.tar.gz";
  auto r = run({"tar", "--numeric-owner", "-C", src.string(), "-czf", tar.string(), "."});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.err);
  auto dest = images / "sample";
  auto m = import_tar_image("sample", tar, bins, dest, {});
  BOOST_TEST_REQUIRE(m.has_value(), why(m));
  BOOST_TEST(m->source == "tar:" + tar.string());
  BOOST_TEST(leftovers("sample").empty());
  check_sample_image(dest);

  // A hard link to a file earlier in the archive is fine.
  auto linked = tmp.path / "linked.tar.gz";
  write_tar(linked, {{"etc", 'd', ""}, {"etc/a", 'f', "same"}, {"etc/b", 'h', "etc/a"}});
  auto lm = import_tar_image("linked", linked, bins, images / "linked", {});
  BOOST_TEST_REQUIRE(lm.has_value(), why(lm));
  auto img = ext4_image::open(images / "linked/rootfs.ext4", false);
  BOOST_TEST(*img->read_file("/etc/b") == "same");
}

BOOST_AUTO_TEST_CASE(tar_import_refuses_hostile_members_and_leaves_nothing) {
  const std::vector<std::pair<std::string, std::vector<tar_member>>> hostile{
    {"dotdot", {{"etc", 'd', ""}, {"etc/../../evil", 'f', "x"}}},
    {"absolute", {{"/tmp/banger-image-test-evil", 'f', "x"}}},
    {"escaping symlink", {{"etc", 'd', ""}, {"etc/up", 'l', "../../.."}}},
    {"write through a symlink", {{"etc", 'l', "/tmp"}, {"etc/evil", 'f', "x"}}},
    {"device node", {{"dev", 'd', ""}, {"dev/null", 'c', ""}}},
    {"hard link outside", {{"etc", 'd', ""}, {"etc/shadow", 'h', "/etc/shadow"}}},
    {"hard link to nothing", {{"etc", 'd', ""}, {"etc/x", 'h', "etc/missing"}}},
  };
  int i = 0;
  for (auto& [what, members] : hostile) {
    BOOST_TEST_CONTEXT(what) {
      auto tar = tmp.path / ("hostile" + std::to_string(i++) + ".tar.gz");
      write_tar(tar, members);
      auto r = import_tar_image("evil", tar, bins, images / "evil", {});
      BOOST_TEST_REQUIRE(!r.has_value());
      BOOST_TEST_MESSAGE(what << ": " << r.err().message);
      BOOST_TEST((r.err().code == errc::bad_request), r.err().message);
      BOOST_TEST(leftovers().empty());
    }
  }
  BOOST_TEST(!fs::exists("/tmp/banger-image-test-evil"));
  BOOST_TEST(!fs::exists("/tmp/evil"));
  BOOST_TEST(!fs::exists(tmp.path / "evil"));
  auto garbage = tmp.path / "garbage.tar";
  spit(garbage, std::string(4096, 'x'));
  auto g = import_tar_image("g", garbage, bins, images / "g", {});
  BOOST_TEST_REQUIRE(!g.has_value());
  BOOST_TEST(leftovers().empty());
}

namespace {

/// Debootstrap builds need root (the tree's owners); as anyone else these tests are skipped.
struct running_as_root {
  boost::test_tools::assertion_result operator()(boost::unit_test::test_unit_id) const {
    boost::test_tools::assertion_result r(::geteuid() == 0);
    r.message() << "debootstrap image builds need root (the tree keeps its owners): run the unit tests as root";
    return r;
  }
};

/// Puts `dir` first in PATH for the guard's lifetime, so the builder finds a stand-in debootstrap.
struct path_prepended {
  std::string old;
  explicit path_prepended(const fs::path& dir) : old(std::getenv("PATH") ? std::getenv("PATH") : "") {
    ::setenv("PATH", (dir.string() + ":" + old).c_str(), 1);
  }
  ~path_prepended() { ::setenv("PATH", old.c_str(), 1); }
  path_prepended(const path_prepended&) = delete;
  path_prepended& operator=(const path_prepended&) = delete;
};

// A tarball is outside input: it is read with the compressions banger names, in-process, and
// nothing else. libarchive's catch-all would hand an lrzip-framed file to an `lrzip` program on
// PATH; here a stand-in records whether anything ran it.
BOOST_AUTO_TEST_CASE(tar_import_reads_named_compressions_in_process_and_runs_no_program) {
  const std::vector<tar_member> tree{{"etc", 'd', ""}, {"etc/motd", 'f', "hello\n"}};
  int n = 0;
  for (auto [name, filter] :
       {std::pair{"zstd", &archive_write_add_filter_zstd}, std::pair{"xz", &archive_write_add_filter_xz},
        std::pair{"bzip2", &archive_write_add_filter_bzip2}, std::pair{"none", &archive_write_add_filter_none}}) {
    BOOST_TEST_CONTEXT(name) {
      auto tar = tmp.path / fmt::format("c{}.tar", n);
      write_tar(tar, tree, filter);
      auto image = fmt::format("c{}", n++);
      auto m = import_tar_image(image, tar, bins, images / image, {});
      BOOST_TEST_REQUIRE(m.has_value(), why(m));
      auto img = ext4_image::open(images / image / "rootfs.ext4", false);
      BOOST_TEST(*img->read_file("/etc/motd") == "hello\n");
    }
  }
  auto fake = tmp.path / "fakebin";
  fs::create_directories(fake);
  auto ran = tmp.path / "a-program-ran";
  for (const char* prog : {"lrzip", "lzop", "grzip", "lzip", "lz4", "uudecode", "compress", "gzip", "zstd"}) {
    spit(fake / prog, "#!/bin/sh\ntouch " + ran.string() + "\n", fs::perms(0755));
  }
  path_prepended guard(fake);
  auto lrz = tmp.path / "image.tar.lrz";
  spit(lrz, std::string("LRZI\0\x06", 6) + std::string(64, '\0'));
  auto r = import_tar_image("lrz", lrz, bins, images / "lrz", {});
  BOOST_TEST_REQUIRE(!r.has_value());
  BOOST_TEST((r.err().code == errc::bad_request), r.err().message);
  BOOST_TEST(r.err().message.find("gzip, zstd, xz or bzip2") != std::string::npos, r.err().message);
  BOOST_TEST(!fs::exists(ran));
  BOOST_TEST(!fs::exists(images / "lrz"));
}

const std::vector<std::string> debian_packages{"base-files", "busybox", "openssh-server"};

/// A small stand-in for Debian's tree: /etc/debian_version, a dpkg status file, files with
/// varied owners and modes, symlinks (one owned by a non-root user), a hard link, ssh host keys.
fs::path debian_like_tree(const fs::path& at) {
  spit(at / "etc/debian_version", "12.8\n");
  spit(at / "var/lib/dpkg/status", "Package: base-files\nStatus: install ok installed\n\n"
                                   "Package: busybox\nStatus: install ok installed\n\n"
                                   "Package: gone\nStatus: deinstall ok config-files\n\n"
                                   "Package: openssh-server\nStatus: install ok installed\n");
  spit(at / "usr/bin/busybox", "#!/bin/sh\n# busybox\n", fs::perms(0755));
  spit(at / "usr/sbin/sshd", "#!/bin/sh\n", fs::perms(0755));
  spit(at / "etc/ssh/sshd_config", "Include /etc/ssh/sshd_config.d/*.conf\n");
  spit(at / "etc/ssh/ssh_host_ed25519_key", "PRIVATE", fs::perms(0600));
  spit(at / "etc/shadow", "root:*:19000:0:99999:7:::\n", fs::perms(0640));
  spit(at / "home/user/.bashrc", "# user\n", fs::perms(0600));
  spit(at / "usr/bin/passwd", "p", fs::perms(0755));
  spit(at / "usr/bin/perl", "#!perl\n", fs::perms(0755));
  spit(at / "root/.profile", "PS1='# '\n");
  fs::create_directories(at / "var/mail");
  fs::create_directories(at / "dev");
  fs::create_hard_link(at / "usr/bin/perl", at / "usr/bin/perl5.36");
  fs::create_symlink("usr/bin", at / "bin");
  fs::create_symlink("usr/sbin", at / "sbin");
  fs::create_symlink("/usr/bin/busybox", at / "usr/bin/sh");
  fs::create_symlink("../../etc/debian_version", at / "home/user/version");
  BOOST_REQUIRE(::chown((at / "etc/shadow").c_str(), 0, 42) == 0);
  BOOST_REQUIRE(::chown((at / "home/user").c_str(), 1000, 1000) == 0);
  BOOST_REQUIRE(::chown((at / "home/user/.bashrc").c_str(), 1000, 1000) == 0);
  BOOST_REQUIRE(::lchown((at / "home/user/version").c_str(), 1000, 1000) == 0);
  BOOST_REQUIRE(::chown((at / "var/mail").c_str(), 0, 8) == 0);
  BOOST_REQUIRE(::chown((at / "usr/bin/passwd").c_str(), 0, 0) == 0);
  fs::permissions(at / "var/mail", fs::perms(02775));
  fs::permissions(at / "home/user", fs::perms(0750));
  fs::permissions(at / "usr/bin/passwd", fs::perms(04755));
  fs::permissions(at / "root", fs::perms(0700));
  return at;
}

/// A stand-in debootstrap: `body` runs with the target directory in $4 (the builder's argv is
/// --variant=minbase --include=... <suite> <target> <mirror>).
void fake_debootstrap(const fs::path& dir, std::string_view body) {
  spit(dir / "debootstrap", fmt::format("#!/bin/sh\nset -e\n{}\n", body), fs::perms(0755));
}

/// debootstrap copying the stand-in tree, plus what trimming must remove: docs, a fifo and a
/// device node in /dev. Records its arguments in `args`.
std::string copying_debootstrap(const fs::path& tree, const fs::path& args) {
  return fmt::format("echo \"$@\" > '{}'\nmkdir -p \"$4\"\ncp -a '{}'/. \"$4\"/\n"
                     "mkdir -p \"$4/usr/share/doc/busybox\" && echo doc > \"$4/usr/share/doc/busybox/README\"\n"
                     "mkfifo \"$4/dev/initctl\"\nmknod \"$4/dev/null\" c 1 3 || true",
                     args.string(), tree.string());
}

bool has_stage(const std::vector<std::string>& stages, std::string_view prefix) {
  return std::any_of(stages.begin(), stages.end(), [&](auto& s) { return s.starts_with(prefix); });
}

std::string stage_list(const std::vector<std::string>& stages) {
  std::string out;
  for (auto& s : stages)
    if (out.empty() || !out.ends_with(s + " "))
      out += s + " ";
  return out;
}

std::string cache_name(const debootstrap_spec& spec) {
  return "debootstrap-" + spec.suite + "-" + debootstrap_cache_key(spec).substr(0, 16) + ".tar.zst";
}

/// The stand-in tree as the image must hold it, whichever way it was built.
void check_debian_like_image(const fs::path& dest) {
  check_injected(dest / "rootfs.ext4");
  auto img = ext4_image::open(dest / "rootfs.ext4", false);
  BOOST_TEST_REQUIRE(img.has_value(), why(img));
  BOOST_TEST(*img->read_file("/etc/debian_version") == "12.8\n");
  BOOST_TEST(*img->read_file("/etc/hostname") == "banger\n");
  BOOST_TEST(!*img->exists("/etc/ssh/ssh_host_ed25519_key"));
  BOOST_TEST(img->read_file("/etc/ssh/sshd_config.d/banger.conf").has_value());
  BOOST_TEST(*img->read_file("/usr/sbin/init") == fake_init); // through the image's /sbin link
  BOOST_TEST(*img->read_file("/bin/sh") == "#!/bin/sh\n# busybox\n");
  BOOST_TEST(*img->read_file("/usr/bin/perl5.36") == "#!perl\n");
  BOOST_TEST(!*img->exists("/dev/initctl"));
  BOOST_TEST(!*img->exists("/dev/null"));
  BOOST_TEST(!*img->exists("/usr/share/doc/busybox"));
  struct want {
    const char* dir;
    const char* name;
    entry_type type;
    std::uint32_t mode, uid, gid;
  };
  for (auto w : {want{"/etc", "shadow", entry_type::regular, 0640, 0, 42},
                 want{"/home", "user", entry_type::directory, 0750, 1000, 1000},
                 want{"/home/user", ".bashrc", entry_type::regular, 0600, 1000, 1000},
                 want{"/var", "mail", entry_type::directory, 02775, 0, 8},
                 want{"/usr/bin", "passwd", entry_type::regular, 04755, 0, 0},
                 want{"/usr/bin", "busybox", entry_type::regular, 0755, 0, 0}}) {
    auto e = entry(*img, w.dir, w.name);
    BOOST_TEST_REQUIRE(e.has_value(), w.dir << "/" << w.name << " missing");
    BOOST_TEST((e->type == w.type), w.dir << "/" << w.name);
    BOOST_TEST(e->mode == w.mode, w.dir << "/" << w.name);
    BOOST_TEST(e->uid == w.uid, w.dir << "/" << w.name);
    BOOST_TEST(e->gid == w.gid, w.dir << "/" << w.name);
  }
  auto link = entry(*img, "/home/user", "version");
  BOOST_TEST_REQUIRE(link.has_value());
  BOOST_TEST((link->type == entry_type::symlink));
  BOOST_TEST(link->uid == 1000u);
  BOOST_TEST(*img->read_file("/home/user/version") == "12.8\n");
  BOOST_TEST((entry(*img, "/", "bin")->type == entry_type::symlink));
  auto seed = ext4_image::open(dest / "work-seed.ext4", false);
  BOOST_TEST_REQUIRE(seed.has_value(), why(seed));
  BOOST_TEST(*seed->read_file("/.profile") == "PS1='# '\n");
  check_manifest_sums(dest);
  BOOST_TEST(verify_image_dir(dest).has_value());
}

std::string sha256_of(std::string_view text, const fs::path& scratch) {
  spit(scratch, text);
  auto r = run({"sha256sum", scratch.string()});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.err);
  return r.out.substr(0, 64);
}

} // namespace

BOOST_AUTO_TEST_CASE(debootstrap_cache_key_covers_suite_mirror_and_packages) {
  debootstrap_spec base;
  auto key = debootstrap_cache_key(base);
  BOOST_TEST(key.size() == 64u);
  BOOST_TEST(key.find_first_not_of("0123456789abcdef") == std::string::npos, key);
  auto with = [&](auto change) {
    auto s = base;
    change(s);
    return debootstrap_cache_key(s);
  };
  // The same package set, however spelled, and wherever cached: the same key.
  BOOST_TEST(with([](auto& s) { s.packages = {"curl", "git"}; }) == key); // defaults named again
  BOOST_TEST(with([](auto& s) { s.cache_dir = "/elsewhere"; }) == key);
  BOOST_TEST(with([](auto& s) {
               s.packages = {"procps", "vim"};
             }) == with([](auto& s) {
               s.packages = {"vim", "procps", "vim"};
             }));
  for (auto other :
       {with([](auto& s) { s.suite = "trixie"; }), with([](auto& s) { s.mirror = "http://ftp.de.debian.org/debian"; }),
        with([](auto& s) { s.packages = {"procps"}; })})
    BOOST_TEST(other != key);
}

BOOST_AUTO_TEST_CASE(debootstrap_cache_hit_builds_without_running_debootstrap,
                     *boost::unit_test::precondition(running_as_root{})) {
  auto seed = debian_like_tree(tmp.path / "seed");
  debootstrap_spec spec;
  spec.packages = {"procps"};
  spec.cache_dir = tmp.path / "cache";
  fs::create_directories(spec.cache_dir);
  auto cached = spec.cache_dir / cache_name(spec);
  auto tar = run({"tar", "--numeric-owner", "--xattrs", "--zstd", "-C", seed.string(), "-cf", cached.string(), "."});
  BOOST_TEST_REQUIRE(tar.exit_code == 0, tar.err);
  auto cached_bytes = slurp(cached);
  auto fake = tmp.path / "fake-bin";
  fake_debootstrap(fake, fmt::format("touch '{}'\nexit 1", (tmp.path / "debootstrap-ran").string()));
  path_prepended path(fake);

  std::vector<std::string> stages;
  auto dest = images / "deb";
  auto m = build_debootstrap_image(
    "deb", spec, bins, dest, [&](const std::string& stage, std::uint64_t, std::uint64_t) { stages.push_back(stage); });
  BOOST_TEST_REQUIRE(m.has_value(), why(m));
  BOOST_TEST(has_stage(stages, "cache-hit"), stage_list(stages));
  BOOST_TEST(!has_stage(stages, "debootstrap"), stage_list(stages));
  BOOST_TEST(!fs::exists(tmp.path / "debootstrap-ran"));
  BOOST_TEST(leftovers("deb").empty());
  BOOST_TEST(m->source == "debootstrap:bookworm");
  BOOST_TEST(m->packages == debian_packages);
  BOOST_TEST(m->packages_sha256 == sha256_of("base-files\nbusybox\nopenssh-server", tmp.path / "joined"));
  check_debian_like_image(dest);
  BOOST_TEST((slurp(cached) == cached_bytes)); // a hit leaves the cache alone
  BOOST_TEST(fs::exists(seed / "etc/ssh/ssh_host_ed25519_key"));
}

BOOST_AUTO_TEST_CASE(debootstrap_cache_miss_fills_the_cache_and_the_next_build_hits,
                     *boost::unit_test::precondition(running_as_root{})) {
  auto seed = debian_like_tree(tmp.path / "seed");
  debootstrap_spec spec;
  spec.packages = {"procps"};
  spec.cache_dir = tmp.path / "cache/debootstrap"; // created by the build
  auto fake = tmp.path / "fake-bin";
  auto args = tmp.path / "debootstrap-args";
  fake_debootstrap(fake, copying_debootstrap(seed, args));
  path_prepended path(fake);

  std::vector<std::string> stages;
  auto collect = [&](const std::string& stage, std::uint64_t, std::uint64_t) { stages.push_back(stage); };
  auto first = build_debootstrap_image("deb", spec, bins, images / "first", collect);
  BOOST_TEST_REQUIRE(first.has_value(), why(first));
  BOOST_TEST(has_stage(stages, "debootstrap"), stage_list(stages));
  BOOST_TEST(!has_stage(stages, "cache-hit"), stage_list(stages));
  BOOST_TEST(!has_stage(stages, "cache:"), stage_list(stages)); // no failure to report
  auto argv = slurp(args);
  BOOST_TEST(argv.starts_with("--variant=minbase --include=openssh-server,ca-certificates,curl,git,iproute2,procps "
                              "bookworm " +
                              (images / "first.building-").string()),
             argv);
  BOOST_TEST(argv.ends_with("/tree http://deb.debian.org/debian\n"), argv);
  check_debian_like_image(images / "first");

  // The cache holds exactly one whole file, named by the key, with Debian's tree only.
  std::vector<std::string> cache_files;
  for (auto& e : fs::directory_iterator(spec.cache_dir))
    cache_files.push_back(e.path().filename().string());
  BOOST_TEST_REQUIRE((cache_files == std::vector<std::string>{cache_name(spec)}), cache_files.size() << " files");
  auto unpacked = tmp.path / "unpacked";
  fs::create_directories(unpacked);
  auto x = run({"tar", "--numeric-owner", "--zstd", "-C", unpacked.string(), "-xf",
                (spec.cache_dir / cache_files.front()).string()});
  BOOST_TEST_REQUIRE(x.exit_code == 0, x.err);
  BOOST_TEST(slurp(unpacked / "etc/debian_version") == "12.8\n");
  BOOST_TEST(fs::exists(unpacked / "var/lib/dpkg/status"));
  for (auto* absent : {"etc/ssh/ssh_host_ed25519_key", "etc/hostname", "etc/ssh/sshd_config.d", "usr/local/sbin",
                       "usr/share/doc/busybox", "dev/initctl", "dev/null"})
    BOOST_TEST(!fs::exists(fs::symlink_status(unpacked / absent)), absent << " in the cache");
  struct stat st {};
  BOOST_TEST_REQUIRE(::lstat((unpacked / "home/user/version").c_str(), &st) == 0);
  BOOST_TEST(S_ISLNK(st.st_mode));
  BOOST_TEST(st.st_uid == 1000u);
  BOOST_TEST_REQUIRE(::stat((unpacked / "usr/bin/perl5.36").c_str(), &st) == 0);
  BOOST_TEST(st.st_nlink == 2u);

  // The next build for the same spec never runs debootstrap and makes the same image.
  fake_debootstrap(fake, "exit 1");
  stages.clear();
  auto second = build_debootstrap_image("deb", spec, bins, images / "second", collect);
  BOOST_TEST_REQUIRE(second.has_value(), why(second));
  BOOST_TEST(has_stage(stages, "cache-hit"), stage_list(stages));
  BOOST_TEST(!has_stage(stages, "debootstrap"), stage_list(stages));
  BOOST_TEST(second->packages == first->packages);
  BOOST_TEST(second->packages_sha256 == first->packages_sha256);
  check_debian_like_image(images / "second");

  // Another package set is another key: a miss, and debootstrap (now failing) runs.
  auto other = spec;
  other.packages = {"vim"};
  stages.clear();
  auto third = build_debootstrap_image("deb", other, bins, images / "third", collect);
  BOOST_TEST_REQUIRE(!third.has_value());
  BOOST_TEST(third.err().message.find("debootstrap bookworm") != std::string::npos, third.err().message);
  BOOST_TEST(has_stage(stages, "debootstrap"), stage_list(stages));
  BOOST_TEST(leftovers("second").size() == 1u); // "first" only
}

BOOST_AUTO_TEST_CASE(unusable_debootstrap_cache_files_are_misses_and_are_replaced,
                     *boost::unit_test::precondition(running_as_root{})) {
  auto seed = debian_like_tree(tmp.path / "seed");
  auto fake = tmp.path / "fake-bin";
  fake_debootstrap(fake, copying_debootstrap(seed, tmp.path / "args"));
  path_prepended path(fake);
  debootstrap_spec spec;
  spec.cache_dir = tmp.path / "cache";
  fs::create_directories(spec.cache_dir);
  auto cached = spec.cache_dir / cache_name(spec);
  const std::vector<std::pair<std::string, std::function<void()>>> unusable{
    {"garbage", [&] { spit(cached, std::string(4096, 'x')); }},
    {"empty", [&] { spit(cached, ""); }},
    {"hostile member",
     [&] {
       write_tar(cached, {{"etc", 'd', ""}, {"etc/../../evil", 'f', "x"}});
     }},
    {"no dpkg status",
     [&] {
       write_tar(cached, {{"etc", 'd', ""}, {"etc/debian_version", 'f', "12\n"}});
     }},
  };
  int i = 0;
  for (auto& [what, corrupt] : unusable) {
    BOOST_TEST_CONTEXT(what) {
      corrupt();
      auto bad_bytes = slurp(cached);
      std::vector<std::string> stages;
      auto dest = images / ("deb" + std::to_string(i++));
      auto m =
        build_debootstrap_image("deb", spec, bins, dest, [&](const std::string& stage, std::uint64_t, std::uint64_t) {
          stages.push_back(stage);
        });
      BOOST_TEST_REQUIRE(m.has_value(), why(m));
      BOOST_TEST(has_stage(stages, "cache: " + cached.string() + " unusable"), stage_list(stages));
      BOOST_TEST(has_stage(stages, "debootstrap"), stage_list(stages));
      BOOST_TEST(!has_stage(stages, "cache-hit"), stage_list(stages));
      BOOST_TEST(m->packages == debian_packages);
      check_debian_like_image(dest);
      BOOST_TEST((slurp(cached) != bad_bytes)); // replaced by a good one
      BOOST_TEST(std::distance(fs::directory_iterator(spec.cache_dir), fs::directory_iterator()) == 1);
    }
  }
  BOOST_TEST(!fs::exists(tmp.path / "evil"));

  // The replacement serves the next build.
  fake_debootstrap(fake, "exit 1");
  std::vector<std::string> stages;
  auto hit =
    build_debootstrap_image("deb", spec, bins, images / "hit",
                            [&](const std::string& stage, std::uint64_t, std::uint64_t) { stages.push_back(stage); });
  BOOST_TEST_REQUIRE(hit.has_value(), why(hit));
  BOOST_TEST(has_stage(stages, "cache-hit"), stage_list(stages));
  check_debian_like_image(images / "hit");
}

BOOST_AUTO_TEST_CASE(a_cache_that_cannot_be_written_does_not_fail_the_build,
                     *boost::unit_test::precondition(running_as_root{})) {
  auto seed = debian_like_tree(tmp.path / "seed");
  auto fake = tmp.path / "fake-bin";
  fake_debootstrap(fake, copying_debootstrap(seed, tmp.path / "args"));
  path_prepended path(fake);
  spit(tmp.path / "not-a-dir", "x");
  debootstrap_spec spec;
  spec.cache_dir = tmp.path / "not-a-dir/cache";
  std::vector<std::string> stages;
  auto m =
    build_debootstrap_image("deb", spec, bins, images / "deb",
                            [&](const std::string& stage, std::uint64_t, std::uint64_t) { stages.push_back(stage); });
  BOOST_TEST_REQUIRE(m.has_value(), why(m));
  BOOST_TEST(has_stage(stages, "cache: not written: mkdir " + spec.cache_dir.string()), stage_list(stages));
  check_debian_like_image(images / "deb");
  BOOST_TEST(leftovers("deb").empty());
}

namespace {

/// One pulled layer as the registry would serve it: the tar compressed with `codec`, and the
/// sha256 of the uncompressed tar (its diff_id).
struct built_layer {
  fs::path blob;
  layer_codec codec;
  std::string diff_id;
};

built_layer make_layer(const fs::path& dir, const std::string& name, const std::vector<tar_member>& members,
                       layer_codec codec) {
  auto tar = dir / (name + ".tar");
  if (members.empty())
    spit(tar, ""); // a zero-byte layer, as some builders push for a no-op step
  else
    write_tar(tar, members, &archive_write_add_filter_none);
  auto sum = run({"sha256sum", tar.string()});
  BOOST_TEST_REQUIRE(sum.exit_code == 0, sum.err);
  built_layer out{tar, codec, "sha256:" + sum.out.substr(0, 64)};
  if (codec != layer_codec::none) {
    auto blob = dir / (name + (codec == layer_codec::gzip ? ".tar.gz" : ".tar.zst"));
    auto r = codec == layer_codec::gzip
               ? run({"sh", "-c", "gzip -n -c \"$1\" > \"$2\"", "sh", tar.string(), blob.string()})
               : run({"zstd", "-q", "-f", tar.string(), "-o", blob.string()});
    BOOST_TEST_REQUIRE(r.exit_code == 0, r.err);
    out.blob = blob;
  }
  return out;
}

std::string config_for(const std::vector<built_layer>& layers) {
  nlohmann::json ids = nlohmann::json::array();
  for (auto& l : layers)
    ids.push_back(l.diff_id);
  nlohmann::json j{
    {"architecture", "amd64"},
    {"os", "linux"},
    {"config",
     {{"Env", {"PATH=/usr/bin:/bin", "GREETING=hi"}}, {"WorkingDir", "/srv/app"}, {"Cmd", {"sh", "-c", "echo hi"}}}},
    {"rootfs", {{"type", "layers"}, {"diff_ids", ids}}}};
  return j.dump();
}

struct open_layers {
  std::vector<int> fds;
  ~open_layers() {
    for (int fd : fds)
      ::close(fd);
  }
  oci_image_spec spec(const std::string& name, const std::vector<built_layer>& layers, const std::string& config) {
    oci_image_spec s;
    s.name = name;
    s.origin.reference = "127.0.0.1:5000/test/" + name + ":1";
    s.origin.manifest_digest = "sha256:" + std::string(64, 'f');
    s.config_json = config;
    for (auto& l : layers) {
      int fd = ::open(l.blob.c_str(), O_RDONLY | O_CLOEXEC);
      BOOST_TEST_REQUIRE(fd >= 0);
      fds.push_back(fd);
      s.layers.push_back({fd, l.codec, {"sha256:" + std::string(64, 'e'), fs::file_size(l.blob), ""}});
    }
    return s;
  }
};

} // namespace

BOOST_AUTO_TEST_CASE(oci_layers_flatten_into_ext4_with_whiteouts_and_config) {
  auto dir = tmp.path / "layers";
  fs::create_directories(dir);
  std::vector<built_layer> layers{
    make_layer(dir, "base",
               {{"etc", 'd', ""},
                {"etc/hostname", 'f', "base\n"},
                {"tmp", 'd', ""},
                {"tmp/gone", 'f', "x"},
                {"root", 'd', ""},
                {"root/.profile", 'f', "export A=1\n"},
                {"etc/ssh", 'd', ""},
                {"etc/ssh/ssh_host_ed25519_key", 'f', "secret"}},
               layer_codec::gzip),
    make_layer(dir, "top",
               {{"tmp/.wh.gone", 'f', ""}, {"srv", 'd', ""}, {"srv/app", 'd', ""}, {"etc/motd", 'f', "hello\n"}},
               layer_codec::zstd),
    make_layer(dir, "empty", {}, layer_codec::none),
  };
  open_layers open;
  auto spec = open.spec("app", layers, config_for(layers));
  auto dest = images / "app";
  std::vector<std::string> stages;
  auto m =
    build_oci_image(spec, bins, dest, [&](const std::string& s, std::uint64_t, std::uint64_t) { stages.push_back(s); });
  BOOST_TEST_REQUIRE(m.has_value(), why(m));
  BOOST_TEST(leftovers("app").empty());
  BOOST_TEST(!stages.empty());
  BOOST_TEST(m->source == "registry:127.0.0.1:5000/test/app:1");
  BOOST_TEST_REQUIRE(m->oci.has_value());
  BOOST_TEST_REQUIRE(m->oci->layers.size() == 3u);
  for (std::size_t i = 0; i < layers.size(); ++i)
    BOOST_TEST(m->oci->layers[i].diff_id == layers[i].diff_id);
  BOOST_TEST((m->config.env == std::vector<std::string>{"PATH=/usr/bin:/bin", "GREETING=hi"}));
  BOOST_TEST(m->config.working_dir == "/srv/app");
  BOOST_TEST((m->config.cmd == std::vector<std::string>{"sh", "-c", "echo hi"}));

  check_injected(dest / "rootfs.ext4");
  auto img = ext4_image::open(dest / "rootfs.ext4", false);
  BOOST_TEST_REQUIRE(img.has_value(), why(img));
  BOOST_TEST(*img->read_file("/etc/hostname") == "base\n");
  BOOST_TEST(*img->read_file("/etc/motd") == "hello\n");
  BOOST_TEST(!*img->exists("/tmp/gone"));
  BOOST_TEST(!*img->exists("/tmp/.wh.gone"));
  BOOST_TEST(*img->exists("/srv/app"));
  auto seed = ext4_image::open(dest / "work-seed.ext4", false);
  BOOST_TEST_REQUIRE(seed.has_value(), why(seed));
  BOOST_TEST(*seed->read_file("/.profile") == "export A=1\n");
  auto fsck = run({"e2fsck", "-fn", (dest / "rootfs.ext4").string()});
  BOOST_TEST(fsck.exit_code == 0, fsck.out << fsck.err);

  // The manifest reads back with what the pull recorded, and its sums hold.
  check_manifest_sums(dest);
  auto back = read_image_manifest(dest);
  BOOST_TEST_REQUIRE(back.has_value(), why(back));
  BOOST_TEST_REQUIRE(back->oci.has_value());
  BOOST_TEST(back->oci->reference == "127.0.0.1:5000/test/app:1");
  BOOST_TEST(back->oci->layers[1].diff_id == layers[1].diff_id);
  BOOST_TEST(back->config.working_dir == "/srv/app");
}

BOOST_AUTO_TEST_CASE(oci_layers_that_do_not_match_the_config_leave_nothing) {
  auto dir = tmp.path / "bad-layers";
  fs::create_directories(dir);
  auto good = make_layer(dir, "good", {{"etc", 'd', ""}, {"etc/a", 'f', "a"}}, layer_codec::gzip);
  auto other = make_layer(dir, "other", {{"etc", 'd', ""}, {"etc/b", 'f', "b"}}, layer_codec::gzip);

  struct bad_case {
    std::string name;
    std::vector<built_layer> layers;
    std::string config;
    std::string expect; // in the message
  };
  auto wrong_id = good;
  wrong_id.diff_id = other.diff_id;
  auto mislabelled = good; // gzip bytes served as an uncompressed tar
  mislabelled.codec = layer_codec::none;
  auto zstd_label = good; // gzip bytes served as zstd
  zstd_label.codec = layer_codec::zstd;
  auto cut = good; // the blob cut short mid-stream
  cut.blob = dir / "cut.tar.gz";
  spit(cut.blob, slurp(good.blob).substr(0, fs::file_size(good.blob) / 2));
  std::vector<bad_case> cases{
    {"wrongid", {wrong_id}, config_for({wrong_id}), "diff_ids"},
    {"mislabelled", {mislabelled}, config_for({good}), ""},
    {"zstdlabel", {zstd_label}, config_for({good}), ""},
    {"cut", {cut}, config_for({good}), ""},
    {"count", {good}, config_for({good, other}), "diff_ids"},
    {"notjson", {good}, "{", ""},
    {"badenv",
     {good},
     R"({"rootfs":{"type":"layers","diff_ids":[")" + good.diff_id + R"("]},"config":{"Env":[1]}})",
     ""},
  };
  for (auto& c : cases) {
    BOOST_TEST_CONTEXT(c.name) {
      open_layers open;
      auto m = build_oci_image(open.spec(c.name, c.layers, c.config), bins, images / c.name, {});
      BOOST_TEST_REQUIRE(!m.has_value());
      if (!c.expect.empty())
        BOOST_TEST(m.err().message.find(c.expect) != std::string::npos, m.err().message);
      BOOST_TEST(leftovers().empty());
    }
  }
}

// The caps a pull is held to (config.toml's [images]) stop a decompression bomb as it inflates,
// a declared size past the cap before any of it is read, and an entry flood as it is read,
// each naming its cap; nothing is left.
BOOST_AUTO_TEST_CASE(oci_layer_caps_stop_bombs_and_floods) {
  auto dir = tmp.path / "capped-layers";
  fs::create_directories(dir);
  // A bomb whose headers declare nothing much: a tiny tar, then 48 MiB of zero blocks (valid
  // end-of-archive padding) that gzip makes about 48 KiB.
  auto bomb_tar = dir / "bomb.tar";
  write_tar(bomb_tar, {{"small", 'f', "s"}}, &archive_write_add_filter_none);
  { std::ofstream(bomb_tar, std::ios::app | std::ios::binary) << std::string(48u << 20, '\0'); }
  auto sum = run({"sha256sum", bomb_tar.string()});
  BOOST_TEST_REQUIRE(sum.exit_code == 0, sum.err);
  BOOST_TEST_REQUIRE(run({"sh", "-c", "gzip -n -c \"$1\" > \"$1.gz\"", "sh", bomb_tar.string()}).exit_code == 0);
  built_layer bomb{fs::path(bomb_tar.string() + ".gz"), layer_codec::gzip, "sha256:" + sum.out.substr(0, 64)};
  BOOST_TEST(fs::file_size(bomb.blob) < (1u << 20));
  auto big = make_layer(dir, "big", {{"zeros", 'f', std::string(12u << 20, '\0')}}, layer_codec::gzip);
  {
    open_layers open;
    auto spec = open.spec("bomb", {bomb}, config_for({bomb}));
    spec.max_layer_bytes = 8u << 20;
    auto m = build_oci_image(spec, bins, images / "bomb", {});
    BOOST_TEST_REQUIRE(!m.has_value());
    BOOST_TEST(m.err().message.find("uncompresses to more than 8388608 bytes") != std::string::npos, m.err().message);
    BOOST_TEST(m.err().message.find("max_layer_bytes") != std::string::npos, m.err().message);
    BOOST_TEST(leftovers().empty());
  }
  {
    open_layers open;
    auto spec = open.spec("big", {big}, config_for({big}));
    spec.max_layer_bytes = 8u << 20;
    auto m = build_oci_image(spec, bins, images / "big", {});
    BOOST_TEST_REQUIRE(!m.has_value());
    BOOST_TEST(m.err().message.find("entry \"zeros\": the layer's files would pass 8388608 bytes") != std::string::npos,
               m.err().message);
    BOOST_TEST(leftovers().empty());
  }
  std::vector<tar_member> many;
  for (int i = 0; i < 40; ++i)
    many.push_back({fmt::format("f{}", i), 'f', "x"});
  auto flood = make_layer(dir, "flood", many, layer_codec::zstd);
  {
    open_layers open;
    auto spec = open.spec("bomb", {bomb}, config_for({bomb}));
    spec.max_layer_bytes = 8u << 20;
    auto m = build_oci_image(spec, bins, images / "bomb", {});
    BOOST_TEST_REQUIRE(!m.has_value());
    BOOST_TEST(m.err().message.find("uncompresses to more than 8388608 bytes") != std::string::npos, m.err().message);
    BOOST_TEST(m.err().message.find("max_layer_bytes") != std::string::npos, m.err().message);
    BOOST_TEST(leftovers().empty());
  }
  {
    open_layers open;
    auto spec = open.spec("flood", {flood}, config_for({flood}));
    spec.max_entries_per_layer = 25;
    auto m = build_oci_image(spec, bins, images / "flood", {});
    BOOST_TEST_REQUIRE(!m.has_value());
    BOOST_TEST(m.err().message.find("more than 25 entries") != std::string::npos, m.err().message);
    BOOST_TEST(m.err().message.find("max_layer_entries") != std::string::npos, m.err().message);
    BOOST_TEST(leftovers().empty());
  }
  { // under the caps, the same layers are fine
    open_layers open;
    auto m =
      build_oci_image(open.spec("fine", {bomb, big, flood}, config_for({bomb, big, flood})), bins, images / "fine", {});
    BOOST_TEST_REQUIRE(m.has_value(), why(m));
  }
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace banger::guestfs
