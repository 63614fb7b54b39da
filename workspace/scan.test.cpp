// workspace::scan against real git checkouts made in temporary directories.
#include "workspace/scan.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <fstream>

#include "tests/support/git_checkout.hpp"
#include "tests/support/proc.hpp"

using namespace banger;
using namespace banger::test;
using namespace banger::workspace;
namespace fs = std::filesystem;

namespace {

/// The error's message, for a failed check ("" when there is none: Boost evaluates the message
/// whether or not the check fails).
template <class T>
std::string why(const expected<T>& r) {
  return r ? std::string() : r.err().message;
}

const entry* find(const source& s, const std::string& path) {
  for (const auto& e : s.entries)
    if (e.path == path)
      return &e;
  return nullptr;
}

bool skipped(const source& s, const std::string& prefix) {
  for (const auto& k : s.skipped)
    if (k.rfind(prefix, 0) == 0)
      return true;
  return false;
}

/// A repository with one commit and then uncommitted edits of every kind.
struct checkout {
  test::temp_dir tmp{"banger-ws"};
  fs::path repo = tmp.path / "repo";
  checkout() {
    fs::create_directories(repo);
    git_sh(repo, "git init -q -b main . && git config core.autocrlf false");
    put_file(repo / "README", "hello\n");
    put_file(repo / "src" / "main.c", "int main(void) { return 0; }\n");
    put_file(repo / "run.sh", "#!/bin/sh\necho run\n");
    ::chmod((repo / "run.sh").c_str(), 0755);
    put_file(repo / "gone.txt", "to be deleted\n");
    put_file(repo / ".gitignore", "*.o\n");
    BOOST_TEST_REQUIRE(::symlink("/etc/passwd", (repo / "passwd").c_str()) == 0);
    git_sh(repo, "git add -A && git commit -q -m first");
    put_file(repo / "README", "hello, edited and longer\n"); // modified, not staged
    fs::remove(repo / "gone.txt");                           // deleted in the working tree
    put_file(repo / "new.txt", "untracked\n");               // untracked
    put_file(repo / "build.o", "ignored\n");                 // ignored
  }
};

} // namespace

BOOST_AUTO_TEST_SUITE(workspace_scan)

BOOST_AUTO_TEST_CASE(ships_tracked_files_as_the_working_tree_has_them) {
  checkout c;
  auto s = scan(c.repo);
  BOOST_TEST_REQUIRE(s.has_value(), why(s));
  BOOST_TEST(s->top == fs::canonical(c.repo));
  BOOST_TEST(s->prefix == "");
  BOOST_TEST(s->branch == "main");
  BOOST_TEST(s->head.size() == 40u);

  std::vector<std::string> paths;
  for (const auto& e : s->entries)
    paths.push_back(e.path);
  std::vector<std::string> want{".gitignore", "README", "passwd", "run.sh", "src/main.c"};
  BOOST_TEST(paths == want, boost::test_tools::per_element());

  const auto* readme = find(*s, "README");
  BOOST_TEST(readme->size == std::string("hello, edited and longer\n").size()); // the edit, not HEAD's
  BOOST_TEST(readme->mode == 0644u);
  BOOST_TEST(find(*s, "run.sh")->mode == 0755u);
  const auto* link = find(*s, "passwd");
  BOOST_TEST((link->kind == entry_kind::symlink));
  BOOST_TEST(link->target == "/etc/passwd"); // a link, never followed
  BOOST_TEST(link->size == 11u);
  BOOST_TEST(skipped(*s, "gone.txt: deleted"));
  BOOST_TEST(find(*s, "new.txt") == nullptr);
  BOOST_TEST(find(*s, "build.o") == nullptr);
  std::uint64_t sum = 0;
  for (const auto& e : s->entries)
    sum += e.size;
  BOOST_TEST(s->bytes == sum);
}

BOOST_AUTO_TEST_CASE(untracked_files_that_are_not_ignored_on_request) {
  checkout c;
  auto s = scan(c.repo, {.include_untracked = true});
  BOOST_TEST_REQUIRE(s.has_value(), why(s));
  BOOST_TEST_REQUIRE(find(*s, "new.txt") != nullptr);
  BOOST_TEST(find(*s, "new.txt")->untracked);
  BOOST_TEST(!find(*s, "README")->untracked);
  BOOST_TEST(find(*s, "build.o") == nullptr);
}

BOOST_AUTO_TEST_CASE(a_directory_inside_ships_the_whole_checkout_and_says_where_it_was) {
  checkout c;
  auto s = scan(c.repo / "src");
  BOOST_TEST_REQUIRE(s.has_value(), why(s));
  BOOST_TEST(s->top == fs::canonical(c.repo));
  BOOST_TEST(s->prefix == "src/");
  BOOST_TEST(find(*s, "README") != nullptr);
}

BOOST_AUTO_TEST_CASE(what_is_not_a_checkout_is_refused_with_a_reason) {
  test::temp_dir tmp{"banger-ws"};
  auto plain = scan(tmp.path);
  BOOST_TEST_REQUIRE(!plain.has_value());
  BOOST_TEST((plain.err().code == errc::bad_request));
  BOOST_TEST(plain.err().message.find("not in a git checkout") != std::string::npos, plain.err().message);

  auto missing = scan(tmp.path / "nope");
  BOOST_TEST_REQUIRE(!missing.has_value());
  BOOST_TEST(missing.err().message.find("does not exist") != std::string::npos, missing.err().message);

  put_file(tmp.path / "file", "x");
  auto file = scan(tmp.path / "file");
  BOOST_TEST_REQUIRE(!file.has_value());
  BOOST_TEST(file.err().message.find("not a directory") != std::string::npos, file.err().message);

  git_sh(tmp.path, "git init -q --bare bare.git");
  auto bare = scan(tmp.path / "bare.git");
  BOOST_TEST_REQUIRE(!bare.has_value());
  BOOST_TEST(bare.err().message.find("bare") != std::string::npos, bare.err().message);
}

BOOST_AUTO_TEST_CASE(a_checkout_without_a_commit_ships_what_is_staged) {
  test::temp_dir tmp{"banger-ws"};
  git_sh(tmp.path, "git init -q -b trunk . && echo a > a && git add a");
  auto s = scan(tmp.path);
  BOOST_TEST_REQUIRE(s.has_value(), why(s));
  BOOST_TEST(s->head == "");
  BOOST_TEST(s->branch == "trunk");
  BOOST_TEST_REQUIRE(s->entries.size() == 1u);
  BOOST_TEST(s->entries[0].path == "a");
}

BOOST_AUTO_TEST_CASE(hostile_names_are_listed_byte_for_byte) {
  test::temp_dir tmp{"banger-ws"};
  git_sh(tmp.path, "git init -q .");
  const std::vector<std::string> names{"with space", "new\nline", "-leading-dash", "bad\xff\xfeutf8", "tab\there"};
  for (const auto& n : names)
    put_file(tmp.path / n, n);
  git_sh(tmp.path, "git add -A");
  auto s = scan(tmp.path);
  BOOST_TEST_REQUIRE(s.has_value(), why(s));
  for (const auto& n : names) {
    const auto* e = find(*s, n);
    BOOST_TEST_REQUIRE(e != nullptr, "missing " << n);
    BOOST_TEST(e->size == n.size());
  }
}

BOOST_AUTO_TEST_CASE(a_parent_replaced_by_a_symlink_is_not_followed) {
  checkout c;
  // src/ becomes a link to a directory outside with a file of the same name: scan must not
  // read through it.
  test::temp_dir outside{"banger-ws-out"};
  put_file(outside.path / "main.c", "outside content that must not be shipped\n");
  fs::remove_all(c.repo / "src");
  BOOST_TEST_REQUIRE(::symlink(outside.path.c_str(), (c.repo / "src").c_str()) == 0);
  auto s = scan(c.repo);
  BOOST_TEST_REQUIRE(s.has_value(), why(s));
  BOOST_TEST(find(*s, "src/main.c") == nullptr);
  BOOST_TEST(skipped(*s, "src/main.c: a parent directory is now a symlink"));
}

BOOST_AUTO_TEST_CASE(checked_out_submodules_are_shipped_and_others_are_said_to_be_missing) {
  test::temp_dir tmp{"banger-ws"};
  fs::create_directories(tmp.path / "lib");
  git_sh(tmp.path / "lib", "git init -q . && echo l > lib.c && git add . && git commit -q -m lib");
  fs::create_directories(tmp.path / "top");
  git_sh(tmp.path / "top",
         "git init -q . && echo t > t && git add t && "
         "git -c protocol.file.allow=always submodule add -q ../lib vendor/lib && "
         "git -c protocol.file.allow=always submodule add -q ../lib vendor/absent && git commit -q -m top && "
         "git submodule deinit -q -f vendor/absent");
  auto s = scan(tmp.path / "top");
  BOOST_TEST_REQUIRE(s.has_value(), why(s));
  BOOST_TEST(find(*s, "vendor/lib/lib.c") != nullptr);
  BOOST_TEST(find(*s, "vendor/absent/lib.c") == nullptr);
  BOOST_TEST(skipped(*s, "vendor/absent: a submodule that is not checked out"));
}

BOOST_AUTO_TEST_SUITE_END()
