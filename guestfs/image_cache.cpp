// The debootstrap cache's writer (the file is drawn in image.hpp): a staged tree written as a
// pax + zstd tar with numeric owners, modes, mtimes, symlinks, hard links and xattrs, under a
// temporary name that is renamed into place only once complete and fsynced, so concurrent
// builders never see a partial file. Reading is image_import.cpp's extract_tar, with the tar
// import's refusals. Blocking; runs on the building thread.
#include <algorithm>
#include <archive.h>
#include <archive_entry.h>
#include <cerrno>
#include <fcntl.h>
#include <fmt/format.h>
#include <map>
#include <memory>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>
#include <vector>

#include "common/process.hpp"
#include "guestfs/image_internal.hpp"

namespace banger::guestfs::detail {

namespace {

namespace fs = std::filesystem;

struct write_deleter {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct read_deleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
struct entry_deleter {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

std::string archive_text(archive* a) {
  const char* s = archive_error_string(a);
  return s ? s : "unknown libarchive error";
}

struct tar_writer {
  archive* out = nullptr;  ///< the tar being written
  archive* disk = nullptr; ///< reads metadata (owners, modes, times, xattrs) from the tree
  std::string what;        ///< "debootstrap cache <file>" for messages
  std::map<std::pair<dev_t, ino_t>, std::string> first_name; ///< of each multiply linked file
  std::uint64_t entries = 0;
  std::uint64_t bytes = 0;
  const progress_fn* progress = nullptr;
};

expected<void> add_entry(tar_writer& w, const fs::path& path, const std::string& member, const struct stat& st) {
  std::unique_ptr<archive_entry, entry_deleter> e(archive_entry_new());
  archive_entry_copy_sourcepath(e.get(), path.c_str());
  archive_entry_copy_pathname(e.get(), member.c_str());
  unique_fd fd;
  if (S_ISREG(st.st_mode)) {
    fd = unique_fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd)
      return sys_error("open", path, errno);
  }
  if (archive_read_disk_entry_from_file(w.disk, e.get(), fd ? fd.get() : -1, &st) < ARCHIVE_WARN)
    return make_error(errc::operation_failed,
                      fmt::format("{}: reading metadata of {}: {}", w.what, path.string(), archive_text(w.disk)));
  archive_entry_copy_pathname(e.get(), member.c_str());
  archive_entry_set_uname(e.get(), nullptr); // numeric owners only: the guest's names, not the host's
  archive_entry_set_gname(e.get(), nullptr);
  bool linked = false;
  if (S_ISREG(st.st_mode) && st.st_nlink > 1) {
    auto [it, first] = w.first_name.try_emplace({st.st_dev, st.st_ino}, member);
    if (!first) {
      archive_entry_copy_hardlink(e.get(), it->second.c_str());
      archive_entry_set_size(e.get(), 0);
      linked = true;
    }
  }
  if (archive_write_header(w.out, e.get()) < ARCHIVE_WARN)
    return make_error(errc::operation_failed, fmt::format("{}: {}: {}", w.what, member, archive_text(w.out)));
  if (S_ISREG(st.st_mode) && !linked) {
    std::vector<char> buf(1 << 20);
    for (;;) {
      auto n = ::read(fd.get(), buf.data(), buf.size());
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return sys_error("read", path, errno);
      if (n == 0)
        break;
      if (archive_write_data(w.out, buf.data(), static_cast<std::size_t>(n)) < 0)
        return make_error(errc::operation_failed, fmt::format("{}: {}: {}", w.what, member, archive_text(w.out)));
      w.bytes += static_cast<std::uint64_t>(n);
    }
  }
  if (++w.entries % 1000 == 0 && *w.progress)
    (*w.progress)("cache", w.bytes, 0);
  return {};
}

/// Adds the content of directory `dir` (`rel` below the tree's root, "" for the root), sorted
/// by name so the same tree gives the same tar.
expected<void> add_dir(tar_writer& w, const fs::path& dir, const std::string& rel) {
  std::error_code ec;
  std::vector<fs::path> children;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
    children.push_back(it->path());
  if (ec)
    return sys_error("list", dir, ec.value());
  std::sort(children.begin(), children.end());
  for (auto& child : children) {
    auto name = child.filename().string();
    auto member = rel.empty() ? name : rel + "/" + name;
    struct stat st {};
    if (::lstat(child.c_str(), &st) != 0)
      return sys_error("lstat", child, errno);
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
      return make_error(
        errc::bad_request,
        fmt::format("{}: {} is a device node, fifo or socket, which the cache cannot hold", w.what, child.string()));
    if (auto r = add_entry(w, child, member, st); !r)
      return r;
    if (S_ISDIR(st.st_mode))
      if (auto r = add_dir(w, child, member); !r)
        return r;
  }
  return {};
}

/// Unlinks the temporary file unless the write got as far as renaming it.
struct temp_file {
  std::string path;
  bool renamed = false;
  ~temp_file() {
    if (!renamed)
      ::unlink(path.c_str());
  }
};

} // namespace

expected<void> write_cache_tar(const fs::path& tree, const fs::path& file, const progress_fn& progress) {
  auto dir = file.parent_path().empty() ? fs::path(".") : file.parent_path();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    return sys_error("mkdir", dir, ec.value());
  temp_file tmp{file.string() + ".tmp-XXXXXX"};
  unique_fd fd(::mkostemp(tmp.path.data(), O_CLOEXEC));
  if (!fd) {
    tmp.renamed = true; // nothing was created
    return sys_error("mkostemp", tmp.path, errno);
  }
  if (::fchmod(fd.get(), 0644) != 0)
    return sys_error("fchmod", tmp.path, errno);

  tar_writer w;
  w.what = fmt::format("debootstrap cache {}", file.string());
  w.progress = &progress;
  std::unique_ptr<archive, write_deleter> out(archive_write_new());
  std::unique_ptr<archive, read_deleter> disk(archive_read_disk_new());
  w.out = out.get();
  w.disk = disk.get();
  // Sparse maps would change how data is written; ACLs and file flags are not kept by mkfs.
  archive_read_disk_set_behavior(w.disk,
                                 ARCHIVE_READDISK_NO_ACL | ARCHIVE_READDISK_NO_FFLAGS | ARCHIVE_READDISK_NO_SPARSE);
  if (archive_write_set_format_pax(w.out) != ARCHIVE_OK || archive_write_add_filter_zstd(w.out) != ARCHIVE_OK ||
      archive_write_open_fd(w.out, fd.get()) != ARCHIVE_OK)
    return make_error(errc::operation_failed, fmt::format("{}: {}", w.what, archive_text(w.out)));
  if (progress)
    progress("cache", 0, 0);
  if (auto r = add_dir(w, tree, ""); !r)
    return r;
  if (archive_write_close(w.out) != ARCHIVE_OK)
    return make_error(errc::operation_failed, fmt::format("{}: finishing: {}", w.what, archive_text(w.out)));
  if (::fsync(fd.get()) != 0)
    return sys_error("fsync", tmp.path, errno);
  if (::close(fd.release()) != 0)
    return sys_error("close", tmp.path, errno);
  if (::rename(tmp.path.c_str(), file.c_str()) != 0)
    return make_error(errc::operation_failed,
                      fmt::format("rename {} to {}: {}", tmp.path, file.string(), errno_text(errno)));
  tmp.renamed = true;
  if (unique_fd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)); d)
    ::fsync(d.get()); // best effort: the rename survives a crash
  if (progress)
    progress("cache", w.bytes, w.bytes);
  return {};
}

} // namespace banger::guestfs::detail
