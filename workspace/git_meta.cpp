#include "workspace/git_meta.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>

#include "common/text.hpp"
#include "workspace/git_run.hpp"

namespace banger::workspace {

namespace fs = std::filesystem;

namespace {

using detail::git;
using detail::git_failure;
using detail::split_lines;
using detail::split_nul;
using detail::trim;

bool hex40(std::string_view s) {
  return s.size() == 40 &&
         std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

constexpr const char* repo_config = "[core]\n"
                                    "\trepositoryformatversion = 0\n"
                                    "\tfilemode = true\n"
                                    "\tbare = false\n"
                                    "\tlogallrefupdates = true\n";

} // namespace

bool plain_branch_name(std::string_view name) {
  if (name.empty() || name.size() > 200 || name.front() == '/' || name.back() == '/' || name.back() == '.')
    return false;
  if (name.find("..") != std::string_view::npos || name.find("//") != std::string_view::npos)
    return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
          c == '-' || c == '/'))
      return false;
  std::size_t at = 0;
  while (at <= name.size()) {
    auto end = name.find('/', at);
    auto comp = name.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at);
    if (comp.empty() || comp.front() == '.' || (comp.size() >= 5 && comp.substr(comp.size() - 5) == ".lock"))
      return false;
    if (end == std::string_view::npos)
      break;
    at = end + 1;
  }
  return true;
}

bool allowed_git_file(std::string_view rel) {
  if (rel == "HEAD" || rel == "config" || rel == "shallow" || rel == "index" || rel == shipped_tree_file)
    return true;
  if (rel.rfind("refs/heads/", 0) == 0)
    return plain_branch_name(rel.substr(11));
  constexpr std::string_view pack_prefix = "objects/pack/pack-";
  if (rel.rfind(pack_prefix, 0) == 0) {
    auto rest = rel.substr(pack_prefix.size());
    if (rest.size() < 40 || !hex40(rest.substr(0, 40)))
      return false;
    return rest.substr(40) == ".pack" || rest.substr(40) == ".idx";
  }
  return false;
}

expected<git_material> make_git_material(const source& src, const fs::path& scratch) {
  git_material out;
  // The index as the host has it (submodules as gitlinks, not their files).
  auto staged = git(src.top, {"ls-files", "-z", "--stage"});
  if (staged.exit_code != 0)
    return make_error(errc::operation_failed,
                      fmt::format("git ls-files in {}: {}", src.top.string(), git_failure(staged)));
  for (const auto& rec : split_nul(staged.out)) {
    // "MODE OID STAGE\tPATH"
    auto tab = rec.find('\t');
    if (tab == std::string::npos || tab != 6 + 1 + 40 + 1 + 1)
      return make_error(errc::operation_failed, "git ls-files: unexpected record " + quoted(rec));
    index_record r;
    r.path = rec.substr(tab + 1);
    r.mode = static_cast<std::uint32_t>(std::stoul(rec.substr(0, 6), nullptr, 8));
    auto oid = parse_oid(rec.substr(7, 40));
    if (!oid)
      return oid.err();
    r.oid = *oid;
    r.stage = static_cast<std::uint8_t>(rec[48] - '0');
    out.index.push_back(std::move(r));
  }
  // Which entries the working tree differs from: `git status` compares content, not just stat
  // data (without rewriting the index: GIT_OPTIONAL_LOCKS=0).
  auto status = git(src.top, {"status", "--porcelain=v2", "-z", "--untracked-files=no", "--ignore-submodules=all"});
  if (status.exit_code != 0)
    return make_error(errc::operation_failed,
                      fmt::format("git status in {}: {}", src.top.string(), git_failure(status)));
  std::set<std::string> differs;
  auto recs = split_nul(status.out);
  for (std::size_t i = 0; i < recs.size(); ++i) {
    const auto& r = recs[i];
    // "1 XY sub mH mI mW hH hI path", "2 XY sub mH mI mW hH hI Xscore path" + orig, "u XY ..."
    int fields = r[0] == '1' ? 8 : r[0] == '2' ? 9 : r[0] == 'u' ? 10 : -1;
    if (fields < 0 || r.size() < 4)
      continue;
    std::size_t at = 0;
    for (int f = 0; f < fields && at != std::string::npos; ++f)
      at = r.find(' ', at + 1);
    if (at == std::string::npos)
      return make_error(errc::operation_failed, "git status: unexpected record " + quoted(r));
    if (r[0] == 'u' || r[3] != '.')
      differs.insert(r.substr(at + 1));
    if (r[0] == '2')
      ++i; // the original path follows as its own record
  }
  std::set<std::string> shipped;
  for (const auto& e : src.entries)
    if (!e.untracked)
      shipped.insert(e.path);
  for (auto& r : out.index)
    r.worktree_matches = r.stage == 0 && r.mode != 0160000 && shipped.count(r.path) && !differs.count(r.path);

  // The shipped state as a tree, what `vm workspace export` diffs the guest against: the host's
  // index copied (its stat data spares git re-reading unchanged files), the working tree's
  // changes added to the copy (and its untracked files, when they are shipped), then written
  // as a tree. New objects go to a scratch object directory that borrows the repository's, so
  // the user's repository is not written.
  auto where = git(src.top, {"rev-parse", "--path-format=absolute", "--git-path", "index", "--git-path", "objects"});
  auto paths = split_lines(trim(where.out));
  if (where.exit_code != 0 || paths.size() != 2)
    return make_error(errc::operation_failed,
                      fmt::format("git rev-parse in {}: {}", src.top.string(), git_failure(where)));
  std::error_code ec;
  fs::create_directories(scratch / "objects", ec);
  std::map<std::string, std::string> scratch_env{{"GIT_INDEX_FILE", (scratch / "index").string()},
                                                 {"GIT_OBJECT_DIRECTORY", (scratch / "objects").string()},
                                                 {"GIT_ALTERNATE_OBJECT_DIRECTORIES", paths[1]}};
  if (fs::exists(paths[0], ec)) {
    // With its mtime: git trusts an entry's stat data only when the file is older than the index.
    fs::copy_file(paths[0], scratch / "index", fs::copy_options::overwrite_existing, ec);
    if (!ec)
      fs::last_write_time(scratch / "index", fs::last_write_time(paths[0], ec), ec);
  }
  if (ec)
    return make_error(errc::operation_failed, fmt::format("copying {}: {}", paths[0], ec.message()));
  bool untracked = std::any_of(src.entries.begin(), src.entries.end(), [](const entry& e) { return e.untracked; });
  auto added = git(src.top, {"add", untracked ? "--all" : "--update"}, {}, scratch_env);
  auto tree = git(src.top, {"write-tree"}, {}, scratch_env);
  if (added.exit_code != 0 || tree.exit_code != 0 || !hex40(trim(tree.out)))
    return make_error(errc::operation_failed, fmt::format("recording the shipped state of {}: {}", src.top.string(),
                                                          git_failure(added.exit_code != 0 ? added : tree)));
  out.shipped_tree = trim(tree.out);

  // The objects: HEAD's commit, trees and blobs, every blob the index names, and the shipped
  // tree's.
  std::vector<std::string> objects;
  {
    std::vector<std::string> tips{"rev-list", "--objects", "--no-walk", out.shipped_tree};
    if (!src.head.empty())
      tips.push_back(src.head);
    auto listed = git(src.top, tips, {}, scratch_env);
    if (listed.exit_code != 0)
      return make_error(errc::operation_failed,
                        fmt::format("git rev-list in {}: {}", src.top.string(), git_failure(listed)));
    for (auto& line : split_lines(listed.out))
      if (line.size() >= 40)
        objects.push_back(line.substr(0, 40));
  }
  static const char* hex = "0123456789abcdef";
  for (const auto& r : out.index) {
    if (r.mode == 0160000)
      continue;
    std::string h;
    for (auto b : r.oid) {
      h += hex[b >> 4];
      h += hex[b & 15];
    }
    objects.push_back(std::move(h));
  }
  std::sort(objects.begin(), objects.end());
  objects.erase(std::unique(objects.begin(), objects.end()), objects.end());
  if (!objects.empty()) {
    auto list = scratch / "objects.txt";
    {
      std::ofstream f(list, std::ios::binary);
      for (const auto& o : objects)
        f << o << '\n';
      if (!f)
        return make_error(errc::operation_failed, fmt::format("writing {}", list.string()));
    }
    auto packed =
      git(src.top, {"pack-objects", "-q", "--window=0", "--depth=0", (scratch / "pack").string()}, list, scratch_env);
    if (packed.exit_code != 0)
      return make_error(errc::operation_failed,
                        fmt::format("git pack-objects in {}: {}", src.top.string(), git_failure(packed)));
    auto id = trim(packed.out);
    if (!hex40(id))
      return make_error(errc::operation_failed, "git pack-objects: unexpected output " + quoted(packed.out));
    out.pack_name = "pack-" + id;
    out.pack = scratch / (out.pack_name + ".pack");
    out.pack_index = scratch / (out.pack_name + ".idx");
  }

  bool named = !src.branch.empty() && plain_branch_name(src.branch);
  if (named)
    out.files.emplace_back("HEAD", "ref: refs/heads/" + src.branch + "\n");
  else if (!src.head.empty())
    out.files.emplace_back("HEAD", src.head + "\n");
  else
    out.files.emplace_back("HEAD", "ref: refs/heads/main\n");
  out.files.emplace_back("config", repo_config);
  out.files.emplace_back(shipped_tree_file, out.shipped_tree + "\n");
  if (!src.head.empty()) {
    out.files.emplace_back("shallow", src.head + "\n");
    if (named)
      out.files.emplace_back("refs/heads/" + src.branch, src.head + "\n");
  }
  return out;
}

} // namespace banger::workspace
