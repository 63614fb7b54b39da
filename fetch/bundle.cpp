// See bundle.hpp. Reading trusts nothing in the archive: every name, type and size is checked
// before a byte is written, and the byte count is checked again while copying.
#include "fetch/bundle.hpp"

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <memory>
#include <set>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <fmt/format.h>

#include "common/process.hpp"
#include "common/sha256.hpp"
#include "common/text.hpp"

namespace banger::fetch {

namespace fs = std::filesystem;

namespace {

struct archive_read_deleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
struct archive_write_deleter {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct entry_deleter {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

std::string archive_text(archive* a) {
  const char* s = archive_error_string(a);
  return s != nullptr ? s : "unknown libarchive error";
}

// Removes a scratch file or directory tree unless committed.
struct scratch_guard {
  fs::path path;
  bool committed = false;
  ~scratch_guard() {
    if (!committed && !path.empty()) {
      std::error_code ec;
      fs::remove_all(path, ec);
    }
  }
};

fs::path parent_of(const fs::path& p) {
  fs::path parent = p.parent_path();
  return parent.empty() ? fs::path(".") : parent;
}

expected<void> fsync_path(const fs::path& p) {
  unique_fd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd || ::fsync(fd.get()) != 0)
    return make_error(errc::operation_failed, fmt::format("fsync {}: {}", p.string(), errno_text(errno)));
  return {};
}

// rename(2) that never replaces an existing destination.
expected<void> rename_noreplace(const fs::path& from, const fs::path& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) != 0) {
    int e = errno;
    if (e == EEXIST)
      return make_error(errc::already_exists, fmt::format("{} already exists", to.string()));
    return make_error(errc::operation_failed,
                      fmt::format("rename {} to {}: {}", from.string(), to.string(), errno_text(e)));
  }
  return {};
}

bool write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return false;
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

// Appends one source file to `a` as a flat member.
expected<void> add_member(archive* a, const fs::path& src_dir, const std::string& name) {
  fs::path src = src_dir / name;
  unique_fd in(::open(src.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!in) {
    int e = errno;
    if (e == ELOOP)
      return make_error(errc::bad_request, fmt::format("{} is a symlink; bundles hold regular files", src.string()));
    return make_error(e == ENOENT ? errc::not_found : errc::operation_failed,
                      fmt::format("open {}: {}", src.string(), errno_text(e)));
  }
  struct stat st {};
  if (::fstat(in.get(), &st) != 0)
    return make_error(errc::operation_failed, fmt::format("fstat {}: {}", src.string(), errno_text(errno)));
  if (!S_ISREG(st.st_mode))
    return make_error(errc::bad_request, fmt::format("{} is not a regular file", src.string()));

  std::unique_ptr<archive_entry, entry_deleter> entry(archive_entry_new());
  archive_entry_set_pathname(entry.get(), name.c_str());
  archive_entry_set_filetype(entry.get(), AE_IFREG);
  archive_entry_set_perm(entry.get(), 0644);
  archive_entry_set_size(entry.get(), st.st_size);
  archive_entry_set_uid(entry.get(), 0);
  archive_entry_set_gid(entry.get(), 0);
  archive_entry_set_mtime(entry.get(), 0, 0);
  if (archive_write_header(a, entry.get()) != ARCHIVE_OK)
    return make_error(errc::operation_failed, fmt::format("bundle {}: {}", name, archive_text(a)));

  std::uint64_t left = static_cast<std::uint64_t>(st.st_size);
  char buf[1 << 16];
  while (left > 0) {
    ssize_t n = ::read(in.get(), buf, left < sizeof buf ? left : sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return make_error(errc::operation_failed, fmt::format("read {}: {}", src.string(), errno_text(errno)));
    if (n == 0)
      return make_error(errc::conflict, fmt::format("{} shrank while it was being bundled; try again", src.string()));
    if (archive_write_data(a, buf, static_cast<std::size_t>(n)) != n)
      return make_error(errc::operation_failed, fmt::format("bundle {}: {}", name, archive_text(a)));
    left -= static_cast<std::uint64_t>(n);
  }
  return {};
}

// Extracts the current entry's data into `fd`, keeping `total` within `cap`.
expected<void> copy_member(archive* a, int fd, const std::string& name, const std::string& bundle, std::uint64_t& total,
                           std::uint64_t cap) {
  char buf[1 << 16];
  for (;;) {
    la_ssize_t n = archive_read_data(a, buf, sizeof buf);
    if (n == 0)
      return {};
    if (n < 0)
      return make_error(errc::bad_request, fmt::format("read member {} of {}: {}", name, bundle, archive_text(a)));
    // Defense in depth: the header's size was checked against the cap already.
    if (static_cast<std::uint64_t>(n) > cap - total)
      return make_error(errc::bad_request,
                        fmt::format("refusing {}: its contents exceed the cap of {} bytes", bundle, cap));
    if (!write_all(fd, buf, static_cast<std::size_t>(n)))
      return make_error(errc::operation_failed, fmt::format("write {}: {}", name, errno_text(errno)));
    total += static_cast<std::uint64_t>(n);
  }
}

} // namespace

expected<void> check_member_name(std::string_view name) {
  auto refuse = [&](std::string_view why) {
    return make_error(errc::bad_request, fmt::format("member {} {}", quoted(name), why));
  };
  if (name.empty())
    return make_error(errc::bad_request, "a member has an empty name");
  if (name.front() == '/')
    return refuse("is an absolute path; bundles hold plain file names");
  if (name == ".." || name.starts_with("../") || name.ends_with("/..") || name.find("/../") != std::string_view::npos)
    return refuse("climbs out of the bundle with \"..\"");
  if (name.find('/') != std::string_view::npos)
    return refuse("lies in a subdirectory; bundles hold plain file names");
  if (name.size() > 128)
    return refuse("is longer than 128 characters");
  if (name.front() == '.')
    return refuse("starts with '.'");
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-' || c == '+';
    if (!ok)
      return refuse("has a character outside [A-Za-z0-9._+-]");
  }
  return {};
}

expected<std::vector<std::string>> list_bundle_files(const fs::path& dir) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec)
    return make_error(ec == std::errc::no_such_file_or_directory ? errc::not_found : errc::operation_failed,
                      fmt::format("list {}: {}", dir.string(), ec.message()));
  std::vector<std::string> names;
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    std::string name = it->path().filename().string();
    auto type = it->symlink_status(ec).type();
    if (ec)
      break;
    if (type != fs::file_type::regular)
      return make_error(errc::bad_request, fmt::format("{} holds {}, which is not a regular file; bundles hold "
                                                       "regular files only",
                                                       dir.string(), name));
    if (auto ok = check_member_name(name); !ok)
      return make_error(errc::bad_request, fmt::format("{}: {}", dir.string(), ok.err().message));
    names.push_back(std::move(name));
  }
  if (ec)
    return make_error(errc::operation_failed, fmt::format("list {}: {}", dir.string(), ec.message()));
  std::sort(names.begin(), names.end());
  return names;
}

expected<written_bundle> write_bundle(const fs::path& src_dir, const std::vector<std::string>& files,
                                      const fs::path& out) {
  std::set<std::string> seen;
  for (const auto& f : files) {
    if (auto ok = check_member_name(f); !ok)
      return std::move(ok).err();
    if (!seen.insert(f).second)
      return make_error(errc::bad_request, fmt::format("{} is listed twice", f));
  }
  if (!seen.contains(std::string(bundle_manifest_name)))
    return make_error(errc::bad_request, fmt::format("a bundle needs {}; none is listed", bundle_manifest_name));
  if (files.size() > max_bundle_members)
    return make_error(errc::bad_request, fmt::format("a bundle holds at most {} files", max_bundle_members));
  std::error_code ec;
  if (fs::symlink_status(out, ec).type() != fs::file_type::not_found)
    return make_error(errc::already_exists, fmt::format("{} already exists; pick another file name", out.string()));

  std::string tmpl = (parent_of(out) / ("." + out.filename().string() + ".partial-XXXXXX")).string();
  unique_fd fd(::mkostemp(tmpl.data(), O_CLOEXEC));
  if (!fd) {
    int e = errno;
    return make_error(e == ENOENT ? errc::not_found : errc::operation_failed,
                      fmt::format("mkstemp {}: {}", tmpl, errno_text(e)));
  }
  scratch_guard guard{fs::path(tmpl)};

  std::unique_ptr<archive, archive_write_deleter> a(archive_write_new());
  if (!a)
    throw std::bad_alloc();
  if (archive_write_set_format_pax_restricted(a.get()) != ARCHIVE_OK ||
      archive_write_add_filter_zstd(a.get()) != ARCHIVE_OK || archive_write_open_fd(a.get(), fd.get()) != ARCHIVE_OK)
    return make_error(errc::operation_failed, fmt::format("create bundle {}: {}", out.string(), archive_text(a.get())));
  for (const auto& f : files)
    if (auto ok = add_member(a.get(), src_dir, f); !ok)
      return std::move(ok).err();
  if (archive_write_close(a.get()) != ARCHIVE_OK)
    return make_error(errc::operation_failed, fmt::format("finish bundle {}: {}", out.string(), archive_text(a.get())));
  if (::fchmod(fd.get(), 0644) != 0 || ::fsync(fd.get()) != 0)
    return make_error(errc::operation_failed, fmt::format("fsync {}: {}", tmpl, errno_text(errno)));

  auto digest = sha256_file(tmpl);
  if (!digest)
    return std::move(digest).err();
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0)
    return make_error(errc::operation_failed, fmt::format("fstat {}: {}", tmpl, errno_text(errno)));
  if (auto ok = rename_noreplace(tmpl, out); !ok)
    return std::move(ok).err();
  guard.committed = true;
  return written_bundle{std::move(*digest), static_cast<std::uint64_t>(st.st_size)};
}

expected<std::vector<bundle_member>> extract_bundle(const fs::path& bundle, const fs::path& dest_dir,
                                                    std::uint64_t max_total_bytes, std::string_view shown) {
  const std::string label = shown.empty() ? bundle.string() : std::string(shown);
  std::error_code ec;
  if (fs::symlink_status(dest_dir, ec).type() != fs::file_type::not_found)
    return make_error(errc::already_exists, fmt::format("{} already exists", dest_dir.string()));

  std::unique_ptr<archive, archive_read_deleter> a(archive_read_new());
  if (!a)
    throw std::bad_alloc();
  archive_read_support_filter_zstd(a.get());
  archive_read_support_format_tar(a.get());
  if (archive_read_open_filename(a.get(), bundle.c_str(), 1 << 16) != ARCHIVE_OK)
    return make_error(errc::bad_request, fmt::format("open bundle {}: {}", label, archive_text(a.get())));

  std::string tmpl = (parent_of(dest_dir) / ("." + dest_dir.filename().string() + ".partial-XXXXXX")).string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    int e = errno;
    return make_error(e == ENOENT ? errc::not_found : errc::operation_failed,
                      fmt::format("mkdtemp {}: {}", tmpl, errno_text(e)));
  }
  scratch_guard guard{fs::path(tmpl)};
  unique_fd dir(::open(tmpl.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir)
    return make_error(errc::operation_failed, fmt::format("open {}: {}", tmpl, errno_text(errno)));

  auto refuse = [&](const std::string& member, std::string_view why) {
    return make_error(errc::bad_request, fmt::format("refusing bundle {}: member {} {}", label, quoted(member), why));
  };
  std::vector<bundle_member> members;
  std::set<std::string> seen;
  std::uint64_t total = 0;
  for (;;) {
    archive_entry* e = nullptr;
    int r = archive_read_next_header(a.get(), &e);
    if (r == ARCHIVE_EOF)
      break;
    if (r < ARCHIVE_WARN)
      return make_error(errc::bad_request, fmt::format("read bundle {}: {}", label, archive_text(a.get())));
    const char* raw = archive_entry_pathname(e);
    std::string name = raw != nullptr ? raw : "";
    if (auto ok = check_member_name(name); !ok)
      return make_error(errc::bad_request, fmt::format("refusing bundle {}: {}", label, ok.err().message));
    if (archive_entry_hardlink(e) != nullptr)
      return refuse(name, "is a hard link; bundles hold regular files only");
    switch (archive_entry_filetype(e)) {
    case AE_IFREG: break;
    case AE_IFLNK: return refuse(name, "is a symlink; bundles hold regular files only");
    case AE_IFDIR: return refuse(name, "is a directory; bundles hold plain files only");
    default: return refuse(name, "is a device, fifo or socket; bundles hold regular files only");
    }
    if (!seen.insert(name).second)
      return refuse(name, "appears twice");
    if (seen.size() > max_bundle_members)
      return make_error(errc::bad_request,
                        fmt::format("refusing bundle {}: more than {} members", label, max_bundle_members));
    la_int64_t declared = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;
    if (declared < 0 || static_cast<std::uint64_t>(declared) > max_total_bytes - total)
      return refuse(name, fmt::format("would take the contents past the cap of {} bytes", max_total_bytes));

    unique_fd out(::openat(dir.get(), name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
    if (!out)
      return make_error(errc::operation_failed, fmt::format("create {}/{}: {}", tmpl, name, errno_text(errno)));
    std::uint64_t before = total;
    if (auto ok = copy_member(a.get(), out.get(), name, label, total, max_total_bytes); !ok)
      return std::move(ok).err();
    if (::fsync(out.get()) != 0)
      return make_error(errc::operation_failed, fmt::format("fsync {}/{}: {}", tmpl, name, errno_text(errno)));
    members.push_back(bundle_member{name, total - before});
  }
  if (!seen.contains(std::string(bundle_manifest_name)))
    return make_error(errc::bad_request, fmt::format("refusing bundle {}: it has no {}", label, bundle_manifest_name));
  if (::fchmod(dir.get(), 0755) != 0 || ::fsync(dir.get()) != 0)
    return make_error(errc::operation_failed, fmt::format("fsync {}: {}", tmpl, errno_text(errno)));
  if (auto ok = rename_noreplace(tmpl, dest_dir); !ok)
    return std::move(ok).err();
  guard.committed = true;
  // The directory is in place and complete; a failed fsync of its parent only weakens
  // durability across a power cut, so it does not turn the extraction into a failure.
  (void)fsync_path(parent_of(dest_dir));
  return members;
}

} // namespace banger::fetch
