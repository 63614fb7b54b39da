// Tests of kernel directory assembly on synthetic package trees and packages: the PVH and the
// bzImage outcome, the manifest's sha256s (checked against sha256sum(1)), verification catching
// a changed file, and refusals that leave nothing behind.
#include <boost/test/unit_test.hpp>

#include <functional>

#include <nlohmann/json.hpp>

#include "guestfs/kernel_dir.hpp"
#include "guestfs/kernel_fixtures.test.hpp"
#include "tests/support/proc.hpp"

namespace banger::guestfs {

namespace {

namespace fs = std::filesystem;
using banger::test::temp_dir;
using fixtures::slurp;
using fixtures::why;
using fixtures::write;

/// An extracted package tree for kernel "x" whose modules a -> b; the guest wants "a".
fs::path package_tree(const fs::path& root, const std::string& vmlinuz) {
  write(root / "boot/vmlinuz-x", vmlinuz);
  write(root / "boot/config-x", "CONFIG_PVH=y\n");
  write(root / "lib/modules/x/kernel/a.ko", fixtures::module_elf("a", "b"));
  write(root / "lib/modules/x/kernel/b.ko", fixtures::module_elf("b", ""));
  return root;
}

kernel_dir_spec spec_for(const fs::path& tree) {
  kernel_dir_spec s;
  s.name = "test-kernel";
  s.source = "test:synthetic";
  s.extracted = tree;
  s.modules = {"a"};
  return s;
}

std::string sha256sum(const fs::path& p) {
  auto r = banger::test::run({"sha256sum", p.string()});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.err);
  return r.out.substr(0, 64);
}

} // namespace

BOOST_AUTO_TEST_SUITE(kernel_dir)

BOOST_AUTO_TEST_CASE(pvh_kernel_directory_with_manifest) {
  temp_dir tmp;
  auto tree = package_tree(tmp.path / "tree", fixtures::pvh_bzimage(compression::lz4_legacy));
  auto dest = tmp.path / "kernels/test-kernel";
  fs::create_directories(dest.parent_path());
  auto m = assemble_kernel_dir(spec_for(tree), dest);
  BOOST_TEST_REQUIRE(m.has_value(), why(m));
  BOOST_TEST((m->format == kernel_format::pvh_elf));
  BOOST_TEST(m->kernel_version == "x");
  BOOST_TEST(slurp(dest / "vmlinux") == fixtures::elf_with_note());
  BOOST_TEST(!fs::exists(dest / "bzImage"));
  BOOST_TEST(slurp(dest / "config") == "CONFIG_PVH=y\n");

  auto j = nlohmann::json::parse(slurp(dest / "manifest.json"));
  BOOST_TEST(j["name"] == "test-kernel");
  BOOST_TEST(j["kernel_version"] == "x");
  BOOST_TEST(j["source"] == "test:synthetic");
  BOOST_TEST(j["format"] == "pvh-elf");
  BOOST_TEST_REQUIRE(j["files"].size() == 3u);
  std::vector<std::string> listed;
  for (auto& f : j["files"]) {
    listed.push_back(f["name"]);
    BOOST_TEST(f["sha256"] == sha256sum(dest / f["name"].get<std::string>()));
    BOOST_TEST(f["size"] == fs::file_size(dest / f["name"].get<std::string>()));
  }
  BOOST_TEST(listed == (std::vector<std::string>{"config", "initrd.img", "vmlinux"}), boost::test_tools::per_element());

  auto v = verify_kernel_dir(dest);
  BOOST_TEST_REQUIRE(v.has_value(), why(v));
  BOOST_TEST((v->files == m->files));
  // Only the kernel directory is left: no staging directories.
  BOOST_TEST(std::distance(fs::directory_iterator(dest.parent_path()), fs::directory_iterator()) == 1);

  // A changed byte is caught and named.
  auto initrd = slurp(dest / "initrd.img");
  initrd[initrd.size() / 2] ^= 1;
  fs::remove(dest / "initrd.img");
  write(dest / "initrd.img", initrd);
  v = verify_kernel_dir(dest);
  BOOST_TEST_REQUIRE(!v.has_value());
  BOOST_TEST(v.err().message.find("initrd.img has sha256") != std::string::npos, v.err().message);
}

// A manifest is outside input (catalog bundles carry one): fields of the wrong type are refused
// with a message. A "size": "1" used to throw out of the parser, and the job's worker with it,
// leaving `kernel pull` waiting for hours.
BOOST_AUTO_TEST_CASE(a_manifest_with_mistyped_fields_is_refused_not_thrown) {
  temp_dir tmp;
  auto tree = package_tree(tmp.path / "tree", fixtures::pvh_bzimage());
  auto dest = tmp.path / "k";
  BOOST_TEST_REQUIRE(assemble_kernel_dir(spec_for(tree), dest).has_value());
  auto good = nlohmann::json::parse(slurp(dest / "manifest.json"));
  auto with = [&](auto edit) {
    auto j = good;
    edit(j);
    fs::remove(dest / "manifest.json");
    write(dest / "manifest.json", j.dump());
    return verify_kernel_dir(dest);
  };
  auto size_text = with([](nlohmann::json& j) { j["files"][0]["size"] = "1"; });
  BOOST_TEST_REQUIRE(!size_text.has_value());
  BOOST_TEST((size_text.err().code == errc::bad_request));
  BOOST_TEST(size_text.err().message.find("whole-number size") != std::string::npos, size_text.err().message);
  for (auto edit : std::vector<std::function<void(nlohmann::json&)>>{
         [](nlohmann::json& j) { j["name"] = 7; }, [](nlohmann::json& j) { j["format"] = nlohmann::json::array(); },
         [](nlohmann::json& j) { j["files"][0]["sha256"] = 1; }, [](nlohmann::json& j) { j["files"][0]["size"] = -1; },
         [](nlohmann::json& j) { j["files"][0].erase("size"); }}) {
    auto r = with(edit);
    BOOST_TEST(!r.has_value());
    if (!r)
      BOOST_TEST((r.err().code == errc::bad_request), r.err().message);
  }
  BOOST_TEST(with([](nlohmann::json&) {}).has_value()); // the manifest as written still verifies
}

BOOST_AUTO_TEST_CASE(non_pvh_kernel_keeps_the_bzimage) {
  temp_dir tmp;
  auto elf = fixtures::elf_header();
  auto image = fixtures::bzimage(fixtures::compress(compression::gzip, elf), static_cast<std::uint32_t>(elf.size()));
  auto tree = package_tree(tmp.path / "tree", image);
  auto m = assemble_kernel_dir(spec_for(tree), tmp.path / "k");
  BOOST_TEST_REQUIRE(m.has_value(), why(m));
  BOOST_TEST((m->format == kernel_format::bzimage));
  BOOST_TEST(m->why_not_pvh.find("PVH") != std::string::npos, m->why_not_pvh);
  BOOST_TEST(slurp(tmp.path / "k/bzImage") == image);
  BOOST_TEST(!fs::exists(tmp.path / "k/vmlinux"));
  BOOST_TEST(verify_kernel_dir(tmp.path / "k").has_value());
}

BOOST_AUTO_TEST_CASE(refusals_leave_nothing_behind) {
  temp_dir tmp;
  auto tree = package_tree(tmp.path / "tree", fixtures::pvh_bzimage());
  auto out = tmp.path / "out";
  fs::create_directory(out);

  auto s = spec_for(tree);
  s.modules = {"a", "virtio_blk"};
  auto m = assemble_kernel_dir(s, out / "k");
  BOOST_TEST_REQUIRE(!m.has_value());
  BOOST_TEST((m.err().code == errc::not_found));
  BOOST_TEST(m.err().message.find("virtio_blk") != std::string::npos, m.err().message);

  write(tree / "boot/vmlinuz-y", "second kernel");
  m = assemble_kernel_dir(spec_for(tree), out / "k");
  BOOST_TEST_REQUIRE(!m.has_value());
  BOOST_TEST(m.err().message.find("exactly one") != std::string::npos, m.err().message);
  fs::remove(tree / "boot/vmlinuz-y");

  write(tree / "boot/vmlinuz-x", "garbage");
  m = assemble_kernel_dir(spec_for(tree), out / "k");
  BOOST_TEST_REQUIRE(!m.has_value());
  BOOST_TEST(m.err().message.find("not a bzImage") != std::string::npos, m.err().message);
  BOOST_TEST(fs::is_empty(out));

  fs::create_directory(out / "k");
  m = assemble_kernel_dir(spec_for(tree), out / "k");
  BOOST_TEST_REQUIRE(!m.has_value());
  BOOST_TEST((m.err().code == errc::already_exists));
}

BOOST_AUTO_TEST_CASE(imports_a_deb) {
  temp_dir tmp;
  auto pkg = package_tree(tmp.path / "pkg", fixtures::pvh_bzimage(compression::xz));
  write(pkg / "DEBIAN/control", "Package: linux-image-x\nVersion: 1.0\nArchitecture: amd64\n"
                                "Maintainer: banger tests <t@example.org>\nDescription: test kernel\n");
  auto r =
    banger::test::run({"dpkg-deb", "--root-owner-group", "--build", pkg.string(), (tmp.path / "k.deb").string()});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.err);
  fs::create_directory(tmp.path / "kernels");
  auto m = import_kernel_deb(tmp.path / "k.deb", spec_for({}), tmp.path / "kernels/x");
  BOOST_TEST_REQUIRE(m.has_value(), why(m));
  BOOST_TEST((m->format == kernel_format::pvh_elf));
  BOOST_TEST(verify_kernel_dir(tmp.path / "kernels/x").has_value());
  BOOST_TEST(std::distance(fs::directory_iterator(tmp.path / "kernels"), fs::directory_iterator()) == 1);

  // A hostile package is refused before anything is assembled.
  fixtures::write_deb(tmp.path / "bad.deb", {{"boot/vmlinuz-x", 'f', "k", {}}, {"../evil", 'f', "x", {}}});
  m = import_kernel_deb(tmp.path / "bad.deb", spec_for({}), tmp.path / "kernels/bad");
  BOOST_TEST_REQUIRE(!m.has_value());
  BOOST_TEST(std::distance(fs::directory_iterator(tmp.path / "kernels"), fs::directory_iterator()) == 1);
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace banger::guestfs
