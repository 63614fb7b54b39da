// A checkout scanned, its repository made, and the stream landed in a real ext4 work disk;
// then the disk is read back with the real debugfs (rdump) and e2fsck, and the copy is asked
// by the real git whether it is the host's checkout: same HEAD, same status, same diffs.
#include <sys/stat.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <fstream>

#include "guestfs/ext4.hpp"
#include "tests/support/git_checkout.hpp"
#include "tests/support/proc.hpp"
#include "tests/support/workspace_stream.hpp"
#include "workspace/export.hpp"
#include "workspace/git_meta.hpp"
#include "workspace/land_ext4.hpp"
#include "workspace/scan.hpp"

using namespace banger;
using namespace banger::test;
using namespace banger::workspace;
namespace fs = std::filesystem;

namespace {

template <class T>
T ok(expected<T> r) {
  BOOST_TEST_REQUIRE(r.has_value(), (r ? std::string() : r.err().message));
  return std::move(r).value();
}
void ok(expected<void> r) { BOOST_TEST_REQUIRE(r.has_value(), (r ? std::string() : r.err().message)); }

std::string tool(const std::string& name) {
  for (const char* dir : {"/usr/sbin", "/sbin", "/usr/bin"})
    if (::access((fs::path(dir) / name).c_str(), X_OK) == 0)
      return (fs::path(dir) / name).string();
  BOOST_FAIL(name + " not found: install e2fsprogs");
  return {};
}

/// A checkout with a commit, then uncommitted changes of every kind git shows.
struct world {
  test::temp_dir tmp{"banger-land"};
  fs::path repo = tmp.path / "repo";
  fs::path disk = tmp.path / "work.ext4";
  fs::path scratch = tmp.path / "scratch";
  world() {
    fs::create_directories(repo);
    fs::create_directories(scratch);
    git_sh(repo, "git init -q -b main .");
    put_file(repo / "README", "hello\n");
    put_file(repo / "src" / "main.c", "int main(void) { return 0; }\n");
    put_file(repo / "gone.txt", "to be deleted\n");
    put_file(repo / "tool.sh", "#!/bin/sh\n");
    put_file(repo / "blob.bin", std::string("\x00\x01\x02\xff binary", 11));
    put_file(repo / "we ird\nname", "odd\n");
    BOOST_TEST_REQUIRE(::symlink("src/main.c", (repo / "link").c_str()) == 0);
    git_sh(repo, "git add -A && git commit -q -m first && echo second >> README && git commit -q -am second");
    put_file(repo / "README", "hello\nsecond\nand an edit\n"); // modified
    fs::remove(repo / "gone.txt");                             // deleted
    put_file(repo / "added.txt", "staged new file\n");         // added to the index
    git_sh(repo, "git add added.txt");
    put_file(repo / "src" / "main.c", "int main(void) { return 1; }\n"); // modified and staged,
    git_sh(repo, "git add src/main.c");                                  // then modified again
    put_file(repo / "src" / "main.c", "int main(void) { return 2; }\n");
    ::chmod((repo / "tool.sh").c_str(), 0755);                                // mode change
    put_file(repo / "blob.bin", std::string("\x00\x01\x03\xfe binary!", 12)); // binary change
    put_file(repo / "untracked.txt", "not shipped\n");
    ok(guestfs::create_image(disk, 64u << 20));
  }

  expected<landed> land(const std::string& guest = "/root/repo") {
    auto ready = shippable(repo, scratch);
    if (!ready)
      return ready.err();
    auto& [src, git] = *ready;
    auto img = guestfs::ext4_image::open(disk, true);
    if (!img)
      return img.err();
    auto r = ext4_receiver(*img);
    auto out = send(src, git, guest, *r);
    r.reset();
    if (auto c = img->close(); !c)
      return c.err();
    return out;
  }

  /// The work disk's /X, copied out with debugfs.
  fs::path extract(const std::string& x = "repo") {
    auto out = tmp.path / ("out-" + std::to_string(++extracted));
    fs::create_directories(out);
    auto r = test::run({tool("debugfs"), "-R", "rdump /" + x + " " + out.string(), disk.string()});
    BOOST_TEST_REQUIRE(r.exit_code == 0, r.err);
    return out / x;
  }

  void require_clean() {
    auto r = test::run({tool("e2fsck"), "-fn", disk.string()});
    BOOST_TEST_REQUIRE(r.exit_code == 0, r.out << r.err);
  }
  int extracted = 0;
};

} // namespace

BOOST_AUTO_TEST_SUITE(workspace_land)

BOOST_AUTO_TEST_CASE(the_guest_copy_is_the_host_checkout_to_git) {
  world w;
  auto l = ok(w.land());
  BOOST_TEST(l.guest_path == "/root/repo");
  BOOST_TEST(l.files == 7u); // README added.txt blob.bin link src/main.c tool.sh "we ird\nname"
  BOOST_TEST(l.digest.size() == 64u);
  w.require_clean();
  auto copy = w.extract();
  for (const char* q : {"git rev-parse HEAD", "git status --porcelain=v1 --untracked-files=no", "git diff",
                        "git diff --cached", "git diff HEAD --stat", "git ls-files -s"})
    BOOST_TEST(git_sh(copy, q) == git_sh(w.repo, q), q);
  BOOST_TEST(git_sh(copy, "git rev-list --count HEAD") == "1\n"); // shallow: HEAD only
  BOOST_TEST(git_sh(copy, "cat .git/shallow") == git_sh(w.repo, "git rev-parse HEAD"));
  BOOST_TEST(git_sh(copy, "git log -1 --format=%s") == "second\n");
  BOOST_TEST(!fs::exists(copy / "untracked.txt"));
  BOOST_TEST(fs::is_symlink(copy / "link"));
  BOOST_TEST(fs::read_symlink(copy / "link") == "src/main.c");
  // Commits made in the guest work.
  git_sh(copy, "git commit -q -am 'in the guest' && git fsck --no-dangling 2>&1");
  BOOST_TEST(git_sh(copy, "git rev-list --count HEAD") == "2\n");
}

BOOST_AUTO_TEST_CASE(unchanged_files_carry_their_inode_in_the_index_so_git_does_not_rehash) {
  world w;
  ok(w.land());
  auto img = ok(guestfs::ext4_image::open(w.disk, false));
  auto readme_ino = ok(img.inode_of("/repo/README"));
  auto link_ino = ok(img.inode_of("/repo/link"));
  auto copy = w.extract();
  // ls-files --debug prints the index's stat data as written (the copy's inodes differ).
  auto debug = git_sh(copy, "git ls-files --debug -- link README");
  BOOST_TEST(debug.find("ino: " + std::to_string(link_ino)) != std::string::npos, debug);
  // README differs from its object (an uncommitted edit): zeroed, so git looks at the file.
  BOOST_TEST(debug.find("ino: " + std::to_string(readme_ino)) == std::string::npos, debug);
  BOOST_TEST(debug.find("ino: 0") != std::string::npos, debug);
}

BOOST_AUTO_TEST_CASE(the_digest_of_a_checkout_is_the_landed_one_until_it_changes) {
  world w;
  auto l = ok(w.land());
  BOOST_TEST(ok(digest_of(ok(scan(w.repo)))) == l.digest);
  put_file(w.repo / "README", "hello\nsecond\nand another edit\n");
  BOOST_TEST(ok(digest_of(ok(scan(w.repo)))) != l.digest);
  put_file(w.repo / "README", "hello\nsecond\nand an edit\n"); // back as it was shipped
  BOOST_TEST(ok(digest_of(ok(scan(w.repo)))) == l.digest);
  ::chmod((w.repo / "README").c_str(), 0755); // a mode change is a change
  BOOST_TEST(ok(digest_of(ok(scan(w.repo)))) != l.digest);
}

BOOST_AUTO_TEST_CASE(a_second_landing_replaces_the_first_whole) {
  world w;
  ok(w.land());
  git_sh(w.repo, "git rm -q --cached added.txt && rm added.txt && git add -A && git commit -q -m third");
  put_file(w.repo / "new-dir" / "deep" / "file", "later\n");
  git_sh(w.repo, "git add new-dir");
  ok(w.land());
  w.require_clean();
  auto copy = w.extract();
  BOOST_TEST(!fs::exists(copy / "added.txt"));
  BOOST_TEST(fs::exists(copy / "new-dir" / "deep" / "file"));
  BOOST_TEST(git_sh(copy, "git status --porcelain=v1 --untracked-files=no") ==
             git_sh(w.repo, "git status --porcelain=v1 --untracked-files=no"));
  auto img = ok(guestfs::ext4_image::open(w.disk, false));
  auto names = ok(img.list("/"));
  for (const auto& e : names)
    BOOST_TEST(e.name.find("banger") == std::string::npos, e.name); // no staging or old tree left
}

namespace {

/// The export of the landed copy at `copy`, run as the guest runs it (sh and git, in the copy).
std::string exported(const fs::path& copy, const std::string& head, export_form form) {
  auto r = test::run(export_command(copy.string(), head, form), git_env());
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.err);
  return r.out;
}

/// What a tree holds, for comparing two: each path (not .git's) with its type, mode and content.
std::string tree_of(const fs::path& dir, const std::vector<std::string>& leave_out = {}) {
  std::string leave;
  for (const auto& l : leave_out)
    leave += " ! -path './" + l + "'";
  return git_sh(dir, "find . -path ./.git -prune -o ! -type d" + leave +
                       " -printf '%y %m %p\\n' -exec sh -c 'test -L \"$1\" && readlink \"$1\" || "
                       "sha1sum < \"$1\"' x {} \\; | LC_ALL=C sort");
}

} // namespace

BOOST_AUTO_TEST_CASE(an_export_applies_to_the_host_checkout_and_reproduces_the_guest_tree) {
  world w;
  ok(w.land());
  auto copy = w.extract();
  auto index_before = git_sh(copy, "sha1sum .git/index && find .git/objects -type f | wc -l");
  // The guest edits: a modification, an addition, a deletion, a rename, a binary change and a
  // mode change, on top of the host's uncommitted state it was shipped with.
  put_file(copy / "README", "hello\nsecond\nand an edit\nand one in the guest\n");
  put_file(copy / "new in guest.txt", "made in the guest\n");
  fs::remove(copy / "src" / "main.c");
  fs::rename(copy / "we ird\nname", copy / "renamed");
  put_file(copy / "blob.bin", std::string("\x00\x01\x04\xfd guest", 10));
  ::chmod((copy / "tool.sh").c_str(), 0644);
  auto patch = exported(copy, git_sh(w.repo, "git rev-parse HEAD").substr(0, 40), export_form::diff);
  BOOST_TEST(patch.find("GIT binary patch") != std::string::npos, patch);
  BOOST_TEST(patch.find("old mode 100755") != std::string::npos, patch);
  BOOST_TEST(patch.find("rename to renamed") != std::string::npos, patch);
  // The guest's own index and objects are as they were.
  BOOST_TEST(git_sh(copy, "sha1sum .git/index && find .git/objects -type f | wc -l") == index_before);
  put_file(w.tmp.path / "fix.patch", patch);
  git_sh(w.repo, "git apply --check '" + (w.tmp.path / "fix.patch").string() + "' && git apply '" +
                   (w.tmp.path / "fix.patch").string() + "'");
  BOOST_TEST(tree_of(w.repo, {"untracked.txt"}) == tree_of(copy));
}

BOOST_AUTO_TEST_CASE(an_unchanged_workspace_exports_an_empty_patch) {
  world w;
  ok(w.land());
  BOOST_TEST(exported(w.extract(), "", export_form::diff) == "");
}

BOOST_AUTO_TEST_CASE(commits_made_in_the_guest_export_as_a_series_for_git_am) {
  world w;
  git_sh(w.repo, "git add -A && git commit -q -m 'host state' && git status --porcelain");
  ok(w.land());
  auto head = git_sh(w.repo, "git rev-parse HEAD").substr(0, 40);
  auto copy = w.extract();
  git_sh(copy, "echo one >> README && git commit -q -am 'guest one' && chmod +x README && echo x > b.bin && "
               "git add -A && git commit -q -m 'guest two'");
  auto series = exported(copy, head, export_form::commits);
  BOOST_TEST(series.find("Subject: [PATCH 1/2] guest one") != std::string::npos, series);
  put_file(w.tmp.path / "series.mbox", series);
  git_sh(w.repo, "git am -q '" + (w.tmp.path / "series.mbox").string() + "'");
  BOOST_TEST(git_sh(w.repo, "git rev-parse HEAD^{tree}") == git_sh(copy, "git rev-parse HEAD^{tree}"));
  BOOST_TEST(git_sh(w.repo, "git log -2 --format=%s") == "guest two\nguest one\n");
}

BOOST_AUTO_TEST_CASE(a_stream_that_breaks_off_leaves_the_previous_workspace) {
  world w;
  ok(w.land());
  auto before = git_sh(w.extract(), "git ls-files -s && cat README");
  put_file(w.repo / "README", "a change that never lands\n");
  auto src = ok(scan(w.repo));
  auto git = ok(make_git_material(src, w.scratch));
  {
    auto img = ok(guestfs::ext4_image::open(w.disk, true));
    auto inner = ext4_receiver(img);
    breaking_receiver b{*inner, 4};
    auto r = send(src, git, "/root/repo", b);
    BOOST_TEST_REQUIRE(!r.has_value());
    BOOST_TEST(r.err().message == "the stream broke off");
    inner.reset();
    ok(img.close());
  }
  w.require_clean();
  BOOST_TEST(git_sh(w.extract(), "git ls-files -s && cat README") == before);
  auto img = ok(guestfs::ext4_image::open(w.disk, false));
  BOOST_TEST(!ok(img.exists("/.repo.banger-new")));
}

BOOST_AUTO_TEST_CASE(a_swap_cut_between_its_renames_is_undone_by_the_next_landing) {
  world w;
  ok(w.land());
  {
    // The daemon died after moving the old tree aside and before moving the new one in.
    auto img = ok(guestfs::ext4_image::open(w.disk, true));
    ok(img.rename_in(ok(img.inode_of("/")), "repo", ".repo.banger-old"));
    ok(img.close());
  }
  // A landing that then fails still leaves the previous workspace where it was.
  put_file(w.repo / "big.bin", std::string(80u << 20, 'b'));
  git_sh(w.repo, "git add big.bin");
  BOOST_TEST(!w.land().has_value());
  auto img = ok(guestfs::ext4_image::open(w.disk, false));
  BOOST_TEST(ok(img.exists("/repo/README")));
  BOOST_TEST(!ok(img.exists("/.repo.banger-old")));
}

BOOST_AUTO_TEST_CASE(tidy_landing_puts_right_what_a_killed_landing_left) {
  world w;
  ok(w.land("/root/deep/repo"));
  {
    // A daemon killed mid-swap: the old tree aside, a staging tree half written.
    auto img = ok(guestfs::ext4_image::open(w.disk, true));
    auto deep = ok(img.inode_of("/deep"));
    ok(img.rename_in(deep, "repo", ".repo.banger-old"));
    ok(img.mkdir_p("/deep/.repo.banger-new/src", 0755, 0, 0));
    ok(img.write_file("/deep/.repo.banger-new/src/half", "half", 0644, 0, 0));
    ok(tidy_landing(img, "/root/deep/repo"));
    // Nothing landed at a path whose parent is not there: nothing to do, no error.
    ok(tidy_landing(img, "/root/nowhere/repo"));
    BOOST_TEST(!tidy_landing(img, "/etc/repo").has_value());
    ok(img.close());
  }
  w.require_clean();
  auto img = ok(guestfs::ext4_image::open(w.disk, false));
  BOOST_TEST(ok(img.exists("/deep/repo/README")));
  BOOST_TEST(!ok(img.exists("/deep/.repo.banger-old")));
  BOOST_TEST(!ok(img.exists("/deep/.repo.banger-new")));
}

BOOST_AUTO_TEST_CASE(a_workspace_larger_than_the_disk_is_refused_before_writing) {
  world w;
  put_file(w.repo / "big.bin", std::string(80u << 20, 'b')); // the disk is 64 MiB
  git_sh(w.repo, "git add big.bin");
  auto r = w.land();
  BOOST_TEST_REQUIRE(!r.has_value());
  BOOST_TEST((r.err().code == errc::bad_request));
  BOOST_TEST(r.err().message.find("the work disk has") != std::string::npos, r.err().message);
  BOOST_TEST(r.err().message.find("--disk-size") != std::string::npos, r.err().message);
  w.require_clean();
}

BOOST_AUTO_TEST_CASE(hostile_records_are_refused_and_nothing_stays) {
  world w;
  auto img = ok(guestfs::ext4_image::open(w.disk, true));
  auto try_stream = [&](std::vector<stream_entry> entries, const std::string& data = "") {
    auto r = ext4_receiver(img);
    ok(r->begin({"/root/repo", 1000, entries.size()}));
    expected<void> res;
    for (const auto& e : entries) {
      res = r->entry(e);
      if (res && !data.empty())
        res = r->data(data);
      if (!res)
        break;
    }
    if (res)
      res = r->finish({}).has_value() ? expected<void>{} : make_error(errc::bad_request, "finish refused");
    r->abort();
    return res;
  };
  auto file = [](std::string path, std::uint64_t size = 0) {
    return stream_entry{false, std::move(path), entry_kind::file, 0644, size, 0, {}};
  };
  BOOST_TEST(!try_stream({file("../escape")}).has_value());
  BOOST_TEST(!try_stream({file("/abs")}).has_value());
  BOOST_TEST(!try_stream({file(".git/config")}).has_value());
  BOOST_TEST(!try_stream({file("b"), file("a")}).has_value());    // out of order
  BOOST_TEST(!try_stream({file("a"), file("a")}).has_value());    // repeated
  BOOST_TEST(!try_stream({file("a", 2)}, "toolong").has_value()); // more bytes than announced
  BOOST_TEST(!try_stream({file("a", 5)}).has_value());            // fewer
  BOOST_TEST(!try_stream({stream_entry{true, "hooks/pre-commit", entry_kind::file, 0755, 0, 0, {}}}).has_value());
  BOOST_TEST(!try_stream({stream_entry{true, "index", entry_kind::file, 0644, 0, 0, {}}}).has_value());
  BOOST_TEST(!try_stream({stream_entry{false, "x", entry_kind::file, 04755, 0, 0, {}}}).has_value()); // setuid
  BOOST_TEST(!try_stream({file("big", 5000)}).has_value()); // over the 1000 announced bytes
  // A stream that names another guest path than the command is refused at begin.
  BOOST_TEST(!ext4_receiver(img, "/root/other")->begin({"/root/repo", 0, 0}).has_value());
  {
    // Fewer entries than announced: a stream cut short between two files never lands.
    auto r = ext4_receiver(img);
    ok(r->begin({"/root/repo", 10, 2}));
    ok(r->entry(file("a", 1)));
    ok(r->data("a"));
    auto done = r->finish({});
    BOOST_TEST_REQUIRE(!done.has_value());
    BOOST_TEST(done.err().message.find("1 of the 2 announced entries") != std::string::npos, done.err().message);
    r->abort();
  }
  ok(img.close());
  w.require_clean();
  auto ro = ok(guestfs::ext4_image::open(w.disk, false));
  BOOST_TEST(!ok(ro.exists("/repo")));
  BOOST_TEST(!ok(ro.exists("/.repo.banger-new")));
}

BOOST_AUTO_TEST_SUITE_END()
