// See ext4.hpp: validating guest paths, opening and closing images, and creating them with
// mkfs.ext4. Writing entries is in ext4_write.cpp, reading them in ext4_read.cpp; the open
// filesystem they share, and how allocation follows libext2fs's contract, in ext4_impl.hpp.
// Not thread-safe: one thread uses an image at a time.
#include "common/check.hpp"
#include "guestfs/ext4_impl.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <fmt/format.h>
#include <mutex>
#include <system_error>

#include "common/process.hpp"
#include "common/subprocess.hpp"

namespace banger::guestfs {

namespace fs = std::filesystem;

namespace {

using detail::ext2_text;
using detail::printable;

} // namespace

expected<void> validate_guest_path(std::string_view path) {
  auto refuse = [&](std::string_view why) {
    return make_error(errc::bad_request, fmt::format("invalid guest path {}: {}", printable(path), why));
  };
  if (path.empty())
    return refuse("empty");
  if (path.front() != '/')
    return refuse("not absolute (must start with '/')");
  if (path.size() > max_guest_path)
    return refuse(fmt::format("longer than {} bytes", max_guest_path));
  for (char ch : path) {
    if (ch == '\0')
      return refuse("contains NUL");
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f)
      return refuse("contains a control character");
  }
  if (path == "/")
    return {};
  std::size_t start = 1;
  while (start <= path.size()) {
    auto end = path.find('/', start);
    if (end == std::string_view::npos)
      end = path.size();
    auto comp = path.substr(start, end - start);
    if (comp.empty())
      return refuse("empty component ('//' or a trailing '/')");
    if (comp == "." || comp == "..")
      return refuse("'.' and '..' components are not allowed");
    if (comp.size() > max_guest_name)
      return refuse(fmt::format("a component is longer than {} bytes", max_guest_name));
    start = end + 1;
  }
  return {};
}

ext4_image::ext4_image(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
ext4_image::ext4_image(ext4_image&&) noexcept = default;
ext4_image& ext4_image::operator=(ext4_image&&) noexcept = default;
ext4_image::~ext4_image() = default;

ext4_image::impl& ext4_image::state() const {
  BANGER_CHECK(impl_ != nullptr, "use of a moved-from ext4_image");
  return *impl_;
}

const fs::path& ext4_image::path() const { return state().image; }
bool ext4_image::writable() const { return state().writable; }

expected<ext4_image> ext4_image::open(const fs::path& image, bool writable, std::optional<std::time_t> fixed_time) {
  static std::once_flag error_table;
  std::call_once(error_table, [] { initialize_ext2_error_table(); });

  auto p = std::make_unique<impl>();
  p->image = image;
  p->writable = writable;
  p->fixed_time = fixed_time;
  p->lock = unique_fd(::open(image.c_str(), (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC));
  if (!p->lock) {
    int err = errno;
    return make_error(err == ENOENT ? errc::not_found : errc::operation_failed,
                      fmt::format("open({}) for an ext4 image: {}", image.string(), errno_text(err)));
  }
  if (::flock(p->lock.get(), (writable ? LOCK_EX : LOCK_SH) | LOCK_NB) != 0) {
    int err = errno;
    if (err == EWOULDBLOCK)
      return make_error(errc::conflict, fmt::format("ext4 image {} is in use by another banger process ({} open "
                                                    "refused); retry when it is done",
                                                    image.string(), writable ? "writable" : "read-only"));
    return make_error(errc::operation_failed, fmt::format("flock({}): {}", image.string(), errno_text(err)));
  }
  int flags = EXT2_FLAG_64BITS | (writable ? EXT2_FLAG_RW : 0);
  if (errcode_t rc = ext2fs_open2(image.c_str(), nullptr, flags, 0, 0, unix_io_manager, &p->fsys)) {
    p->fsys = nullptr;
    return make_error(errc::bad_request,
                      fmt::format("ext4 image {}: cannot open as ext2/3/4: {}", image.string(), ext2_text(rc)));
  }
  if (writable) {
    if (ext2fs_has_feature_journal_needs_recovery(p->fsys->super) || (p->fsys->super->s_state & EXT2_ERROR_FS))
      return make_error(errc::conflict, fmt::format("ext4 image {}: its journal needs recovery or it has recorded "
                                                    "errors; run `e2fsck -fy {}` first",
                                                    image.string(), image.string()));
    if (errcode_t rc = ext2fs_read_bitmaps(p->fsys))
      return make_error(errc::operation_failed,
                        fmt::format("ext4 image {}: reading bitmaps: {}", image.string(), ext2_text(rc)));
  }
  return ext4_image(std::move(p));
}

expected<void> ext4_image::close() {
  if (!impl_)
    return {};
  return impl_->shut();
}

expected<void> create_image(const fs::path& image, std::uint64_t size_bytes, const std::optional<fs::path>& source_dir,
                            const std::optional<owner>& content_owner) {
  if (size_bytes == 0 || size_bytes % 4096 != 0)
    return make_error(errc::bad_request, fmt::format("ext4 image {}: size {} is not a positive multiple of 4096",
                                                     image.string(), size_bytes));
  std::error_code ec;
  if (source_dir && !fs::is_directory(*source_dir, ec))
    return make_error(errc::not_found,
                      fmt::format("ext4 image {}: source {} is not a directory", image.string(), source_dir->string()));
  auto mkfs = find_program("mkfs.ext4");
  if (!mkfs)
    return make_error(errc::unavailable, "mkfs.ext4 not found in PATH, /usr/sbin or /sbin: install e2fsprogs");
  {
    // Claim the path atomically (O_EXCL) so an existing file is never overwritten; mkfs fills it.
    unique_fd claim(::open(image.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644));
    if (!claim) {
      int err = errno;
      if (err == EEXIST)
        return make_error(
          errc::already_exists,
          fmt::format("ext4 image {} already exists; remove it or choose another path", image.string()));
      return make_error(errc::operation_failed, fmt::format("open({}, O_CREAT|O_EXCL) for a new ext4 image: {}",
                                                            image.string(), errno_text(err)));
    }
  }
  // Always 4 KiB blocks: below 512 MiB mkfs picks 1 KiB, and long symlink targets then fail.
  std::vector<std::string> argv{mkfs->string(), "-q", "-F", "-b", "4096"};
  if (source_dir) {
    argv.push_back("-d");
    argv.push_back(source_dir->string());
  }
  argv.push_back(image.string());
  argv.push_back(fmt::format("{}k", size_bytes / 1024));
  process_options opts;
  opts.merge_stderr = true;
  auto ran = run_process(argv, opts);
  if (ran.exit_code != 0) {
    fs::remove(image, ec);
    return make_error(errc::operation_failed, fmt::format("ext4 image {}: mkfs.ext4 exited with {}: {}", image.string(),
                                                          ran.exit_code, ran.out));
  }
  if (!content_owner)
    return {};
  auto img = ext4_image::open(image, true);
  if (!img) {
    fs::remove(image, ec);
    return std::move(img).err();
  }
  auto owned = img->chown_tree("/", content_owner->uid, content_owner->gid);
  auto closed = img->close();
  if (!owned || !closed) {
    fs::remove(image, ec);
    return owned ? closed : owned;
  }
  return {};
}

} // namespace banger::guestfs
