// See blob_cache.hpp. The lock protocol: open <hex>.lock, flock it, then check that the name
// still refers to the inode locked (a prune may have removed it meanwhile; then start again),
// so two holders of "the" lock are never on different inodes.
#include "fetch/blob_cache.hpp"

#include <cerrno>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

namespace banger::fetch {

namespace fs = std::filesystem;

namespace {

error io_error(std::string_view what, const fs::path& p, int err) {
  return make_error(errc::operation_failed, fmt::format("blob cache: {} {}: {}", what, p.string(), errno_text(err)));
}

bool same_inode(int fd, const fs::path& p) {
  struct stat a {
  }, b{};
  return ::fstat(fd, &a) == 0 && ::stat(p.c_str(), &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/// `path` opened read-only with a shared flock, when it is there with `size` bytes and still
/// linked under its name once locked.
expected<unique_fd> open_verified(const fs::path& path, std::uint64_t size) {
  unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) {
    if (errno == ENOENT)
      return unique_fd();
    return io_error("open", path, errno);
  }
  if (::flock(fd.get(), LOCK_SH) != 0)
    return io_error("flock", path, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0)
    return io_error("stat", path, errno);
  if (!same_inode(fd.get(), path))
    return unique_fd(); // pruned between open and flock
  if (!S_ISREG(st.st_mode) || static_cast<std::uint64_t>(st.st_size) != size) {
    // Not what a verified blob of this digest is: never use it (the fetch replaces it).
    ::unlink(path.c_str());
    return unique_fd();
  }
  return fd;
}

expected<void> make_dir(const fs::path& p) {
  if (::mkdir(p.c_str(), 0700) != 0 && errno != EEXIST)
    return io_error("mkdir", p, errno);
  return {};
}

} // namespace

expected<cached_blob> blob_cache::get(const blob_descriptor& d, const fetch_fn& fetch) {
  if (!d.digest.starts_with("sha256:") || d.digest.size() != 71 ||
      d.digest.find_first_not_of("0123456789abcdef", 7) != std::string::npos)
    return make_error(errc::bad_request, fmt::format("blob cache: {} is not a sha256 digest", d.digest));
  auto hex = d.digest.substr(7);
  for (auto& p : {dir_, dir_ / "sha256", dir_ / "partial"})
    if (auto r = make_dir(p); !r)
      return std::move(r).err();
  auto final_path = dir_ / "sha256" / hex;
  auto partial_path = dir_ / "partial" / hex;
  auto lock_path = dir_ / "partial" / (hex + ".lock");

  auto cached = open_verified(final_path, d.size);
  if (!cached)
    return std::move(cached).err();
  if (*cached)
    return cached_blob{std::move(*cached), final_path, false, 0};

  unique_fd lock;
  for (;;) {
    lock = unique_fd(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!lock)
      return io_error("open", lock_path, errno);
    if (::flock(lock.get(), LOCK_EX) != 0)
      return io_error("flock", lock_path, errno);
    if (same_inode(lock.get(), lock_path))
      break;
  }
  // Another pull may have fetched it while this one waited.
  cached = open_verified(final_path, d.size);
  if (!cached)
    return std::move(cached).err();
  if (*cached)
    return cached_blob{std::move(*cached), final_path, false, 0};

  unique_fd part(::open(partial_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!part)
    return io_error("open", partial_path, errno);
  struct stat st {};
  if (::fstat(part.get(), &st) != 0)
    return io_error("stat", partial_path, errno);
  auto have = static_cast<std::uint64_t>(st.st_size);
  auto r = fetch(part.get(), have);
  if (!r && have > 0 && r.err().code == errc::operation_failed) {
    // The resumed whole is not the blob: the partial held wrong bytes. Once more from nothing.
    if (::ftruncate(part.get(), 0) != 0 || ::lseek(part.get(), 0, SEEK_SET) != 0)
      return io_error("truncate", partial_path, errno);
    have = 0;
    r = fetch(part.get(), 0);
  }
  if (!r) {
    if (r.err().code != errc::unavailable) // broken off: keep it to resume; anything else: never reuse
      ::unlink(partial_path.c_str());
    return std::move(r).err();
  }
  if (::fsync(part.get()) != 0)
    return io_error("fsync", partial_path, errno);
  if (::fchmod(part.get(), 0444) != 0)
    return io_error("chmod", partial_path, errno);
  if (::rename(partial_path.c_str(), final_path.c_str()) != 0)
    return io_error("rename", partial_path, errno);
  unique_fd dirfd(::open((dir_ / "sha256").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dirfd)
    (void)::fsync(dirfd.get());
  cached = open_verified(final_path, d.size);
  if (!cached)
    return std::move(cached).err();
  if (!*cached)
    return make_error(errc::operation_failed,
                      fmt::format("blob cache: {} vanished right after it was stored", d.digest));
  return cached_blob{std::move(*cached), final_path, true, have <= d.size ? have : 0};
}

expected<prune_report> blob_cache::prune(bool dry_run) {
  prune_report rep;
  std::error_code ec;
  auto blobs = dir_ / "sha256";
  if (fs::is_directory(blobs, ec))
    for (const auto& e : fs::directory_iterator(blobs, ec)) {
      unique_fd fd(::open(e.path().c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
      if (!fd)
        continue;
      if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
        ++rep.busy; // a pull is reading it
        continue;
      }
      struct stat st {};
      if (::fstat(fd.get(), &st) != 0)
        continue;
      ++rep.blobs;
      rep.bytes += static_cast<std::uint64_t>(st.st_size);
      if (!dry_run && ::unlink(e.path().c_str()) != 0 && errno != ENOENT)
        return io_error("unlink", e.path(), errno);
    }
  auto partials = dir_ / "partial";
  if (fs::is_directory(partials, ec))
    for (const auto& e : fs::directory_iterator(partials, ec)) {
      auto name = e.path().filename().string();
      if (name.ends_with(".lock"))
        continue;
      auto lock_path = partials / (name + ".lock");
      unique_fd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
      if (!lock || ::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
        ++rep.busy; // being downloaded
        continue;
      }
      struct stat st {};
      if (::lstat(e.path().c_str(), &st) != 0)
        continue;
      ++rep.partials;
      rep.bytes += static_cast<std::uint64_t>(st.st_size);
      if (!dry_run) {
        ::unlink(e.path().c_str());
        ::unlink(lock_path.c_str()); // waiters see the name moved and take the new one
      }
    }
  if (!dry_run && fs::is_directory(partials, ec)) // lock files of finished downloads
    for (const auto& e : fs::directory_iterator(partials, ec)) {
      auto name = e.path().filename().string();
      if (!name.ends_with(".lock") || fs::exists(partials / name.substr(0, name.size() - 5), ec))
        continue;
      unique_fd lock(::open(e.path().c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
      if (lock && ::flock(lock.get(), LOCK_EX | LOCK_NB) == 0)
        ::unlink(e.path().c_str());
    }
  return rep;
}

} // namespace banger::fetch
