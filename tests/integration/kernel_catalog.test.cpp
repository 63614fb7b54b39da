// Kernel bundles end to end through the CLI: import a (synthetic, PVH-noted) vmlinux, export
// it as a bundle + catalog.json, serve that directory from a local HTTP server on 127.0.0.1,
// and pull it into a second user's banger; then the failures: hash mismatch, 404, dead server,
// a name the catalog lacks — each leaving nothing in the kernel store.
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "guestfs/kernel_fixtures.test.hpp"
#include "tests/support/sandbox.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace banger;
using test::json_lines;
using test::sandbox;

namespace {

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

/// python3's http.server on 127.0.0.1, serving one directory; stopped on destruction.
struct http_server {
  int port = free_port();
  pid_t pid = -1;
  explicit http_server(const fs::path& dir, const fs::path& logs) {
    pid = test::spawn(
      {"python3", "-m", "http.server", "--bind", "127.0.0.1", std::to_string(port), "--directory", dir.string()}, {},
      logs);
    BOOST_TEST_REQUIRE(test::eventually([&] {
      return test::run({"python3", "-c",
                        "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:" + std::to_string(port) +
                          "/', timeout=1)"})
               .exit_code == 0;
    }));
  }
  ~http_server() {
    ::kill(pid, SIGTERM);
    ::waitpid(pid, nullptr, 0);
  }
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port) + "/" + path; }
};

std::vector<std::string> kernel_store(const sandbox& sb) {
  std::vector<std::string> out;
  std::error_code ec;
  auto dir = sb.state() / "kernels";
  if (fs::exists(dir))
    for (const auto& e : fs::recursive_directory_iterator(dir, ec))
      if (!e.is_directory())
        out.push_back(e.path().string());
  return out;
}

} // namespace

BOOST_AUTO_TEST_SUITE(kernel_catalog)

BOOST_AUTO_TEST_CASE(export_serve_pull_and_every_failure_leaves_nothing) {
  test::temp_dir work{"banger-catalog"};
  auto vmlinux = work.path / "vmlinux";
  guestfs::fixtures::write(vmlinux, guestfs::fixtures::elf_with_note());
  guestfs::fixtures::write(work.path / "initrd.img", std::string(4096, 'i'));

  sandbox a;
  auto imp = a.banger({"kernel", "import", "tiny", "--vmlinux", vmlinux.string(), "--initrd",
                       (work.path / "initrd.img").string(), "--json"});
  BOOST_REQUIRE_MESSAGE(imp.exit_code == 0, imp.out + imp.err);
  auto shown_a = json::parse(a.banger({"kernel", "show", "tiny", "--json"}).out);
  BOOST_TEST(shown_a["manifest"]["format"] == "pvh-elf");

  fs::path served = work.path / "served";
  fs::create_directory(served);
  auto exp = a.banger({"kernel", "export-bundle", "tiny", (served / "tiny.tar.zst").string(), "--json"});
  BOOST_REQUIRE_MESSAGE(exp.exit_code == 0, exp.out + exp.err);
  BOOST_TEST(fs::exists(served / "tiny.tar.zst"));
  auto catalog = json::parse(*read_file(served / "catalog.json"));
  BOOST_REQUIRE(catalog["kernels"].size() == 1u);
  BOOST_TEST(catalog["kernels"][0]["url"] == "tiny.tar.zst");

  // A tampered copy of the catalog: same bundle, wrong sha256.
  auto bad = catalog;
  std::string sha = bad["kernels"][0]["sha256"];
  sha[0] = sha[0] == '0' ? '1' : '0';
  bad["kernels"][0]["sha256"] = sha;
  std::ofstream(served / "bad.json") << bad.dump();

  http_server server(served, work.path);
  sandbox b;
  auto pull = b.banger({"kernel", "pull", "tiny", "--catalog", server.url("catalog.json"), "--json"});
  BOOST_REQUIRE_MESSAGE(pull.exit_code == 0, pull.out + pull.err);
  auto shown_b = json::parse(b.banger({"kernel", "show", "tiny", "--json"}).out);
  BOOST_TEST(shown_b["manifest"]["files"] == shown_a["manifest"]["files"]); // same files, same sha256s
  BOOST_TEST(shown_b["current"] == shown_a["current"]);                     // content-addressed: same id

  sandbox c;
  auto mismatch = c.banger({"kernel", "pull", "tiny", "--catalog", server.url("bad.json"), "--json"});
  BOOST_TEST(mismatch.exit_code == 1);
  BOOST_TEST(mismatch.out.find("sha256") != std::string::npos, mismatch.out);
  auto missing = c.banger({"kernel", "pull", "tiny", "--catalog", server.url("nope.json"), "--json"});
  BOOST_TEST(missing.exit_code == 1);
  BOOST_TEST(json::parse(missing.out)["error"]["code"] == "not_found");
  auto dead = c.banger({"kernel", "pull", "tiny", "--catalog", "http://127.0.0.1:1/catalog.json", "--json"});
  BOOST_TEST(dead.exit_code == 1);
  BOOST_TEST(json::parse(dead.out)["error"]["code"] == "unavailable");
  auto other = c.banger({"kernel", "pull", "absent", "--catalog", server.url("catalog.json"), "--json"});
  BOOST_TEST(other.exit_code == 1);
  BOOST_TEST(json::parse(other.out)["error"]["code"] == "not_found");
  BOOST_TEST(kernel_store(c).empty()); // no staging dir, no temp download, no partial kernel
  auto evs = json_lines(c.banger({"events", "--json", "--stream", "kernel/tiny"}).out);
  BOOST_REQUIRE(!evs.empty());
  BOOST_TEST(evs.back()["kind"] == "artifact_failed");
  BOOST_TEST(json::parse(c.banger({"kernel", "list", "--json"}).out).empty());
}

BOOST_AUTO_TEST_SUITE_END()
