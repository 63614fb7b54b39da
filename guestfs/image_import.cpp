// Image import (image.hpp): a host directory tree copied, or a tar file extracted, into the
// staging tree, then finished like every other build (image.cpp). Both refuse hostile input as
// a whole (nothing is left behind): names that are absolute or contain "..", device nodes,
// fifos and sockets, hard links to anything not already extracted, and relative symlinks
// climbing above the image root. Absolute symlink targets are fine: the guest resolves them
// in its own root, and the staging code never follows them (resolve_in_tree, libext2fs). The
// debootstrap cache (image_debootstrap.cpp) reads its tar files through the same extract_tar.
//
// Ownership: kept as found when running as root (the image's uids are the guest's), otherwise
// everything becomes root:root (an unprivileged copy cannot keep them). Extended attributes
// are kept from tar files when running as root, not from directories.
#include <algorithm>
#include <archive.h>
#include <archive_entry.h>
#include <cerrno>
#include <fcntl.h>
#include <fmt/format.h>
#include <memory>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

#include "common/process.hpp"
#include "common/text.hpp"
#include "guestfs/deb.hpp"
#include "guestfs/image.hpp"
#include "guestfs/image_internal.hpp"

namespace banger::guestfs {

namespace {

namespace fs = std::filesystem;
using detail::staging;
using detail::sys_error;

constexpr std::uint64_t max_import_bytes = std::uint64_t{64} << 30;
constexpr std::uint64_t max_import_entries = 4'000'000;

error refuse(const std::string& what, const std::string& member, const std::string& why) {
  return make_error(errc::bad_request,
                    fmt::format("{}: refusing member {}: {}; nothing was imported", what, quoted(member), why));
}

/// Whether relative symlink `target` of the entry at `link` (a normalised relative path)
/// climbs above the tree's root.
bool symlink_climbs_out(std::string_view link, std::string_view target) {
  if (target.starts_with('/'))
    return false; // resolved by the guest in its own root
  long depth = static_cast<long>(std::count(link.begin(), link.end(), '/'));
  std::size_t start = 0;
  while (start <= target.size()) {
    auto end = target.find('/', start);
    if (end == std::string_view::npos)
      end = target.size();
    auto part = target.substr(start, end - start);
    if (part == "..")
      --depth;
    else if (!part.empty() && part != ".")
      ++depth;
    if (depth < 0)
      return true;
    start = end + 1;
  }
  return false;
}

struct copy_state {
  std::string what; ///< "import <dir>" for messages
  bool keep_owner = false;
  std::uint64_t entries = 0;
  std::uint64_t bytes = 0;
  struct dir_fixup {
    fs::path path;
    struct stat st;
  };
  std::vector<dir_fixup> dirs; ///< modes applied after their content is written
};

expected<void> copy_contents(const fs::path& from, const fs::path& to, const struct stat& st) {
  unique_fd in(::open(from.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!in)
    return sys_error("open", from, errno);
  unique_fd out(::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!out)
    return sys_error("create", to, errno);
  auto left = static_cast<std::uint64_t>(st.st_size);
  while (left > 0) {
    auto n = ::copy_file_range(in.get(), nullptr, out.get(), nullptr, left, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return sys_error("copy_file_range", from, errno);
    if (n == 0)
      break; // the file shrank while we copied it
    left -= static_cast<std::uint64_t>(n);
  }
  return {};
}

expected<void> set_meta(const fs::path& p, const struct stat& st, bool keep_owner, bool is_link) {
  if (keep_owner && ::lchown(p.c_str(), st.st_uid, st.st_gid) != 0)
    return sys_error("lchown", p, errno);
  if (!is_link && ::chmod(p.c_str(), st.st_mode & 07777) != 0)
    return sys_error("chmod", p, errno);
  timespec times[2] = {st.st_atim, st.st_mtim};
  if (::utimensat(AT_FDCWD, p.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0)
    return sys_error("utimensat", p, errno);
  return {};
}

/// Copies the content of directory `from` into existing directory `to`; `rel` is `from`'s
/// path relative to the source root ("" for the root).
expected<void> copy_tree(const fs::path& from, const fs::path& to, const std::string& rel, copy_state& s) {
  std::error_code ec;
  std::vector<fs::path> children;
  for (auto it = fs::directory_iterator(from, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
    children.push_back(it->path());
  if (ec)
    return sys_error("list", from, ec.value());
  std::sort(children.begin(), children.end());
  for (auto& child : children) {
    auto name = child.filename().string();
    auto member = rel.empty() ? name : rel + "/" + name;
    if (++s.entries > max_import_entries)
      return refuse(s.what, member, fmt::format("more than {} entries", max_import_entries));
    struct stat st {};
    if (::lstat(child.c_str(), &st) != 0)
      return sys_error("lstat", child, errno);
    auto dst = to / name;
    if (S_ISDIR(st.st_mode)) {
      if (::mkdir(dst.c_str(), 0700) != 0)
        return sys_error("mkdir", dst, errno);
      if (auto r = copy_tree(child, dst, member, s); !r)
        return r;
      s.dirs.push_back({dst, st});
    } else if (S_ISREG(st.st_mode)) {
      s.bytes += static_cast<std::uint64_t>(st.st_size);
      if (s.bytes > max_import_bytes)
        return refuse(s.what, member, fmt::format("the tree holds more than {} bytes", max_import_bytes));
      if (auto r = copy_contents(child, dst, st); !r)
        return r;
      if (auto r = set_meta(dst, st, s.keep_owner, false); !r)
        return r;
    } else if (S_ISLNK(st.st_mode)) {
      std::string target(static_cast<std::size_t>(st.st_size) + 1, '\0');
      auto n = ::readlink(child.c_str(), target.data(), target.size());
      if (n < 0)
        return sys_error("readlink", child, errno);
      target.resize(static_cast<std::size_t>(n));
      if (target.empty() || symlink_climbs_out(member, target))
        return refuse(s.what, member, fmt::format("symlink to {} leaves the image", quoted(target)));
      if (::symlink(target.c_str(), dst.c_str()) != 0)
        return sys_error("symlink", dst, errno);
      if (auto r = set_meta(dst, st, s.keep_owner, true); !r)
        return r;
    } else {
      return refuse(s.what, member, "device nodes, fifos and sockets are not imported (banger-init mounts /dev)");
    }
  }
  return {};
}

struct archive_deleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
struct disk_deleter {
  void operator()(archive* a) const { archive_write_free(a); }
};

std::string archive_text(archive* a) {
  const char* s = archive_error_string(a);
  return s ? s : "unknown libarchive error";
}

detail::finish_spec import_spec(const std::string& name, std::string source, bool as_root) {
  detail::finish_spec spec;
  spec.manifest.name = name;
  spec.manifest.source = std::move(source);
  spec.manifest.init = "banger-init";
  spec.everything_root_owned = !as_root;
  return spec;
}

} // namespace

namespace detail {

expected<void> extract_tar(const fs::path& tar, const fs::path& tree, const std::string& what, bool as_root,
                           const std::string& stage, const progress_fn& progress) {
  std::unique_ptr<archive, archive_deleter> in(archive_read_new());
  // The compressions banger reads, each in-process: libarchive falls back to running an
  // external program (lrzip, lzop, grzip, ...) for a filter it was built without, and a tarball
  // is outside input, so a filter it cannot run itself (ARCHIVE_WARN) is refused here, and no
  // other filter is registered.
  for (auto [name, add] :
       {std::pair{"gzip", &archive_read_support_filter_gzip}, std::pair{"zstd", &archive_read_support_filter_zstd},
        std::pair{"xz", &archive_read_support_filter_xz}, std::pair{"bzip2", &archive_read_support_filter_bzip2}})
    if (add(in.get()) != ARCHIVE_OK)
      return make_error(errc::unavailable, fmt::format("{}: this build's libarchive cannot read {} in-process: {}",
                                                       what, name, archive_text(in.get())));
  archive_read_support_format_tar(in.get());
  if (archive_read_open_filename(in.get(), tar.c_str(), 1 << 20) != ARCHIVE_OK)
    return make_error(errc::bad_request,
                      fmt::format("{}: cannot read {} (a tar archive, uncompressed or gzip, zstd, xz or bzip2): {}",
                                  what, tar.string(), archive_text(in.get())));
  std::unique_ptr<archive, disk_deleter> out(archive_write_disk_new());
  int flags = ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
              ARCHIVE_EXTRACT_SECURE_NODOTDOT; // names are made absolute below, after normalise_member_name
  if (as_root)
    flags |= ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_XATTR; // numeric ids: no host name lookup
  archive_write_disk_set_options(out.get(), flags);

  std::set<std::string> files; // regular files extracted so far: the only hard link targets
  std::uint64_t entries = 0, bytes = 0;
  archive_entry* e = nullptr;
  for (;;) {
    int rc = archive_read_next_header(in.get(), &e);
    if (rc == ARCHIVE_EOF)
      break;
    if (rc < ARCHIVE_WARN)
      return make_error(errc::bad_request,
                        fmt::format("{}: reading {}: {}", what, tar.string(), archive_text(in.get())));
    const char* raw = archive_entry_pathname(e);
    std::string raw_name = raw ? raw : "";
    if (++entries > max_import_entries)
      return refuse(what, raw_name, fmt::format("more than {} members", max_import_entries));
    auto name = normalise_member_name(raw_name);
    if (!name)
      return refuse(what, raw_name, name.err().message);
    if (name->empty())
      continue; // "./": the root itself
    auto type = archive_entry_filetype(e);
    if (const char* hard = archive_entry_hardlink(e)) {
      auto target = normalise_member_name(hard);
      if (!target || target->empty() || !files.count(*target))
        return refuse(what, *name,
                      fmt::format("hard link to {}, which is not a file extracted before it", quoted(hard)));
      archive_entry_set_hardlink(e, (tree / *target).c_str());
    } else if (type == AE_IFLNK) {
      const char* t = archive_entry_symlink(e);
      std::string target = t ? t : "";
      if (target.empty() || symlink_climbs_out(*name, target))
        return refuse(what, *name, fmt::format("symlink to {} leaves the image", quoted(target)));
    } else if (type != AE_IFREG && type != AE_IFDIR) {
      return refuse(what, *name, "device nodes, fifos and sockets are not imported (banger-init mounts /dev)");
    }
    if (type == AE_IFREG) {
      bytes += static_cast<std::uint64_t>(archive_entry_size(e));
      if (bytes > max_import_bytes)
        return refuse(what, *name, fmt::format("the archive holds more than {} bytes", max_import_bytes));
      files.insert(*name);
    }
    archive_entry_set_pathname(e, (tree / *name).c_str());
    rc = archive_write_header(out.get(), e);
    if (rc < ARCHIVE_WARN)
      return refuse(what, *name, archive_text(out.get()));
    if (archive_entry_size(e) > 0 && type == AE_IFREG) {
      const void* buf = nullptr;
      size_t size = 0;
      la_int64_t offset = 0;
      for (;;) {
        rc = archive_read_data_block(in.get(), &buf, &size, &offset);
        if (rc == ARCHIVE_EOF)
          break;
        if (rc < ARCHIVE_WARN)
          return make_error(errc::bad_request, fmt::format("{}: reading {} from {}: {}", what, *name, tar.string(),
                                                           archive_text(in.get())));
        if (archive_write_data_block(out.get(), buf, size, offset) < ARCHIVE_WARN)
          return make_error(errc::operation_failed,
                            fmt::format("{}: writing {}: {}", what, *name, archive_text(out.get())));
      }
    }
    if (archive_write_finish_entry(out.get()) < ARCHIVE_WARN)
      return make_error(errc::operation_failed,
                        fmt::format("{}: writing {}: {}", what, *name, archive_text(out.get())));
    if (progress && entries % 1000 == 0)
      progress(stage, bytes, 0);
  }
  if (archive_write_close(out.get()) < ARCHIVE_WARN)
    return make_error(errc::operation_failed,
                      fmt::format("{}: finishing extraction: {}", what, archive_text(out.get())));
  return {};
}

} // namespace detail

expected<image_manifest> import_dir_image(const std::string& name, const fs::path& dir, const guest_binaries& bins,
                                          const fs::path& dest, const progress_fn& progress) {
  std::error_code ec;
  auto source = fs::absolute(dir, ec).lexically_normal();
  struct stat st {};
  if (::stat(source.c_str(), &st) != 0)
    return make_error(errc::not_found,
                      fmt::format("import image {}: {}: {}", name, source.string(), errno_text(errno)));
  if (!S_ISDIR(st.st_mode))
    return make_error(errc::bad_request, fmt::format("import image {}: {} is not a directory", name, source.string()));
  auto stage = staging::begin(dest);
  if (!stage)
    return std::move(stage).err();
  bool as_root = ::geteuid() == 0;
  if (::mkdir(stage->tree().c_str(), 0755) != 0)
    return sys_error("mkdir", stage->tree(), errno);
  copy_state s;
  s.what = fmt::format("import image {} from {}", name, source.string());
  s.keep_owner = as_root;
  if (progress)
    progress("copy", 0, 0);
  if (auto r = copy_tree(source, stage->tree(), "", s); !r)
    return std::move(r).err();
  for (auto it = s.dirs.rbegin(); it != s.dirs.rend(); ++it) // deepest first
    if (auto r = set_meta(it->path, it->st, s.keep_owner, false); !r)
      return std::move(r).err();
  return detail::finish(*stage, import_spec(name, "dir:" + source.string(), as_root), bins, dest, progress);
}

expected<image_manifest> import_tar_image(const std::string& name, const fs::path& tar, const guest_binaries& bins,
                                          const fs::path& dest, const progress_fn& progress) {
  std::error_code ec;
  auto source = fs::absolute(tar, ec).lexically_normal();
  if (!fs::is_regular_file(source, ec))
    return make_error(errc::not_found,
                      fmt::format("import image {}: {} is not a readable file", name, source.string()));
  auto stage = staging::begin(dest);
  if (!stage)
    return std::move(stage).err();
  bool as_root = ::geteuid() == 0;
  if (::mkdir(stage->tree().c_str(), 0755) != 0)
    return sys_error("mkdir", stage->tree(), errno);
  if (progress)
    progress("extract", 0, 0);
  auto what = fmt::format("import image {} from {}", name, source.string());
  // Members are written by absolute path under the tree: resolve the host's links in that
  // prefix first, so libarchive's symlink check sees none that are not the archive's own.
  auto tree = fs::canonical(stage->tree(), ec);
  if (ec)
    return sys_error("realpath", stage->tree(), ec.value());
  if (auto r = detail::extract_tar(source, tree, what, as_root, "extract", progress); !r)
    return std::move(r).err();
  return detail::finish(*stage, import_spec(name, "tar:" + source.string(), as_root), bins, dest, progress);
}

} // namespace banger::guestfs
