// `banger vm run --dry-run PATH`: the real CLI on real git checkouts, as root and as an
// unprivileged user (setpriv). No daemon is involved: the CLI reads the checkout itself.
#include <sys/stat.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/support/git_checkout.hpp"
#include "tests/support/sandbox.hpp"

using namespace banger;
using namespace banger::test;
namespace fs = std::filesystem;

namespace {

struct world {
  test::sandbox sb;
  fs::path repo = sb.root.path / "repo";
  world() {
    fs::create_directories(repo);
    git_sh(repo, "git init -q -b main .");
    put_file(repo / "Makefile", "test:\n\ttrue\n");
    put_file(repo / "docs" / "a b.md", "spaces\n");
    BOOST_TEST_REQUIRE(::symlink("/etc/passwd", (repo / "passwd").c_str()) == 0);
    git_sh(repo, "git add -A && git commit -q -m first");
    put_file(repo / "scratch.txt", "untracked\n");
  }
  test::run_result dry(std::vector<std::string> args, std::vector<std::string> prefix = {}) {
    std::vector<std::string> a{"vm", "run", "--dry-run"};
    a.insert(a.end(), args.begin(), args.end());
    return sb.banger(a, prefix);
  }
};

} // namespace

BOOST_AUTO_TEST_SUITE(workspace_cli)

BOOST_AUTO_TEST_CASE(dry_run_lists_tracked_files_and_makes_no_vm) {
  world w;
  auto r = w.dry({w.repo.string()});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.err);
  BOOST_TEST(r.out.find("Makefile") != std::string::npos, r.out);
  BOOST_TEST(r.out.find("docs/a b.md") != std::string::npos, r.out);
  BOOST_TEST(r.out.find("passwd -> /etc/passwd") != std::string::npos, r.out);
  BOOST_TEST(r.out.find("scratch.txt") == std::string::npos, r.out);
  BOOST_TEST(r.out.find("2 files and 1 symlink") != std::string::npos, r.out);
  BOOST_TEST(r.out.find("to /root/repo") != std::string::npos, r.out);
  // No daemon was started, so no VM could have been made.
  BOOST_TEST(!fs::exists(w.sb.socket()));

  auto u = w.dry({"--include-untracked", "--json", w.repo.string()});
  BOOST_TEST_REQUIRE(u.exit_code == 0, u.err);
  auto j = nlohmann::json::parse(u.out);
  BOOST_TEST(j["files"] == 3);
  BOOST_TEST(j["symlinks"] == 1);
  BOOST_TEST(j["guest_path"] == "/root/repo");
  bool saw = false;
  for (const auto& e : j["entries"])
    saw = saw || (e["path"] == "scratch.txt" && e["untracked"] == true);
  BOOST_TEST(saw, u.out);
}

BOOST_AUTO_TEST_CASE(bad_paths_and_arguments_are_refused_with_what_to_do) {
  world w;
  auto plain = w.dry({w.sb.root.path.string()});
  BOOST_TEST(plain.exit_code == 1);
  BOOST_TEST(plain.err.find("not in a git checkout") != std::string::npos, plain.err);

  auto guest = w.dry({"--guest-path", "/etc", w.repo.string()});
  BOOST_TEST(guest.exit_code == 1);
  BOOST_TEST(guest.err.find("not below /root") != std::string::npos, guest.err);

  auto climb = w.dry({"--guest-path", "/root/../etc", w.repo.string()});
  BOOST_TEST(climb.exit_code == 1);

  // Without `--`, a word that is not a directory is a command in the wrong place.
  auto cmd = w.sb.banger({"vm", "run", "make"});
  BOOST_TEST(cmd.exit_code == 2);
  BOOST_TEST(cmd.err.find("a command goes after it (banger vm run -- make)") != std::string::npos, cmd.err);

  auto two = w.sb.banger({"vm", "run", "--dry-run", "--", "true"});
  BOOST_TEST(two.exit_code == 2);
  BOOST_TEST(two.err.find("--dry-run lists what a checkout would ship") != std::string::npos, two.err);
}

BOOST_AUTO_TEST_CASE(a_file_the_user_cannot_read_is_named) {
  if (::geteuid() != 0) {
    BOOST_TEST_MESSAGE("skipped: needs root to run the CLI as another user");
    return;
  }
  world w;
  // The checkout belongs to nobody, except one file that only root may read.
  put_file(w.repo / "secret.key", "root only\n");
  git_sh(w.repo, "git add secret.key && git commit -q -m key");
  auto chown = test::run({"/bin/chown", "-R", "65534:65534", w.sb.root.path.string()});
  BOOST_TEST_REQUIRE(chown.exit_code == 0, chown.err);
  BOOST_TEST_REQUIRE(::chown((w.repo / "secret.key").c_str(), 0, 0) == 0);
  BOOST_TEST_REQUIRE(::chmod((w.repo / "secret.key").c_str(), 0600) == 0);
  ::chmod(w.sb.root.path.c_str(), 0755);
  auto r = w.dry({w.repo.string()}, {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"});
  BOOST_TEST(r.exit_code == 1, r.out << r.err);
  BOOST_TEST(r.err.find("cannot read secret.key") != std::string::npos, r.err);
  BOOST_TEST(r.err.find("Permission denied") != std::string::npos, r.err);
}

BOOST_AUTO_TEST_SUITE_END()
