// workspace::collect_file_sync and the git identity, on real files in a temporary home and
// real git.
#include "workspace/file_sync.hpp"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include "tests/support/git_checkout.hpp"
#include "tests/support/proc.hpp"

using namespace banger;
using namespace banger::test;
using namespace banger::workspace;
namespace fs = std::filesystem;

namespace {

struct home_fixture {
  temp_dir tmp{"banger-home"};
  fs::path home = tmp.path / "home";
  fs::path outside = tmp.path / "outside";
  home_fixture() {
    put_file(home / ".gitconfig", "[user]\n\tname = me\n");
    ::chmod((home / ".gitconfig").c_str(), 0600);
    put_file(home / ".config/tool/a.toml", "a = 1\n");
    put_file(home / ".config/tool/sub/b.sh", "#!/bin/sh\n");
    ::chmod((home / ".config/tool/sub/b.sh").c_str(), 0755);
    put_file(outside / "secret", "not yours\n");
    // A link in the synced tree pointing out of the home, one to a file inside it, and a fifo.
    BOOST_TEST_REQUIRE(::symlink((outside / "secret").c_str(), (home / ".config/tool/escape").c_str()) == 0);
    BOOST_TEST_REQUIRE(::symlink("a.toml", (home / ".config/tool/alias").c_str()) == 0);
    BOOST_TEST_REQUIRE(::mkfifo((home / ".config/tool/pipe").c_str(), 0600) == 0);
    // Sources that are links: one staying in the home, one leaving it.
    BOOST_TEST_REQUIRE(::symlink(".gitconfig", (home / ".gitconfig-link").c_str()) == 0);
    BOOST_TEST_REQUIRE(::symlink((outside / "secret").c_str(), (home / ".netrc").c_str()) == 0);
  }
  file_sync_rule rule(std::string host, std::string guest, std::optional<std::uint32_t> mode = {}) {
    return {std::move(host), std::move(guest), mode, 1};
  }
};

const synced_file* find(const home_sync& s, const std::string& guest) {
  for (const auto& f : s.files)
    if (f.guest_path == guest)
      return &f;
  return nullptr;
}

bool warned(const home_sync& s, const std::string& part) {
  for (const auto& w : s.warnings)
    if (w.find(part) != std::string::npos)
      return true;
  return false;
}

std::string all_warnings(const home_sync& s) {
  std::string out;
  for (const auto& w : s.warnings)
    out += w + "\n";
  return out;
}

} // namespace

BOOST_AUTO_TEST_SUITE(file_sync)

BOOST_FIXTURE_TEST_CASE(files_and_trees_without_following_links, home_fixture) {
  auto s = collect_file_sync({rule("~/.gitconfig", "/root/.gitconfig"), rule("~/.config/tool", "/root/.config/tool"),
                              rule((home / ".gitconfig-link").string(), "/root/linked", 0640)},
                             home);
  BOOST_TEST_REQUIRE(s.has_value(), (s ? "" : s.err().message));
  BOOST_TEST(s->files.size() == 4u);
  auto* g = find(*s, "/root/.gitconfig");
  BOOST_TEST_REQUIRE(g);
  BOOST_TEST(g->data == "[user]\n\tname = me\n");
  BOOST_TEST(g->mode == 0600u); // the source's own mode
  BOOST_TEST(!g->keep_existing);
  BOOST_TEST_REQUIRE(find(*s, "/root/.config/tool/a.toml"));
  auto* b = find(*s, "/root/.config/tool/sub/b.sh");
  BOOST_TEST_REQUIRE(b);
  BOOST_TEST(b->mode == 0755u);
  // A source link that stays in the home is followed; `mode` overrides.
  auto* l = find(*s, "/root/linked");
  BOOST_TEST_REQUIRE(l);
  BOOST_TEST(l->data == g->data);
  BOOST_TEST(l->mode == 0640u);
  // Inside the tree: both links and the fifo skipped, with a warning each; the outside file never read.
  BOOST_TEST(!find(*s, "/root/.config/tool/escape"));
  BOOST_TEST(!find(*s, "/root/.config/tool/alias"));
  BOOST_TEST(warned(*s, "tool/escape is a symlink; not synced"), all_warnings(*s));
  BOOST_TEST(warned(*s, "tool/alias is a symlink"), all_warnings(*s));
  BOOST_TEST(warned(*s, "tool/pipe is not a regular file"), all_warnings(*s));
  for (const auto& f : s->files)
    BOOST_TEST(f.data != "not yours\n");
  BOOST_TEST(s->bytes == g->data.size() * 2 + 6 + 10);
}

BOOST_FIXTURE_TEST_CASE(what_is_skipped_with_a_warning, home_fixture) {
  auto s = collect_file_sync({rule("~/.netrc", "/root/.netrc"), rule("~/missing", "/root/missing"),
                              rule((outside / "secret").string(), "/root/secret"),
                              rule(home.string() + "/../outside/secret", "/root/secret2"),
                              rule("relative/path", "/root/rel"), rule("~", "/root/everything")},
                             home);
  BOOST_TEST_REQUIRE(s.has_value(), (s ? "" : s.err().message));
  BOOST_TEST(s->files.empty());
  BOOST_TEST(warned(*s, "~/.netrc leads out of your home through a symlink"), all_warnings(*s));
  BOOST_TEST(warned(*s, "~/missing does not exist"), all_warnings(*s));
  BOOST_TEST(warned(*s, (outside / "secret").string() + " is not inside your home"), all_warnings(*s));
  BOOST_TEST(warned(*s, "/../outside/secret is not inside your home"), all_warnings(*s));
  BOOST_TEST(warned(*s, "relative/path is neither"), all_warnings(*s));
  BOOST_TEST(warned(*s, "is your whole home"), all_warnings(*s));
  BOOST_TEST(s->warnings.size() == 6u);
}

BOOST_FIXTURE_TEST_CASE(errors, home_fixture) {
  auto bad_guest = collect_file_sync({rule("~/.gitconfig", "/root/../etc/passwd")}, home);
  BOOST_TEST_REQUIRE(!bad_guest.has_value());
  BOOST_TEST((bad_guest.err().code == errc::bad_request));
  for (int i = 0; i <= static_cast<int>(max_sync_files); ++i)
    put_file(home / "many" / std::to_string(i), "x");
  auto many = collect_file_sync({rule("~/many", "/root/many")}, home);
  BOOST_TEST_REQUIRE(!many.has_value());
  BOOST_TEST(many.err().message.find("more than 1024 files") != std::string::npos, many.err().message);
  put_file(home / "big", std::string(max_sync_bytes + 1, 'x'));
  auto big = collect_file_sync({rule("~/big", "/root/big")}, home);
  BOOST_TEST_REQUIRE(!big.has_value());
  BOOST_TEST(big.err().message.find("~/big") != std::string::npos, big.err().message);
}

BOOST_AUTO_TEST_CASE(identity_is_quoted_and_git_reads_it_back) {
  temp_dir tmp{"banger-ident"};
  std::string warning;
  auto f = git_identity_file("Zoë \"Z\" O'Brien \\ dev", "zoe@example.invalid", &warning);
  BOOST_TEST_REQUIRE(f.has_value());
  BOOST_TEST(f->guest_path == "/root/.gitconfig");
  BOOST_TEST(f->keep_existing);
  BOOST_TEST(f->data.rfind(std::string(identity_marker) + "\n", 0) == 0u);
  put_file(tmp.path / "gitconfig", f->data);
  auto name = run({"git", "config", "-f", (tmp.path / "gitconfig").string(), "user.name"});
  BOOST_TEST(name.out == "Zoë \"Z\" O'Brien \\ dev\n", name.out << name.err);
  auto email = run({"git", "config", "-f", (tmp.path / "gitconfig").string(), "user.email"});
  BOOST_TEST(email.out == "zoe@example.invalid\n");
  BOOST_TEST(!git_identity_file("", "", &warning).has_value());
  BOOST_TEST(warning.empty());
  BOOST_TEST(!git_identity_file("a\n[core]\n\tpager = evil", "x", &warning).has_value());
  BOOST_TEST(warning.find("control character") != std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(identity_unless_a_gitconfig_is_synced, home_fixture) {
  // git reads the checkout's own settings; the user's are pointed at the fixture's home.
  ::setenv("GIT_CONFIG_GLOBAL", (home / ".gitconfig").c_str(), 1);
  ::setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
  fs::path repo = tmp.path / "repo";
  fs::create_directories(repo);
  git_sh(repo, "git init -q . && git config user.email repo@example.invalid");
  auto s = plan_home_sync({rule("~/.config/tool/a.toml", "/root/a.toml")}, home, repo);
  BOOST_TEST_REQUIRE(s.has_value(), (s ? "" : s.err().message));
  auto* id = find(*s, "/root/.gitconfig");
  BOOST_TEST_REQUIRE(id);
  BOOST_TEST(id->data.find("name = \"me\"") != std::string::npos, id->data);
  BOOST_TEST(id->data.find("email = \"repo@example.invalid\"") != std::string::npos, id->data);
  auto synced = plan_home_sync({rule("~/.gitconfig", "/root/.gitconfig")}, home, repo);
  BOOST_TEST_REQUIRE(synced.has_value());
  BOOST_TEST(synced->files.size() == 1u);
  BOOST_TEST(!synced->files[0].keep_existing); // the synced file, not the identity
  ::unsetenv("GIT_CONFIG_GLOBAL");
  ::unsetenv("GIT_CONFIG_NOSYSTEM");
}

BOOST_AUTO_TEST_SUITE_END()
