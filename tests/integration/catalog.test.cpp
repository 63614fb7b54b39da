// The catalog (actors/catalog.hpp) with the real CLI and daemon: `image rm` raced against
// `vm create` never ends with a VM whose image is gone, and reads answer from the projection,
// current to the last commit. VMs are created without a start (no QEMU, no helper), from a
// synthetic kernel and a one-file image tree.
#include <future>

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "guestfs/kernel_fixtures.test.hpp"
#include "tests/support/proc.hpp"
#include "tests/support/sandbox.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace banger;
using test::sandbox;

BOOST_AUTO_TEST_SUITE(catalog)

BOOST_AUTO_TEST_CASE(image_rm_raced_against_vm_create_never_leaves_a_vm_without_its_image) {
  test::temp_dir work{"banger-catalog-race"};
  guestfs::fixtures::write(work.path / "vmlinux", guestfs::fixtures::elf_with_note());
  guestfs::fixtures::write(work.path / "initrd.img", std::string(4096, 'i'));
  fs::create_directories(work.path / "tree" / "etc");
  guestfs::fixtures::write(work.path / "tree" / "etc" / "hostname", "race\n");
  sandbox sb;
  auto k = sb.banger({"kernel", "import", "default", "--vmlinux", (work.path / "vmlinux").string(), "--initrd",
                      (work.path / "initrd.img").string()});
  BOOST_TEST_REQUIRE(k.exit_code == 0, k.err);
  int created = 0, removed = 0;
  for (int round = 0; round < 12; ++round) {
    auto i = sb.banger({"image", "import", "img", "--dir", (work.path / "tree").string()});
    BOOST_TEST_REQUIRE(i.exit_code == 0, i.err);
    std::string vm = "race-" + std::to_string(round);
    // Both at once; which wins varies with the round.
    auto create = std::async(std::launch::async, [&] {
      return sb.banger({"vm", "create", "--no-start", "--name", vm, "--image", "img", "--json"});
    });
    if (round % 2)
      std::this_thread::sleep_for(std::chrono::milliseconds(round * 3));
    auto rm = sb.banger({"image", "rm", "img", "--json"});
    auto c = create.get();
    bool vm_made = c.exit_code == 0, image_gone = rm.exit_code == 0;
    // Exactly one of them wins: a VM made from the image keeps it; a removed image is not used.
    BOOST_TEST(vm_made != image_gone, "round " << round << ": create " << c.out << c.err << " rm " << rm.out << rm.err);
    auto shown = sb.banger({"image", "show", "img", "--json"});
    if (vm_made) {
      ++created;
      BOOST_TEST(shown.exit_code == 0, "round " << round << ": VM " << vm << " exists but its image is gone");
      BOOST_TEST(rm.out.find("used by") != std::string::npos, rm.out);
      BOOST_TEST(sb.banger({"vm", "delete", vm}).exit_code == 0);
      BOOST_TEST(sb.banger({"image", "rm", "img"}).exit_code == 0);
    } else {
      ++removed;
      BOOST_TEST(shown.exit_code != 0, "round " << round << ": the image was removed, yet it shows");
      BOOST_TEST(sb.banger({"vm", "show", vm}).exit_code != 0);
    }
  }
  BOOST_TEST_MESSAGE("creates won " << created << " rounds, removals " << removed);
  BOOST_TEST(sb.banger({"vm", "list", "-a", "--json"}).out == "[]\n");
}

BOOST_AUTO_TEST_CASE(a_list_right_after_a_create_shows_the_vm) {
  test::temp_dir work{"banger-catalog-list"};
  guestfs::fixtures::write(work.path / "vmlinux", guestfs::fixtures::elf_with_note());
  guestfs::fixtures::write(work.path / "initrd.img", std::string(4096, 'i'));
  fs::create_directories(work.path / "tree");
  guestfs::fixtures::write(work.path / "tree" / "f", "x");
  sandbox sb;
  BOOST_TEST_REQUIRE(sb.banger({"kernel", "import", "default", "--vmlinux", (work.path / "vmlinux").string(),
                                "--initrd", (work.path / "initrd.img").string()})
                       .exit_code == 0);
  BOOST_TEST_REQUIRE(sb.banger({"image", "import", "default", "--dir", (work.path / "tree").string()}).exit_code == 0);
  for (int i = 0; i < 5; ++i) {
    auto name = "l" + std::to_string(i);
    BOOST_TEST_REQUIRE(sb.banger({"vm", "create", "--no-start", "--name", name}).exit_code == 0);
    auto list = json::parse(sb.banger({"vm", "list", "-a", "--json"}).out);
    BOOST_TEST(list.size() == static_cast<std::size_t>(i + 1));
    BOOST_TEST(list.back()["name"] == name);
    BOOST_TEST(list.back()["state"] == "stopped");
  }
  BOOST_TEST(sb.banger({"vm", "delete", "l0"}).exit_code == 0);
  BOOST_TEST(json::parse(sb.banger({"vm", "list", "-a", "--json"}).out).size() == 4u);
  auto gone = sb.banger({"vm", "show", "l0"});
  BOOST_TEST(gone.err.find("no VM named l0") != std::string::npos, gone.err);
}

BOOST_AUTO_TEST_SUITE_END()
