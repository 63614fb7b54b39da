// See file_sync.hpp.
#include "workspace/file_sync.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include <fmt/format.h>

#include "common/process.hpp"
#include "common/text.hpp"
#include "workspace/git_run.hpp"
#include "workspace/rules.hpp"

namespace banger::workspace {

namespace fs = std::filesystem;

namespace {

struct fd_guard {
  int fd = -1;
  explicit fd_guard(int f) : fd(f) {}
  ~fd_guard() {
    if (fd >= 0)
      ::close(fd);
  }
  fd_guard(const fd_guard&) = delete;
  fd_guard& operator=(const fd_guard&) = delete;
};

bool has_control(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

class collector {
public:
  explicit collector(home_sync& out) : out_(out) {}

  /// The source `rel` of the home (`home_fd`), to `guest`.
  expected<void> source(int home_fd, const std::string& shown, const std::string& rel, const std::string& guest,
                        std::optional<std::uint32_t> mode) {
    open_how how{};
    how.flags = O_PATH | O_CLOEXEC;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS; // links that stay in the home are fine
    fd_guard at(static_cast<int>(syscall(SYS_openat2, home_fd, rel.c_str(), &how, sizeof how)));
    if (at.fd < 0) {
      int err = errno;
      if (err == ENOENT)
        return warn(fmt::format("{} does not exist; not synced", shown));
      if (err == EXDEV || err == ELOOP)
        return warn(fmt::format("{} leads out of your home through a symlink; not synced", shown));
      if (err == EACCES)
        return make_error(errc::unauthorized, fmt::format("file_sync: cannot read {}: {}", shown, errno_text(err)));
      return make_error(errc::operation_failed, fmt::format("file_sync: opening {}: {}", shown, errno_text(err)));
    }
    struct stat st {};
    if (::fstat(at.fd, &st) != 0)
      return make_error(errc::operation_failed, fmt::format("file_sync: stat {}: {}", shown, errno_text(errno)));
    if (S_ISDIR(st.st_mode))
      return directory(at.fd, ".", shown, guest, mode, 0);
    if (!S_ISREG(st.st_mode))
      return warn(fmt::format("{} is not a regular file or a directory; not synced", shown));
    // An O_PATH descriptor cannot be read: open it again the same way, and make sure it is the
    // same file.
    how.flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC;
    fd_guard fd(static_cast<int>(syscall(SYS_openat2, home_fd, rel.c_str(), &how, sizeof how)));
    struct stat again {};
    if (fd.fd >= 0 && (::fstat(fd.fd, &again) != 0 || again.st_ino != st.st_ino || again.st_dev != st.st_dev))
      return warn(fmt::format("{} changed while it was read; not synced", shown));
    return file(fd.fd, shown, guest, mode);
  }

private:
  expected<void> warn(std::string why) {
    out_.warnings.push_back("file_sync: " + std::move(why));
    return {};
  }

  /// The regular file open as `fd` (-1: its open failed, errno says why).
  expected<void> file(int fd, const std::string& shown, const std::string& guest, std::optional<std::uint32_t> mode) {
    if (fd < 0) {
      int err = errno;
      if (err == EACCES)
        return make_error(errc::unauthorized, fmt::format("file_sync: cannot read {}: {}", shown, errno_text(err)));
      if (err == ELOOP)
        return warn(fmt::format("{} became a symlink; not synced", shown));
      return make_error(errc::operation_failed, fmt::format("file_sync: opening {}: {}", shown, errno_text(err)));
    }
    if (auto ok = validate_guest_path(guest); !ok)
      return make_error(errc::bad_request, fmt::format("file_sync: {} -> {}: {}", shown, guest, ok.err().message));
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
      return warn(fmt::format("{} is no longer a regular file; not synced", shown));
    if (out_.files.size() >= max_sync_files)
      return make_error(errc::bad_request, fmt::format("file_sync: more than {} files to sync (at {}); sync fewer",
                                                       max_sync_files, shown));
    if (out_.bytes + static_cast<std::uint64_t>(st.st_size) > max_sync_bytes)
      return make_error(errc::bad_request, fmt::format("file_sync: the synced files pass {} at {}; sync less",
                                                       human_bytes(max_sync_bytes), shown));
    synced_file f;
    f.guest_path = guest;
    f.mode = mode.value_or(st.st_mode & 0777);
    f.data.resize(static_cast<std::size_t>(st.st_size));
    std::size_t got = 0;
    while (got < f.data.size()) {
      auto n = ::read(fd, f.data.data() + got, f.data.size() - got);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return make_error(errc::operation_failed, fmt::format("file_sync: reading {}: {}", shown, errno_text(errno)));
      if (n == 0)
        break;
      got += static_cast<std::size_t>(n);
    }
    f.data.resize(got); // a file that shrank while read is synced as it was read
    out_.bytes += got;
    out_.files.push_back(std::move(f));
    return {};
  }

  /// Directory `name` in `dir`: its files, in name order, recursively; links and special files
  /// skipped.
  expected<void> directory(int dir, const char* name, const std::string& shown, const std::string& guest,
                           std::optional<std::uint32_t> mode, std::size_t depth) {
    if (depth > max_sync_depth)
      return warn(fmt::format("{} is deeper than {} directories; not synced", shown, max_sync_depth));
    fd_guard d(::openat(dir, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (depth ? O_NOFOLLOW : 0)));
    if (d.fd < 0) {
      int err = errno;
      if (err == EACCES)
        return make_error(errc::unauthorized, fmt::format("file_sync: cannot read {}: {}", shown, errno_text(err)));
      return make_error(errc::operation_failed, fmt::format("file_sync: opening {}: {}", shown, errno_text(err)));
    }
    std::vector<std::string> names;
    {
      int copy = ::dup(d.fd);
      DIR* ds = copy < 0 ? nullptr : ::fdopendir(copy);
      if (!ds) {
        if (copy >= 0)
          ::close(copy);
        return make_error(errc::operation_failed, fmt::format("file_sync: listing {}: {}", shown, errno_text(errno)));
      }
      while (auto* e = ::readdir(ds))
        if (std::string_view n = e->d_name; n != "." && n != "..")
          names.emplace_back(n);
      ::closedir(ds);
    }
    std::sort(names.begin(), names.end());
    for (const auto& n : names) {
      std::string path = shown + "/" + n;
      if (has_control(n)) {
        if (auto ok = warn(fmt::format("{} has a control character in its name; not synced", quoted(path))); !ok)
          return ok;
        continue;
      }
      struct stat st {};
      if (::fstatat(d.fd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT)
          continue; // gone since the listing
        return make_error(errc::operation_failed, fmt::format("file_sync: stat {}: {}", path, errno_text(errno)));
      }
      expected<void> ok;
      if (S_ISLNK(st.st_mode))
        ok = warn(fmt::format("{} is a symlink; not synced (links in a synced directory are never followed)", path));
      else if (S_ISDIR(st.st_mode))
        ok = directory(d.fd, n.c_str(), path, guest + "/" + n, mode, depth + 1);
      else if (S_ISREG(st.st_mode)) {
        fd_guard f(::openat(d.fd, n.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
        ok = file(f.fd, path, guest + "/" + n, mode);
      } else
        ok = warn(fmt::format("{} is not a regular file or a directory; not synced", path));
      if (!ok)
        return ok;
    }
    return {};
  }

  home_sync& out_;
};

/// A gitconfig value in double quotes: backslash and quote escaped.
std::string config_value(std::string_view v) {
  std::string out = "\"";
  for (char c : v) {
    if (c == '\\' || c == '"')
      out += '\\';
    out += c;
  }
  return out + "\"";
}

} // namespace

expected<home_sync> collect_file_sync(const std::vector<file_sync_rule>& rules, const fs::path& home) {
  home_sync out;
  if (rules.empty())
    return out;
  fd_guard home_fd(::open(home.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (home_fd.fd < 0)
    return make_error(errc::operation_failed,
                      fmt::format("file_sync: opening your home {}: {}", home.string(), errno_text(errno)));
  collector c(out);
  for (const auto& r : rules) {
    if (auto ok = validate_guest_path(r.guest); !ok)
      return make_error(errc::bad_request, fmt::format("file_sync (config line {}): {}", r.line, ok.err().message));
    // Where it is in the home: "~", "~/x", or an absolute path below the home.
    std::string rel;
    if (r.host == "~" || r.host.rfind("~/", 0) == 0) {
      rel = r.host.size() > 2 ? r.host.substr(2) : "";
    } else if (!r.host.empty() && r.host[0] == '/') {
      auto p = fs::path(r.host).lexically_relative(home).string();
      if (p.empty() || p == ".." || p.rfind("../", 0) == 0) {
        out.warnings.push_back(
          fmt::format("file_sync: {} is not inside your home {}; not synced", r.host, home.string()));
        continue;
      }
      rel = p == "." ? "" : p;
    } else {
      out.warnings.push_back(
        fmt::format("file_sync: {} is neither ~/... nor an absolute path in your home; not synced", r.host));
      continue;
    }
    while (!rel.empty() && rel.back() == '/')
      rel.pop_back();
    if (rel.empty() || rel == ".") {
      out.warnings.push_back(fmt::format("file_sync: {} is your whole home; name what to sync inside it", r.host));
      continue;
    }
    if (auto ok = c.source(home_fd.fd, r.host, rel, r.guest, r.mode); !ok)
      return ok.err();
  }
  return out;
}

std::optional<synced_file> git_identity_file(std::string_view name, std::string_view email, std::string* warning) {
  if (name.empty() && email.empty())
    return std::nullopt;
  if (has_control(name) || has_control(email)) {
    if (warning)
      *warning = "the host's git user.name or user.email has a control character; it is not written to the guest";
    return std::nullopt;
  }
  synced_file f;
  f.guest_path = "/root/.gitconfig";
  f.mode = 0644;
  f.keep_existing = true;
  f.data = std::string(identity_marker) + "\n[user]\n";
  if (!name.empty())
    f.data += "\tname = " + config_value(name) + "\n";
  if (!email.empty())
    f.data += "\temail = " + config_value(email) + "\n";
  return f;
}

std::pair<std::string, std::string> host_git_identity(const fs::path& dir) {
  // One git for both (this is on the path of every `vm run`): "user.name VALUE" lines, the
  // last of a key winning as it does for git.
  auto r = detail::git(dir, {"config", "--get-regexp", "^user\\.(name|email)$"});
  std::pair<std::string, std::string> out;
  if (r.exit_code != 0)
    return out;
  for (const auto& line : detail::split_lines(r.out)) {
    auto sp = line.find(' ');
    auto key = line.substr(0, sp), value = sp == std::string::npos ? std::string() : line.substr(sp + 1);
    (key == "user.name" ? out.first : out.second) = value;
  }
  return out;
}

expected<home_sync> plan_home_sync(const std::vector<file_sync_rule>& rules, const fs::path& home,
                                   const fs::path& git_dir) {
  auto out = collect_file_sync(rules, home);
  if (!out)
    return out;
  bool synced = std::any_of(out->files.begin(), out->files.end(),
                            [](const synced_file& f) { return f.guest_path == "/root/.gitconfig"; });
  if (synced)
    return out;
  auto [name, email] = host_git_identity(git_dir);
  std::string warning;
  if (auto f = git_identity_file(name, email, &warning)) {
    out->bytes += f->data.size();
    out->files.push_back(std::move(*f));
  } else if (!warning.empty()) {
    out->warnings.push_back(std::move(warning));
  }
  return out;
}

} // namespace banger::workspace
