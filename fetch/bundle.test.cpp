// Bundle round trips, and hostile bundles built here with libarchive: each must be refused
// with nothing left beside the destination.
#include "fetch/bundle.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <archive.h>
#include <archive_entry.h>
#include <boost/test/unit_test.hpp>

#include "common/sha256.hpp"
#include "fetch/test_support.hpp"
#include "tests/support/proc.hpp"

using namespace banger;
using namespace banger::fetch;
using namespace banger::fetch::test_support;
namespace fs = std::filesystem;

namespace {

// One member of a hand-made archive.
struct raw_member {
  raw_member(std::string n, std::string d, unsigned t = AE_IFREG, std::string l = {}, std::string h = {})
    : name(std::move(n)), data(std::move(d)), type(t), link(std::move(l)), hardlink(std::move(h)) {}
  std::string name;
  std::string data;
  unsigned type = AE_IFREG;
  std::string link;                // symlink target
  std::string hardlink;            // hard link target
  std::int64_t declared_size = -1; // header size; -1: data.size()
};

// Writes `members` as a tar.zst (pax) at `out`, exactly as given.
void make_bundle(const fs::path& out, const std::vector<raw_member>& members, bool zstd = true) {
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (zstd)
    archive_write_add_filter_zstd(a);
  BOOST_REQUIRE(archive_write_open_filename(a, out.c_str()) == ARCHIVE_OK);
  for (const auto& m : members) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, m.name.c_str());
    archive_entry_set_filetype(e, m.type);
    archive_entry_set_perm(e, 0644);
    if (!m.link.empty())
      archive_entry_set_symlink(e, m.link.c_str());
    if (!m.hardlink.empty())
      archive_entry_set_hardlink(e, m.hardlink.c_str());
    if (m.type == AE_IFCHR)
      archive_entry_set_rdev(e, makedev(1, 3));
    bool has_data = m.type == AE_IFREG && m.hardlink.empty();
    archive_entry_set_size(e, m.declared_size >= 0 ? m.declared_size
                                                   : static_cast<std::int64_t>(has_data ? m.data.size() : 0));
    BOOST_REQUIRE_MESSAGE(archive_write_header(a, e) == ARCHIVE_OK, archive_error_string(a));
    if (has_data && !m.data.empty())
      archive_write_data(a, m.data.data(), m.data.size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
}

raw_member manifest() { return raw_member{"manifest.json", R"({"name":"demo"})"}; }

struct fixture {
  test::temp_dir tmp{"banger-bundle"};
  fs::path bundles = tmp.path / "bundles";
  fs::path kernels = tmp.path / "kernels";
  fixture() {
    fs::create_directory(bundles);
    fs::create_directory(kernels);
  }

  // Extracts `members` with `cap` and expects a bad_request mentioning `part`, and an empty
  // kernels directory afterwards.
  void expect_refused(const std::vector<raw_member>& members, const std::string& part, std::uint64_t cap = 1 << 20) {
    auto b = bundles / "hostile.tar.zst";
    fs::remove(b);
    make_bundle(b, members);
    auto r = extract_bundle(b, kernels / "demo", cap);
    BOOST_REQUIRE_MESSAGE(!r.has_value(), "accepted a bundle that should fail with " << part);
    BOOST_TEST_MESSAGE(r.err().message);
    BOOST_TEST(static_cast<int>(r.err().code) == static_cast<int>(errc::bad_request));
    BOOST_TEST(r.err().message.find(part) != std::string::npos, r.err().message << " lacks " << part);
    BOOST_TEST(listing(kernels).empty());
    BOOST_TEST(!fs::exists(tmp.path / "x"));
    BOOST_TEST(!fs::exists("/abs-banger-test"));
  }
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(bundle, fixture)

BOOST_AUTO_TEST_CASE(round_trip) {
  auto src = tmp.path / "src";
  fs::create_directory(src);
  std::string kernel(300000, '\0');
  for (std::size_t i = 0; i < kernel.size(); ++i)
    kernel[i] = static_cast<char>((i * 7919) >> 3);
  write_text(src / "vmlinux", kernel);
  write_text(src / "initrd.img", "initrd bytes");
  write_text(src / "manifest.json", R"({"name":"demo"})");
  write_text(src / "not-bundled", "left out");

  auto names = list_bundle_files(src);
  BOOST_REQUIRE_MESSAGE(names.has_value(), why(names));
  BOOST_TEST(*names == (std::vector<std::string>{"initrd.img", "manifest.json", "not-bundled", "vmlinux"}));
  fs::create_symlink("vmlinux", src / "link");
  BOOST_TEST(!list_bundle_files(src).has_value());
  BOOST_TEST(!list_bundle_files(tmp.path / "nope").has_value());

  auto out = bundles / "demo.tar.zst";
  auto w = write_bundle(src, {"manifest.json", "vmlinux", "initrd.img"}, out);
  BOOST_REQUIRE_MESSAGE(w.has_value(), why(w));
  BOOST_TEST(w->sha256 == *sha256_file(out));
  BOOST_TEST(w->size == fs::file_size(out));
  BOOST_TEST(listing(bundles) == std::vector<std::string>{"demo.tar.zst"});

  // The same files make the same bundle.
  auto again = write_bundle(src, {"manifest.json", "vmlinux", "initrd.img"}, bundles / "again.tar.zst");
  BOOST_REQUIRE(again.has_value());
  BOOST_TEST(again->sha256 == w->sha256);

  auto r = extract_bundle(out, kernels / "demo", 1 << 20);
  BOOST_REQUIRE_MESSAGE(r.has_value(), why(r));
  BOOST_TEST(r->size() == 3u);
  BOOST_TEST(((*r)[1] == bundle_member{"vmlinux", kernel.size()}));
  BOOST_TEST(listing(kernels) == std::vector<std::string>{"demo"});
  BOOST_TEST(listing(kernels / "demo") == (std::vector<std::string>{"initrd.img", "manifest.json", "vmlinux"}));
  BOOST_TEST(read_text(kernels / "demo" / "vmlinux") == kernel);
  BOOST_TEST(read_text(kernels / "demo" / "initrd.img") == "initrd bytes");
  struct stat st {};
  BOOST_REQUIRE(::stat((kernels / "demo").c_str(), &st) == 0);
  BOOST_TEST((st.st_mode & 07777) == 0755u);

  // The destination is never replaced.
  auto twice = extract_bundle(out, kernels / "demo", 1 << 20);
  BOOST_REQUIRE(!twice.has_value());
  BOOST_TEST(static_cast<int>(twice.err().code) == static_cast<int>(errc::already_exists));
  BOOST_TEST(listing(kernels) == std::vector<std::string>{"demo"});
}

BOOST_AUTO_TEST_CASE(write_refuses_bad_inputs) {
  auto src = tmp.path / "src";
  fs::create_directories(src / "sub");
  write_text(src / "manifest.json", "{}");
  write_text(src / "vmlinux", "k");
  write_text(src / "sub" / "f", "f");
  fs::create_symlink("vmlinux", src / "link");
  auto out = bundles / "b.tar.zst";

  auto no_manifest = write_bundle(src, {"vmlinux"}, out);
  BOOST_REQUIRE(!no_manifest.has_value());
  BOOST_TEST(no_manifest.err().message.find("manifest.json") != std::string::npos);
  BOOST_TEST(!write_bundle(src, {"manifest.json", "link"}, out).has_value());
  BOOST_TEST(!write_bundle(src, {"manifest.json", "sub"}, out).has_value());
  BOOST_TEST(!write_bundle(src, {"manifest.json", "sub/f"}, out).has_value());
  BOOST_TEST(!write_bundle(src, {"manifest.json", "../src/vmlinux"}, out).has_value());
  BOOST_TEST(!write_bundle(src, {"manifest.json", "vmlinux", "vmlinux"}, out).has_value());
  auto missing = write_bundle(src, {"manifest.json", "initrd.img"}, out);
  BOOST_REQUIRE(!missing.has_value());
  BOOST_TEST(static_cast<int>(missing.err().code) == static_cast<int>(errc::not_found));
  BOOST_TEST(listing(bundles).empty());

  write_text(out, "already here");
  auto exists = write_bundle(src, {"manifest.json"}, out);
  BOOST_REQUIRE(!exists.has_value());
  BOOST_TEST(static_cast<int>(exists.err().code) == static_cast<int>(errc::already_exists));
  BOOST_TEST(read_text(out) == "already here");
  BOOST_TEST(listing(bundles) == std::vector<std::string>{"b.tar.zst"});
}

BOOST_AUTO_TEST_CASE(member_names) {
  for (const char* ok : {"vmlinux", "initrd.img", "manifest.json", "config-6.1+b1", "A_b-c"})
    BOOST_TEST(check_member_name(ok).has_value(), ok);
  for (const char* bad : {"", ".", "..", "../x", "a/../b", "/abs", "sub/f", "sub/", ".hidden", "sp ace", "a\\b"})
    BOOST_TEST(!check_member_name(bad).has_value(), bad);
  BOOST_TEST(!check_member_name(std::string(129, 'a')).has_value());
}

BOOST_AUTO_TEST_CASE(refuses_dot_dot) { expect_refused({manifest(), {"../x", "escaped"}}, "\"..\""); }

BOOST_AUTO_TEST_CASE(refuses_absolute_paths) {
  expect_refused({manifest(), {"/abs-banger-test", "escaped"}}, "absolute");
}

BOOST_AUTO_TEST_CASE(refuses_symlinks) {
  raw_member link{"vmlinux", "", AE_IFLNK, "/etc/passwd"};
  expect_refused({manifest(), link}, "symlink");
}

BOOST_AUTO_TEST_CASE(refuses_hard_links) {
  raw_member link{"vmlinux", "", AE_IFREG, "", "manifest.json"};
  expect_refused({manifest(), link}, "hard link");
}

BOOST_AUTO_TEST_CASE(refuses_devices) {
  raw_member dev{"null", "", AE_IFCHR};
  expect_refused({manifest(), dev}, "device");
}

BOOST_AUTO_TEST_CASE(refuses_subdirectories) {
  expect_refused({manifest(), {"sub", "", AE_IFDIR}}, "directory");
  expect_refused({manifest(), {"sub/vmlinux", "k"}}, "subdirectory");
}

BOOST_AUTO_TEST_CASE(refuses_duplicates) { expect_refused({manifest(), {"vmlinux", "a"}, {"vmlinux", "b"}}, "twice"); }

BOOST_AUTO_TEST_CASE(refuses_a_missing_manifest) { expect_refused({{"vmlinux", "k"}}, "manifest.json"); }

BOOST_AUTO_TEST_CASE(refuses_contents_over_the_cap) {
  expect_refused({manifest(), {"vmlinux", std::string(5000, 'k')}}, "cap", 1000);
  // The cap is on the total, not per member.
  expect_refused({manifest(), {"a", std::string(600, 'a')}, {"b", std::string(600, 'b')}}, "cap", 1000);
}

BOOST_AUTO_TEST_CASE(refuses_too_many_members) {
  std::vector<raw_member> many{manifest()};
  for (std::size_t i = 0; i < max_bundle_members; ++i)
    many.push_back({"f" + std::to_string(i), "x"});
  expect_refused(many, "members");
}

BOOST_AUTO_TEST_CASE(refuses_garbage_and_truncated_bundles) {
  auto garbage = bundles / "garbage.tar.zst";
  write_text(garbage, std::string(4096, 'G'));
  BOOST_TEST(!extract_bundle(garbage, kernels / "demo", 1 << 20).has_value());
  BOOST_TEST(listing(kernels).empty());

  auto full = bundles / "full.tar.zst";
  std::string big(200000, '\0');
  for (std::size_t i = 0; i < big.size(); ++i)
    big[i] = static_cast<char>((i * 2654435761u) >> 13);
  make_bundle(full, {manifest(), {"vmlinux", big}});
  std::string bytes = read_text(full);
  auto cut = bundles / "cut.tar.zst";
  write_text(cut, bytes.substr(0, bytes.size() / 2));
  auto r = extract_bundle(cut, kernels / "demo", 1 << 20);
  BOOST_REQUIRE(!r.has_value());
  BOOST_TEST_MESSAGE(r.err().message);
  BOOST_TEST(listing(kernels).empty());

  auto missing = extract_bundle(bundles / "missing.tar.zst", kernels / "demo", 1 << 20);
  BOOST_TEST(!missing.has_value());
  BOOST_TEST(listing(kernels).empty());
}

BOOST_AUTO_TEST_SUITE_END()
