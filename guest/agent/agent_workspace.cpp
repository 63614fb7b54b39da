// The Agent's workspace landing (agent.hpp; docs/workspaces.md, "Into a running VM"): the
// stream's pieces written into a staging directory beside the guest path, then swapped in by
// renameat2(RENAME_EXCHANGE), so the workspace appears whole or not at all. Every directory is
// opened one component at a time with O_NOFOLLOW, so no entry lands through a symlink an
// earlier entry made; files are created with O_EXCL. The host checks the stream's order and
// counts as well (workspace/land_remote.hpp); the agent checks what it uses. Runs on the one
// KJ event-loop thread of banger-agent, blocking it for the I/O.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include "guest/agent/agent_internal.hpp"
#include "workspace/git_layout.hpp"

namespace banger::guest::detail {

namespace {

/// Rough cost of one entry beyond its bytes (inode, directory entry, extent block).
constexpr std::uint64_t per_entry_overhead = 4096;

/// Removes `name` below `dir`, a tree or not, following no symlink: 0 or an errno.
int remove_tree(int dir, const char* name) {
  struct stat st {};
  if (::fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
    return errno == ENOENT ? 0 : errno;
  if (!S_ISDIR(st.st_mode))
    return ::unlinkat(dir, name, 0) == 0 ? 0 : errno;
  int fd = ::openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return errno;
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    int err = errno;
    ::close(fd);
    return err;
  }
  int err = 0;
  while (dirent* e = ::readdir(d)) {
    std::string_view n(e->d_name);
    if (n == "." || n == "..")
      continue;
    if (int r = remove_tree(::dirfd(d), e->d_name); r != 0 && err == 0)
      err = r;
  }
  ::closedir(d);
  if (err == 0 && ::unlinkat(dir, name, AT_REMOVEDIR) != 0)
    err = errno;
  return err;
}

/// Why `rel` is no entry path: empty or over 4095 bytes, a NUL, an empty, "." or ".."
/// component or one over 255 bytes, and (`shipped`) a ".git" component.
std::optional<std::string> bad_entry(std::string_view rel, bool shipped) {
  if (rel.empty() || rel.size() > 4095)
    return std::string("an empty or over-long path");
  if (rel.find('\0') != std::string_view::npos)
    return std::string("a NUL in a path");
  std::size_t at = 0;
  while (true) {
    auto end = rel.find('/', at);
    auto comp = rel.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at);
    if (comp.empty() || comp == "." || comp == ".." || comp.size() > 255 || (shipped && comp == ".git"))
      return "a path with a bad component: " + std::string(rel);
    if (end == std::string_view::npos)
      return std::nullopt;
    at = end + 1;
  }
}

class landing_impl final : public agent_rpc::WorkspaceLanding::Server {
public:
  landing_impl(int parent, std::string name, std::string staging, int root, std::uint64_t bytes, std::uint64_t files)
    : parent_(parent), name_(std::move(name)), staging_(std::move(staging)), root_(root), bytes_(bytes), files_(files),
      now_(std::time(nullptr)) {}

  ~landing_impl() noexcept {
    close_file();
    close_dir();
    ::close(root_);
    if (!committed_)
      (void)remove_tree(parent_, staging_.c_str());
    ::close(parent_);
  }

  kj::Promise<void> push(PushContext c) override {
    auto f = c.getResults().initFailure();
    if (!failed_.empty()) {
      fail(f, e_bad_request, failed_);
      return kj::READY_NOW;
    }
    for (auto p : c.getParams().getPieces()) {
      std::string why = p.isData() ? data(p.getData()) : entry(p.getEntry());
      if (!why.empty()) {
        failed_ = "workspace landing: " + why;
        fail(f, e_bad_request, failed_);
        break;
      }
    }
    return kj::READY_NOW;
  }

  kj::Promise<void> seal(SealContext c) override {
    auto r = c.getResults();
    std::string why = failed_;
    if (why.empty())
      why = end_file();
    if (why.empty() && records_ != files_)
      why = "workspace landing: " + std::to_string(records_) + " of the " + std::to_string(files_) +
            " announced entries came";
    if (!why.empty()) {
      failed_ = why;
      fail(r.initFailure(), e_bad_request, why);
      return kj::READY_NOW;
    }
    sealed_ = true;
    auto list = r.initStats(static_cast<unsigned>(stats_.size()));
    for (unsigned i = 0; i < stats_.size(); ++i) {
      const auto& s = stats_[i];
      auto o = list[i];
      o.setCtimeS(static_cast<std::uint32_t>(s.st_ctim.tv_sec));
      o.setCtimeNs(static_cast<std::uint32_t>(s.st_ctim.tv_nsec));
      o.setMtimeS(static_cast<std::uint32_t>(s.st_mtim.tv_sec));
      o.setMtimeNs(static_cast<std::uint32_t>(s.st_mtim.tv_nsec));
      o.setDev(static_cast<std::uint32_t>(s.st_dev));
      o.setIno(static_cast<std::uint32_t>(s.st_ino));
      o.setMode(s.st_mode);
      o.setUid(s.st_uid);
      o.setGid(s.st_gid);
      o.setSize(static_cast<std::uint32_t>(s.st_size));
    }
    return kj::READY_NOW;
  }

  kj::Promise<void> commit(CommitContext c) override {
    auto f = c.getResults().initFailure();
    if (!sealed_ || committed_ || !failed_.empty()) {
      fail(f, e_bad_request, failed_.empty() ? "workspace landing: commit before seal, or twice" : failed_);
      return kj::READY_NOW;
    }
    auto index = c.getParams().getIndex();
    std::string why;
    int git = dir_of(".git/index", why);
    if (git < 0) {
      fail(f, e_operation_failed, why);
      return kj::READY_NOW;
    }
    int fd = ::openat(git, "index", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    int err = fd < 0 ? errno : write_all(fd, index.begin(), index.size());
    if (fd >= 0 && ::close(fd) != 0 && err == 0)
      err = errno;
    if (err != 0) {
      fail(f, e_operation_failed, "write .git/index: " + errno_str(err));
      return kj::READY_NOW;
    }
    // The swap: exchanged with the workspace that is there (whose tree then goes), or renamed
    // into a free name.
    struct stat st {};
    bool there = ::fstatat(parent_, name_.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (there && !S_ISDIR(st.st_mode)) {
      fail(f, e_bad_request, name_ + " is there in the guest and is not a directory; choose another --guest-path");
      return kj::READY_NOW;
    }
    unsigned flags = there ? RENAME_EXCHANGE : RENAME_NOREPLACE;
    if (::renameat2(parent_, staging_.c_str(), parent_, name_.c_str(), flags) != 0) {
      fail(f, e_operation_failed, "swap the workspace in: " + errno_str(errno));
      return kj::READY_NOW;
    }
    committed_ = true;
    if (there)
      (void)remove_tree(parent_, staging_.c_str()); // the previous tree, now under the staging name
    ::syncfs(parent_);
    return kj::READY_NOW;
  }

  /// Makes the staging directory `rel` (and those above it): "" or why not.
  std::string make_dir(const std::string& rel) {
    std::string why;
    return dir_of(rel + "/x", why) < 0 ? why : std::string();
  }

private:
  std::string entry(agent_rpc::WorkspacePiece::Entry::Reader e) {
    if (auto why = end_file(); !why.empty())
      return why;
    if (++records_ > files_)
      return "more than the " + std::to_string(files_) + " announced entries";
    if (received_ + e.getSize() > bytes_)
      return "more than the " + std::to_string(bytes_) + " announced bytes";
    auto p = e.getPath();
    std::string path(p.asChars().begin(), p.size());
    bool git = e.getGit();
    if (auto why = bad_entry(path, !git))
      return *why;
    std::string rel = git ? ".git/" + path : path;
    std::string why;
    int dir = dir_of(rel, why);
    if (dir < 0)
      return why;
    std::string name = rel.substr(rel.rfind('/') == std::string::npos ? 0 : rel.rfind('/') + 1);
    std::int64_t mtime = git || e.getMtime() <= 0 || e.getMtime() >= now_ ? now_ - 1 : e.getMtime();
    timespec times[2] = {{mtime, 0}, {mtime, 0}};
    if (e.getSymlink()) {
      auto t = e.getTarget();
      std::string target(t.asChars().begin(), t.size());
      if (git || target.empty() || target.find('\0') != std::string::npos)
        return "a bad symlink: " + path;
      struct stat st {};
      if (::symlinkat(target.c_str(), dir, name.c_str()) != 0 ||
          ::utimensat(dir, name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0 ||
          ::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
        return "symlink " + path + ": " + errno_str(errno);
      stats_.push_back(st);
      return {};
    }
    std::uint32_t mode = git ? 0644 : e.getMode();
    if (mode != 0644 && mode != 0755)
      return path + " has a mode other than 0644 or 0755";
    cur_ = ::openat(dir, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (cur_ < 0 || ::fchmod(cur_, mode) != 0)
      return "create " + path + ": " + errno_str(errno);
    cur_path_ = path;
    cur_left_ = e.getSize();
    cur_git_ = git;
    cur_times_[0] = cur_times_[1] = times[0];
    return {};
  }

  std::string data(capnp::Data::Reader d) {
    if (cur_ < 0 || d.size() > cur_left_)
      return "more bytes than announced for " + cur_path_;
    if (int err = write_all(cur_, d.begin(), d.size()); err != 0)
      return "write " + cur_path_ + ": " + errno_str(err) + (err == ENOSPC ? " (the work disk is full)" : "");
    cur_left_ -= d.size();
    received_ += d.size();
    return {};
  }

  /// Finishes the file being written, which must have all its bytes.
  std::string end_file() {
    if (cur_ < 0)
      return {};
    if (cur_left_ > 0)
      return cur_path_ + " ended " + std::to_string(cur_left_) + " bytes short";
    struct stat st {};
    if (::futimens(cur_, cur_times_) != 0 || ::fstat(cur_, &st) != 0)
      return "finish " + cur_path_ + ": " + errno_str(errno);
    close_file();
    if (!cur_git_)
      stats_.push_back(st);
    return {};
  }

  /// The staging directory holding `rel`'s last component, made (0755) where missing; -1 with
  /// `why` set when it cannot be (a component that is a file or a symlink).
  int dir_of(const std::string& rel, std::string& why) {
    auto slash = rel.rfind('/');
    std::string dir = slash == std::string::npos ? std::string() : rel.substr(0, slash);
    if (dir.empty())
      return root_;
    if (dir_fd_ >= 0 && dir == dir_path_)
      return dir_fd_;
    close_dir();
    int at = root_;
    std::size_t from = 0;
    while (from <= dir.size()) {
      auto end = dir.find('/', from);
      std::string comp = dir.substr(from, end == std::string::npos ? std::string::npos : end - from);
      if (::mkdirat(at, comp.c_str(), 0755) != 0 && errno != EEXIST) {
        why = "mkdir " + dir + ": " + errno_str(errno);
        break;
      }
      int next = ::openat(at, comp.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (next < 0)
        why =
          "open " + dir + ": " + errno_str(errno) + (errno == ELOOP || errno == ENOTDIR ? " (not a directory)" : "");
      if (at != root_)
        ::close(at);
      if (next < 0)
        return -1;
      at = next;
      if (end == std::string::npos) {
        dir_fd_ = at;
        dir_path_ = dir;
        return at;
      }
      from = end + 1;
    }
    if (at != root_)
      ::close(at);
    return -1;
  }

  void close_file() {
    if (cur_ >= 0)
      ::close(cur_);
    cur_ = -1;
  }
  void close_dir() {
    if (dir_fd_ >= 0)
      ::close(dir_fd_);
    dir_fd_ = -1;
    dir_path_.clear();
  }

  int parent_;
  std::string name_, staging_;
  int root_; ///< the staging directory
  std::uint64_t bytes_, files_, records_ = 0, received_ = 0;
  std::time_t now_;
  std::string failed_;
  bool sealed_ = false, committed_ = false;
  std::vector<struct stat> stats_;
  int cur_ = -1;
  std::string cur_path_;
  std::uint64_t cur_left_ = 0;
  bool cur_git_ = false;
  timespec cur_times_[2] = {};
  int dir_fd_ = -1;
  std::string dir_path_;
};

} // namespace

kj::Promise<void> agent_impl::land_workspace_now(LandWorkspaceContext c) {
  auto p = c.getParams();
  auto r = c.getResults();
  std::string guest = p.getGuestPath();
  if (auto why = bad_path(p.getGuestPath());
      why || guest.rfind("/root/", 0) != 0 || guest.size() <= 6 || guest.back() == '/') {
    fail(r.initFailure(), e_bad_request,
         "landWorkspace " + guest + ": " + (why ? *why : std::string("a workspace is strictly below /root")));
    return kj::READY_NOW;
  }
  std::string at = svc_.opts.home + guest.substr(5);
  auto slash = at.rfind('/');
  std::string parent = at.substr(0, slash), name = at.substr(slash + 1);
  if (int err = mkdir_parents(at); err != 0) {
    fail(r.initFailure(), e_operation_failed, "mkdir " + parent + ": " + errno_str(err));
    return kj::READY_NOW;
  }
  int pfd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (pfd < 0) {
    fail(r.initFailure(), e_operation_failed, "open " + parent + ": " + errno_str(errno));
    return kj::READY_NOW;
  }
  std::string staging = "." + name + ".banger-new", old = "." + name + ".banger-old";
  // What a landing that was cut short left: a staging tree goes. The work-disk writer swaps
  // with two renames: an old tree with no workspace is the previous one, put back.
  struct stat st {};
  (void)remove_tree(pfd, staging.c_str());
  if (::fstatat(pfd, old.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (::fstatat(pfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
      (void)::renameat(pfd, old.c_str(), pfd, name.c_str());
    else
      (void)remove_tree(pfd, old.c_str());
  }
  auto fail_closed = [&](errc code, const std::string& why) {
    ::close(pfd);
    fail(r.initFailure(), code, why);
    return kj::READY_NOW;
  };
  struct statvfs vfs {};
  if (::fstatvfs(pfd, &vfs) != 0)
    return fail_closed(e_operation_failed, "statvfs " + parent + ": " + errno_str(errno));
  std::uint64_t need = p.getBytes() + (p.getFiles() + 16) * per_entry_overhead;
  std::uint64_t free = static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  if (need > free)
    return fail_closed(e_bad_request, "the workspace needs about " + std::to_string(need >> 20) +
                                        " MiB but the work disk has " + std::to_string(free >> 20) +
                                        " MiB free; give the VM a bigger one (vm create --disk-size MiB) or ship less");
  if (vfs.f_favail != 0 && 2 * p.getFiles() + 16 > vfs.f_favail)
    return fail_closed(e_bad_request, "the workspace has " + std::to_string(p.getFiles()) +
                                        " files but the work disk has " + std::to_string(vfs.f_favail) +
                                        " free inodes; give the VM a bigger one (vm create --disk-size MiB)");
  if (::mkdirat(pfd, staging.c_str(), 0755) != 0)
    return fail_closed(e_operation_failed, "mkdir " + parent + "/" + staging + ": " + errno_str(errno));
  int root = ::openat(pfd, staging.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (root < 0) {
    int err = errno;
    (void)remove_tree(pfd, staging.c_str());
    return fail_closed(e_operation_failed, "open " + staging + ": " + errno_str(err));
  }
  auto landing = kj::heap<landing_impl>(pfd, name, staging, root, p.getBytes(), p.getFiles());
  for (const char* d : workspace::git_skeleton_dirs)
    if (std::string why = landing->make_dir(d); !why.empty()) {
      fail(r.initFailure(), e_operation_failed, why);
      return kj::READY_NOW; // the landing goes, and its staging tree with it
    }
  r.setLanding(kj::mv(landing));
  return kj::READY_NOW;
}

} // namespace banger::guest::detail
