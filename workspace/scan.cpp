#include "workspace/scan.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fmt/format.h>

#include "common/process.hpp"
#include "common/text.hpp"
#include "workspace/beneath.hpp"
#include "workspace/git_run.hpp"

namespace banger::workspace {

namespace fs = std::filesystem;

namespace {

using detail::git;
using detail::git_failure;
using detail::split_lines;
using detail::split_nul;
using detail::trim;

using detail::open_beneath;

/// Reads each listed path from the working tree without following symlinks: one parent
/// directory open at a time (the list is sorted, so siblings share it).
class tree_reader {
public:
  explicit tree_reader(unique_fd top) : top_(std::move(top)) {}

  /// The entry at `rel`, or a reason it is not shipped (second), or an error.
  expected<std::pair<std::optional<entry>, std::string>> read(const std::string& rel) {
    auto slash = rel.rfind('/');
    std::string parent = slash == std::string::npos ? "." : rel.substr(0, slash);
    std::string name = slash == std::string::npos ? rel : rel.substr(slash + 1);
    if (parent != parent_name_ || !parent_) {
      parent_name_ = parent;
      int fd = open_beneath(top_.get(), parent, O_PATH | O_DIRECTORY);
      parent_ = fd < 0 ? unique_fd{} : unique_fd{fd};
      parent_errno_ = fd < 0 ? errno : 0;
    }
    using result = std::pair<std::optional<entry>, std::string>;
    if (!parent_) {
      if (parent_errno_ == ENOENT)
        return result{std::nullopt, "deleted in the working tree"};
      if (parent_errno_ == ELOOP || parent_errno_ == ENOTDIR || parent_errno_ == EXDEV)
        return result{std::nullopt, "a parent directory is now a symlink or not a directory"};
      if (parent_errno_ == EACCES)
        return make_error(errc::unauthorized, fmt::format("cannot read directory {}: {}", parent, errno_text(EACCES)));
      return make_error(errc::operation_failed, fmt::format("cannot open {}: {}", parent, errno_text(parent_errno_)));
    }
    struct stat st {};
    if (fstatat(parent_.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT)
        return result{std::nullopt, "deleted in the working tree"};
      return make_error(errno == EACCES ? errc::unauthorized : errc::operation_failed,
                        fmt::format("cannot stat {}: {}", rel, errno_text(errno)));
    }
    entry e;
    e.path = rel;
    if (S_ISLNK(st.st_mode)) {
      std::string target(static_cast<std::size_t>(st.st_size) + 1, '\0');
      ssize_t n = readlinkat(parent_.get(), name.c_str(), target.data(), target.size());
      if (n < 0)
        return make_error(errno == EACCES ? errc::unauthorized : errc::operation_failed,
                          fmt::format("cannot read symlink {}: {}", rel, errno_text(errno)));
      if (static_cast<std::size_t>(n) >= target.size())
        return make_error(errc::conflict, fmt::format("symlink {} changed while it was read", rel));
      target.resize(static_cast<std::size_t>(n));
      e.kind = entry_kind::symlink;
      e.mode = 0777;
      e.size = target.size();
      e.target = std::move(target);
      return result{std::move(e), ""};
    }
    if (S_ISDIR(st.st_mode))
      return result{std::nullopt, "now a directory"};
    if (!S_ISREG(st.st_mode))
      return result{std::nullopt, "not a regular file or a symlink"};
    int fd = openat(parent_.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
      return make_error(errno == EACCES ? errc::unauthorized : errc::operation_failed,
                        fmt::format("cannot read {}: {}", rel, errno_text(errno)));
    unique_fd file{fd};
    if (fstat(file.get(), &st) != 0 || !S_ISREG(st.st_mode))
      return make_error(errc::conflict, fmt::format("{} changed while it was read", rel));
    e.kind = entry_kind::file;
    e.mode = (st.st_mode & S_IXUSR) ? 0755 : 0644;
    e.size = static_cast<std::uint64_t>(st.st_size);
    return result{std::move(e), ""};
  }

private:
  unique_fd top_;
  unique_fd parent_;
  std::string parent_name_;
  int parent_errno_ = 0;
};

} // namespace

expected<source> scan(const fs::path& path, const scan_options& opts) {
  std::error_code ec;
  auto st = fs::status(path, ec);
  if (ec || !fs::exists(st))
    return make_error(errc::bad_request, fmt::format("{} does not exist", path.string()));
  if (!fs::is_directory(st))
    return make_error(
      errc::bad_request,
      fmt::format("{} is not a directory: a workspace is a git checkout or a directory in one", path.string()));

  auto probe = git(path, {"rev-parse", "--is-bare-repository", "--is-inside-work-tree"});
  if (probe.exit_code != 0)
    return make_error(errc::bad_request, fmt::format("{} is not in a git checkout ({}); `git init` makes one",
                                                     path.string(), git_failure(probe)));
  auto flags = split_lines(probe.out);
  if (flags.size() < 2 || flags[0] == "true" || flags[1] != "true")
    return make_error(
      errc::bad_request,
      fmt::format("{} is not in a git working tree (a bare repository has no files to ship)", path.string()));

  auto where = git(path, {"rev-parse", "--show-toplevel", "--show-prefix", "--show-object-format"});
  if (where.exit_code != 0)
    return make_error(errc::operation_failed,
                      fmt::format("git rev-parse in {}: {}", path.string(), git_failure(where)));
  auto lines = split_lines(where.out);
  if (lines.size() < 3)
    return make_error(errc::operation_failed, fmt::format("git rev-parse in {}: unexpected output", path.string()));
  source out;
  out.top = lines[0];
  out.prefix = lines[1];
  if (lines[2] != "sha1")
    return make_error(
      errc::bad_request,
      fmt::format("{} uses {} object ids; workspaces support SHA-1 repositories only", out.top.string(), lines[2]));

  auto head = git(out.top, {"rev-parse", "-q", "--verify", "HEAD^{commit}"});
  if (head.exit_code == 0)
    out.head = trim(head.out);
  auto branch = git(out.top, {"symbolic-ref", "-q", "--short", "HEAD"});
  if (branch.exit_code == 0)
    out.branch = trim(branch.out);

  auto tracked = git(out.top, {"ls-files", "-z", "--stage", "--recurse-submodules"});
  if (tracked.exit_code != 0)
    return make_error(errc::operation_failed,
                      fmt::format("git ls-files in {}: {}", out.top.string(), git_failure(tracked)));
  std::vector<std::pair<std::string, bool>> paths; // path, untracked
  for (const auto& rec : split_nul(tracked.out)) {
    // "MODE OID STAGE\tPATH"
    auto tab = rec.find('\t');
    if (tab == std::string::npos || tab < 6)
      return make_error(errc::operation_failed, "git ls-files: unexpected record " + quoted(rec));
    std::string rel = rec.substr(tab + 1);
    if (rec.compare(0, 6, "160000") == 0) {
      out.skipped.push_back(rel + ": a submodule that is not checked out");
      continue;
    }
    paths.emplace_back(std::move(rel), false);
  }
  if (opts.include_untracked) {
    auto others = git(out.top, {"ls-files", "-z", "--others", "--exclude-standard"});
    if (others.exit_code != 0)
      return make_error(errc::operation_failed,
                        fmt::format("git ls-files --others in {}: {}", out.top.string(), git_failure(others)));
    for (auto& rel : split_nul(others.out))
      paths.emplace_back(std::move(rel), true);
  }
  std::sort(paths.begin(), paths.end());
  paths.erase(std::unique(paths.begin(), paths.end(), [](const auto& a, const auto& b) { return a.first == b.first; }),
              paths.end());

  int top = open(out.top.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (top < 0)
    return make_error(errc::operation_failed, fmt::format("cannot open {}: {}", out.top.string(), errno_text(errno)));
  tree_reader reader{unique_fd{top}};
  for (const auto& [rel, untracked] : paths) {
    auto r = reader.read(rel);
    if (!r)
      return r.err();
    if (!r->first) {
      out.skipped.push_back(rel + ": " + r->second);
      continue;
    }
    r->first->untracked = untracked;
    out.bytes += r->first->size;
    out.entries.push_back(std::move(*r->first));
  }
  return out;
}

} // namespace banger::workspace
