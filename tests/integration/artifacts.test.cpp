// Kernels and images through the real CLI and daemon: busybox image builds (seconds), versions,
// joined concurrent builds, journal events, refusals that leave nothing behind, removal.
#include <algorithm>
#include <fstream>
#include <future>

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "tests/support/sandbox.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace banger;
using test::json_lines;
using test::sandbox;

namespace {

/// Entries of a directory that are not in `before`, to show nothing was left behind.
std::vector<std::string> listing(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  if (fs::exists(dir, ec))
    for (const auto& e : fs::recursive_directory_iterator(dir, ec))
      out.push_back(e.path().lexically_relative(dir).string());
  std::sort(out.begin(), out.end());
  return out;
}

} // namespace

BOOST_AUTO_TEST_SUITE(artifacts)

BOOST_AUTO_TEST_CASE(busybox_image_build_list_show_rebuild_remove) {
  sandbox sb;
  auto b = sb.banger({"image", "build", "tiny", "--busybox", "--json"});
  BOOST_REQUIRE_MESSAGE(b.exit_code == 0, b.out + b.err);
  auto built = json::parse(b.out);
  std::string v1 = built["current"];
  BOOST_TEST(v1.size() == 16u);
  fs::path dir = built["path"].get<std::string>();
  BOOST_TEST(dir == sb.state() / "images" / "tiny" / v1);
  for (const char* f : {"rootfs.ext4", "work-seed.ext4", "manifest.json"})
    BOOST_TEST(fs::exists(dir / f), f);

  auto list = json::parse(sb.banger({"image", "list", "--json"}).out);
  BOOST_REQUIRE(list.size() == 1u);
  BOOST_TEST(list[0]["name"] == "tiny");

  auto show = sb.banger({"image", "show", "tiny", "--json"});
  BOOST_REQUIRE_MESSAGE(show.exit_code == 0, show.err);
  auto s = json::parse(show.out);
  BOOST_TEST(s["manifest"]["files"].size() >= 2u);
  BOOST_TEST(s["versions"].size() == 1u);

  // A rebuild makes a new version (the manifest records the build time); the old one stays.
  auto b2 = sb.banger({"image", "build", "tiny", "--busybox", "--json"});
  BOOST_REQUIRE_MESSAGE(b2.exit_code == 0, b2.err);
  std::string v2 = json::parse(b2.out)["current"];
  BOOST_TEST(v2 != v1);
  BOOST_TEST(json::parse(b2.out)["versions"].size() == 2u);
  BOOST_TEST(fs::exists(sb.state() / "images" / "tiny" / v1));

  // Every step is journaled on the image's stream.
  auto evs = json_lines(sb.banger({"events", "--json", "--stream", "image/tiny"}).out);
  std::vector<std::string> kinds;
  for (const auto& e : evs)
    kinds.push_back(e["kind"]);
  BOOST_TEST(kinds.front() == "artifact_started");
  BOOST_TEST(std::count(kinds.begin(), kinds.end(), "artifact_ready") == 2);
  BOOST_TEST(std::count(kinds.begin(), kinds.end(), "artifact_stage") >= 2);
  BOOST_TEST(evs.front()["op_id"].get<std::string>().rfind("op-", 0) == 0u);

  auto rm = sb.banger({"image", "rm", "tiny"});
  BOOST_REQUIRE_MESSAGE(rm.exit_code == 0, rm.err);
  BOOST_TEST(!fs::exists(sb.state() / "images" / "tiny"));
  BOOST_TEST(json::parse(sb.banger({"image", "list", "--json"}).out).empty());
  auto again = sb.banger({"image", "rm", "tiny", "--json"});
  BOOST_TEST(again.exit_code == 1);
  BOOST_TEST(json::parse(again.out)["error"]["code"] == "not_found");
  BOOST_TEST(sb.replay({"verify"}).exit_code == 0);
}

BOOST_AUTO_TEST_CASE(concurrent_builds_of_one_name_share_one_job) {
  sandbox sb;
  BOOST_REQUIRE(sb.banger({"daemon", "start"}).exit_code == 0);
  auto a = std::async(std::launch::async, [&] { return sb.banger({"image", "build", "twin", "--busybox", "--json"}); });
  auto b = std::async(std::launch::async, [&] { return sb.banger({"image", "build", "twin", "--busybox", "--json"}); });
  auto ra = a.get(), rb = b.get();
  BOOST_REQUIRE_MESSAGE(ra.exit_code == 0, ra.err);
  BOOST_REQUIRE_MESSAGE(rb.exit_code == 0, rb.err);
  auto ja = json::parse(ra.out), jb = json::parse(rb.out);
  BOOST_TEST(ja["current"] == jb["current"]);
  // Unless the second arrived after the first finished, exactly one of them joined.
  int joined = ja["joined"].get<bool>() + jb["joined"].get<bool>();
  BOOST_TEST(joined <= 1);
  BOOST_TEST(jb["versions"].size() == (joined == 1 ? 1u : 2u));
}

BOOST_AUTO_TEST_CASE(refusals_leave_no_entity_and_no_files) {
  sandbox sb;
  BOOST_REQUIRE(sb.banger({"daemon", "start"}).exit_code == 0);
  auto bad_name = sb.banger({"image", "build", "Bad/Name", "--busybox", "--json"});
  BOOST_TEST(bad_name.exit_code == 1);
  BOOST_TEST(json::parse(bad_name.out)["error"]["code"] == "bad_request");
  auto no_source = sb.banger({"image", "build", "x"});
  BOOST_TEST(no_source.exit_code == 1);
  BOOST_TEST(no_source.err.find("exactly one of") != std::string::npos, no_source.err);
  auto missing = sb.banger({"kernel", "import", "k", "--deb", "/no/such.deb"});
  BOOST_TEST(missing.exit_code == 1);
  // A file that is not a Debian package: the job starts and fails, nothing stays on disk.
  test::temp_dir junk;
  std::ofstream(junk.path / "junk.deb") << "not an ar archive";
  auto bogus = sb.banger({"kernel", "import", "k", "--deb", (junk.path / "junk.deb").string(), "--json"});
  BOOST_TEST(bogus.exit_code == 1);
  BOOST_TEST(json::parse(bogus.out)["error"]["code"] != "none");
  BOOST_TEST(listing(sb.state() / "kernels" / "k").empty());
  auto evs = json_lines(sb.banger({"events", "--json", "--stream", "kernel/k"}).out);
  BOOST_REQUIRE(evs.size() >= 2u);
  BOOST_TEST(evs.back()["kind"] == "artifact_failed");
  BOOST_TEST(json::parse(sb.banger({"kernel", "list", "--json"}).out).empty());
  // Bad names never reached the journal.
  auto all = json_lines(sb.banger({"events", "--json"}).out);
  for (const auto& e : all)
    BOOST_TEST(e["stream"].get<std::string>().find("Bad") == std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
