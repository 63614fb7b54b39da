// See ext4.hpp. The only file that includes libext2fs. Allocation follows libext2fs's own
// contract: an inode or block found free with ext2fs_new_* is marked in the bitmaps
// (ext2fs_*_alloc_stats2) before anything else can allocate, and the bitmaps, group descriptors
// and superblock are written back by ext2fs_close2. A directory entry is added with ext2fs_link,
// growing the directory by one block (ext2fs_expand_dir) when it is full.
#include "guestfs/ext4.hpp"

#include <ext2fs/ext2fs.h>

#include <et/com_err.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstdlib>
#include <fmt/format.h>
#include <mutex>
#include <set>
#include <system_error>

#include "common/process.hpp"
#include "common/subprocess.hpp"

namespace banger::guestfs {

namespace fs = std::filesystem;

namespace {

/// `s` for an error message: quoted, control characters escaped, cut after 200 bytes.
std::string printable(std::string_view s) {
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size() && i < 200; ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f)
      out += fmt::format("\\x{:02x}", c);
    else if (c == '"' || c == '\\')
      out += {'\\', static_cast<char>(c)};
    else
      out += static_cast<char>(c);
  }
  if (s.size() > 200)
    out += "...";
  return out + "\"";
}

std::string ext2_text(errcode_t rc) { return fmt::format("{} (ext2fs error {})", error_message(rc), rc); }

bool has_control(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char ch) {
    auto c = static_cast<unsigned char>(ch);
    return c < 0x20 || c == 0x7f;
  });
}

/// The components of a path validate_guest_path accepted; empty for "/".
std::vector<std::string> split(std::string_view path) {
  std::vector<std::string> comps;
  std::size_t start = 1;
  while (start < path.size()) {
    auto end = path.find('/', start);
    if (end == std::string_view::npos)
      end = path.size();
    comps.emplace_back(path.substr(start, end - start));
    start = end + 1;
  }
  return comps;
}

std::string join(const std::vector<std::string>& comps, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i)
    out += "/" + comps[i];
  return out.empty() ? "/" : out;
}

const char* type_name(std::uint16_t mode) {
  if (LINUX_S_ISREG(mode))
    return "a regular file";
  if (LINUX_S_ISDIR(mode))
    return "a directory";
  if (LINUX_S_ISLNK(mode))
    return "a symlink";
  return "a special file";
}

entry_type type_of(std::uint16_t mode) {
  if (LINUX_S_ISREG(mode))
    return entry_type::regular;
  if (LINUX_S_ISDIR(mode))
    return entry_type::directory;
  if (LINUX_S_ISLNK(mode))
    return entry_type::symlink;
  return entry_type::other;
}

void set_owner(ext2_inode& in, std::uint32_t uid, std::uint32_t gid) {
  in.i_uid = static_cast<__u16>(uid & 0xffff);
  ext2fs_set_i_uid_high(in, static_cast<__u16>(uid >> 16));
  in.i_gid = static_cast<__u16>(gid & 0xffff);
  ext2fs_set_i_gid_high(in, static_cast<__u16>(gid >> 16));
}

expected<void> check_mode(std::uint32_t mode) {
  if (mode > 07777)
    return make_error(errc::bad_request, fmt::format("mode {:o} has bits beyond 07777 (permission bits only)", mode));
  return {};
}

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

struct ext4_image::impl {
  fs::path image;
  bool writable = false;
  std::optional<std::time_t> fixed_time;
  unique_fd lock; ///< flock held while open
  ext2_filsys fsys = nullptr;

  ~impl() { (void)shut(); }

  expected<void> shut() {
    if (!fsys)
      return {};
    errcode_t rc = ext2fs_close2(fsys, 0);
    if (rc)
      ext2fs_free(fsys); // close2 frees only on success
    fsys = nullptr;
    lock.reset();
    if (rc)
      return make_error(errc::operation_failed, fmt::format("ext4 image {}: writing back metadata on close: {}",
                                                            image.string(), ext2_text(rc)));
    return {};
  }

  error fail(std::string_view what, std::string_view guest, errcode_t rc) const {
    return make_error(errc::operation_failed,
                      fmt::format("ext4 image {}: {} {}: {}", image.string(), what, printable(guest), ext2_text(rc)));
  }
  error refuse(errc code, std::string_view guest, std::string_view why) const {
    return make_error(code, fmt::format("ext4 image {}: {}: {}", image.string(), printable(guest), why));
  }

  /// Validates `guest` and that the image is open (and writable when `write`).
  expected<void> check(std::string_view guest, bool write) const {
    if (!fsys)
      return make_error(errc::internal, fmt::format("ext4 image {}: used after close()", image.string()));
    if (auto ok = validate_guest_path(guest); !ok)
      return make_error(errc::bad_request, fmt::format("ext4 image {}: {}", image.string(), ok.err().message));
    if (write && !writable)
      return refuse(errc::bad_request, guest, "image is opened read-only");
    return {};
  }

  __u32 now() const {
    std::time_t t = fixed_time ? *fixed_time : std::time(nullptr);
    return static_cast<__u32>(std::clamp<std::time_t>(t, 0, 0xffffffff));
  }

  expected<ext2_inode> read_inode(ext2_ino_t ino, std::string_view guest) const {
    ext2_inode in{};
    if (errcode_t rc = ext2fs_read_inode(fsys, ino, &in))
      return fail("reading inode of", guest, rc);
    return in;
  }

  expected<void> write_inode(ext2_ino_t ino, ext2_inode& in, std::string_view guest) {
    if (errcode_t rc = ext2fs_write_inode(fsys, ino, &in))
      return fail("writing inode of", guest, rc);
    return {};
  }

  /// The inode `name` in directory `dir`, or 0 when there is no such entry.
  expected<ext2_ino_t> lookup(ext2_ino_t dir, const std::string& name, std::string_view guest) const {
    ext2_ino_t ino = 0;
    errcode_t rc = ext2fs_lookup(fsys, dir, name.c_str(), static_cast<int>(name.size()), nullptr, &ino);
    if (rc == EXT2_ET_FILE_NOT_FOUND)
      return ext2_ino_t{0};
    if (rc)
      return fail("looking up", guest, rc);
    return ino;
  }

  /// `ino` itself, or what it points to when it is a symlink (resolved inside the image, relative
  /// symlinks against `dir`).
  expected<ext2_ino_t> follow(ext2_ino_t dir, ext2_ino_t ino, std::string_view guest) const {
    ext2_ino_t res = 0;
    errcode_t rc = ext2fs_follow_link(fsys, EXT2_ROOT_INO, dir, ino, &res);
    if (rc == EXT2_ET_FILE_NOT_FOUND)
      return refuse(errc::not_found, guest, "is a dangling symlink");
    if (rc)
      return fail("following symlink", guest, rc);
    return res;
  }

  /// The directory reached through the first `n` components (symlinks followed).
  expected<ext2_ino_t> walk_dirs(const std::vector<std::string>& comps, std::size_t n, std::string_view guest) const {
    ext2_ino_t cur = EXT2_ROOT_INO;
    for (std::size_t i = 0; i < n; ++i) {
      auto prefix = join(comps, i + 1);
      auto ino = lookup(cur, comps[i], guest);
      if (!ino)
        return std::move(ino).err();
      if (*ino == 0)
        return refuse(errc::not_found, guest, fmt::format("parent {} does not exist", printable(prefix)));
      auto target = follow(cur, *ino, prefix);
      if (!target)
        return std::move(target).err();
      auto in = read_inode(*target, prefix);
      if (!in)
        return std::move(in).err();
      if (!LINUX_S_ISDIR(in->i_mode))
        return refuse(errc::conflict, guest, fmt::format("parent {} is {}", printable(prefix), type_name(in->i_mode)));
      cur = *target;
    }
    return cur;
  }

  struct located {
    ext2_ino_t dir = EXT2_ROOT_INO;
    ext2_ino_t ino = 0; ///< 0: no entry named `name` in `dir`
    std::string name;   ///< empty for "/"
  };

  /// The parent directory of `guest` (which must exist) and the entry in it, not followed.
  expected<located> locate(std::string_view guest) const {
    auto comps = split(guest);
    if (comps.empty())
      return located{EXT2_ROOT_INO, EXT2_ROOT_INO, {}};
    auto dir = walk_dirs(comps, comps.size() - 1, guest);
    if (!dir)
      return std::move(dir).err();
    auto ino = lookup(*dir, comps.back(), guest);
    if (!ino)
      return std::move(ino).err();
    return located{*dir, *ino, comps.back()};
  }

  expected<located> locate_existing(std::string_view guest) const {
    auto at = locate(guest);
    if (at && at->ino == 0)
      return refuse(errc::not_found, guest, "does not exist");
    return at;
  }

  struct resolved {
    ext2_ino_t ino = 0;
    ext2_inode inode{};
  };

  /// An existing path with every symlink, the last component's included, followed inside the
  /// image, and its inode.
  expected<resolved> resolve_followed(std::string_view guest) const {
    auto at = locate_existing(guest);
    if (!at)
      return std::move(at).err();
    auto ino = follow(at->dir, at->ino, guest);
    if (!ino)
      return std::move(ino).err();
    auto in = read_inode(*ino, guest);
    if (!in)
      return std::move(in).err();
    return resolved{*ino, *in};
  }

  /// Adds `name` -> `ino` to `dir`, growing the directory when its blocks are full.
  errcode_t link(ext2_ino_t dir, const std::string& name, ext2_ino_t ino, int file_type) {
    errcode_t rc = ext2fs_link(fsys, dir, name.c_str(), ino, file_type);
    if (rc == EXT2_ET_DIR_NO_SPACE) {
      if ((rc = ext2fs_expand_dir(fsys, dir)))
        return rc;
      rc = ext2fs_link(fsys, dir, name.c_str(), ino, file_type);
    }
    return rc;
  }

  /// Applies `change` to the inode, stamps ctime and writes it back.
  template <class F>
  expected<void> update(ext2_ino_t ino, std::string_view guest, F&& change) {
    auto in = read_inode(ino, guest);
    if (!in)
      return std::move(in).err();
    change(*in);
    in->i_ctime = now();
    return write_inode(ino, *in, guest);
  }

  expected<ext2_ino_t> make_dir(ext2_ino_t parent, const std::string& name, std::uint32_t mode, std::uint32_t uid,
                                std::uint32_t gid, std::string_view guest) {
    errcode_t rc = ext2fs_mkdir(fsys, parent, 0, name.c_str());
    if (rc == EXT2_ET_DIR_NO_SPACE) {
      if ((rc = ext2fs_expand_dir(fsys, parent)))
        return fail("growing the parent directory of", guest, rc);
      rc = ext2fs_mkdir(fsys, parent, 0, name.c_str());
    }
    if (rc)
      return fail("creating directory", guest, rc);
    auto ino = lookup(parent, name, guest);
    if (!ino)
      return ino;
    if (*ino == 0)
      return make_error(errc::internal, fmt::format("ext4 image {}: directory {} vanished after mkdir", image.string(),
                                                    printable(guest)));
    __u32 t = now();
    auto ok = update(*ino, guest, [&](ext2_inode& in) {
      in.i_mode = static_cast<__u16>(LINUX_S_IFDIR | mode);
      set_owner(in, uid, gid);
      in.i_atime = in.i_mtime = t;
    });
    if (!ok)
      return std::move(ok).err();
    return *ino;
  }

  /// A new empty regular file `name` in `dir`, with an extent tree when the image uses extents.
  expected<ext2_ino_t> make_file(ext2_ino_t dir, const std::string& name, std::uint32_t mode, std::uint32_t uid,
                                 std::uint32_t gid, std::string_view guest) {
    ext2_ino_t ino = 0;
    if (errcode_t rc = ext2fs_new_inode(fsys, dir, LINUX_S_IFREG | 0600, nullptr, &ino))
      return fail("allocating an inode for", guest, rc);
    if (errcode_t rc = link(dir, name, ino, EXT2_FT_REG_FILE))
      return fail("adding the directory entry for", guest, rc);
    ext2fs_inode_alloc_stats2(fsys, ino, +1, 0);
    ext2_inode in{};
    in.i_mode = static_cast<__u16>(LINUX_S_IFREG | mode);
    set_owner(in, uid, gid);
    in.i_links_count = 1;
    in.i_atime = in.i_ctime = in.i_mtime = now();
    if (ext2fs_has_feature_extents(fsys->super)) {
      ext2_extent_handle_t handle = nullptr;
      // With no extent flag yet, opening initialises an empty extent header in `in`.
      if (errcode_t rc = ext2fs_extent_open2(fsys, ino, &in, &handle))
        return fail("initialising the extent tree of", guest, rc);
      ext2fs_extent_free(handle);
    }
    if (errcode_t rc = ext2fs_write_new_inode(fsys, ino, &in))
      return fail("writing the new inode of", guest, rc);
    return ino;
  }

  /// Replaces the content of regular file `ino` with `data`.
  expected<void> write_content(ext2_ino_t ino, std::string_view data, std::string_view guest) {
    ext2_file_t file = nullptr;
    if (errcode_t rc = ext2fs_file_open(fsys, ino, EXT2_FILE_WRITE, &file))
      return fail("opening", guest, rc);
    errcode_t rc = ext2fs_file_set_size2(file, 0); // frees the old blocks
    std::size_t off = 0;
    while (!rc && off < data.size()) {
      auto chunk = static_cast<unsigned int>(std::min<std::size_t>(data.size() - off, 1u << 20));
      unsigned int written = 0;
      rc = ext2fs_file_write(file, data.data() + off, chunk, &written);
      if (!rc && written == 0)
        rc = EXT2_ET_SHORT_WRITE;
      off += written;
    }
    if (!rc)
      rc = ext2fs_file_set_size2(file, data.size());
    errcode_t close_rc = ext2fs_file_close(file);
    if (rc || close_rc)
      return fail(fmt::format("writing {} bytes to", data.size()), guest, rc ? rc : close_rc);
    return {};
  }

  expected<std::string> read_content(ext2_ino_t ino, std::uint64_t max_bytes, std::string_view guest) const {
    ext2_file_t file = nullptr;
    if (errcode_t rc = ext2fs_file_open(fsys, ino, 0, &file))
      return fail("opening", guest, rc);
    __u64 size = 0;
    errcode_t rc = ext2fs_file_get_lsize(file, &size);
    if (!rc && size > max_bytes) {
      ext2fs_file_close(file);
      return refuse(errc::bad_request, guest, fmt::format("is {} bytes, over the {} byte limit", size, max_bytes));
    }
    std::string out;
    if (!rc)
      out.resize(size);
    std::size_t off = 0;
    while (!rc && off < out.size()) {
      auto chunk = static_cast<unsigned int>(std::min<std::size_t>(out.size() - off, 1u << 20));
      unsigned int got = 0;
      rc = ext2fs_file_read(file, out.data() + off, chunk, &got);
      if (!rc && got == 0)
        rc = EXT2_ET_SHORT_READ;
      off += got;
    }
    errcode_t close_rc = ext2fs_file_close(file);
    if (rc || close_rc)
      return fail("reading", guest, rc ? rc : close_rc);
    return out;
  }

  struct raw_entry {
    std::string name;
    ext2_ino_t ino;
  };

  expected<std::vector<raw_entry>> entries(ext2_ino_t dir, std::string_view guest) const {
    std::vector<raw_entry> out;
    auto collect = [](ext2_ino_t, int, ext2_dir_entry* de, int, int, char*, void* priv) -> int {
      auto name = std::string(de->name, static_cast<std::size_t>(ext2fs_dirent_name_len(de)));
      if (name != "." && name != "..")
        static_cast<std::vector<raw_entry>*>(priv)->push_back({std::move(name), de->inode});
      return 0;
    };
    if (errcode_t rc = ext2fs_dir_iterate2(fsys, dir, 0, nullptr, collect, &out))
      return fail("reading directory", guest, rc);
    return out;
  }
};

ext4_image::ext4_image(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
ext4_image::ext4_image(ext4_image&&) noexcept = default;
ext4_image& ext4_image::operator=(ext4_image&&) noexcept = default;
ext4_image::~ext4_image() = default;

ext4_image::impl& ext4_image::state() const {
  assert(impl_ && "use of a moved-from ext4_image");
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

expected<void> ext4_image::mkdir_p(std::string_view path, std::uint32_t mode, std::uint32_t uid, std::uint32_t gid) {
  auto& m = state();
  if (auto ok = m.check(path, true); !ok)
    return ok;
  if (auto ok = check_mode(mode); !ok)
    return m.refuse(errc::bad_request, path, ok.err().message);
  auto comps = split(path);
  ext2_ino_t cur = EXT2_ROOT_INO;
  for (std::size_t i = 0; i < comps.size(); ++i) {
    auto prefix = join(comps, i + 1);
    auto ino = m.lookup(cur, comps[i], prefix);
    if (!ino)
      return std::move(ino).err();
    if (*ino == 0) {
      auto made = m.make_dir(cur, comps[i], mode, uid, gid, prefix);
      if (!made)
        return std::move(made).err();
      cur = *made;
      continue;
    }
    auto target = m.follow(cur, *ino, prefix);
    if (!target)
      return std::move(target).err();
    auto in = m.read_inode(*target, prefix);
    if (!in)
      return std::move(in).err();
    if (!LINUX_S_ISDIR(in->i_mode))
      return m.refuse(errc::conflict, path,
                      fmt::format("{} exists and is {}", printable(prefix), type_name(in->i_mode)));
    cur = *target;
  }
  return {};
}

expected<void> ext4_image::write_file(std::string_view path, std::string_view data, std::uint32_t mode,
                                      std::uint32_t uid, std::uint32_t gid) {
  auto& m = state();
  if (auto ok = m.check(path, true); !ok)
    return ok;
  if (auto ok = check_mode(mode); !ok)
    return m.refuse(errc::bad_request, path, ok.err().message);
  auto at = m.locate(path);
  if (!at)
    return std::move(at).err();
  ext2_ino_t ino = at->ino;
  if (ino != 0) {
    auto in = m.read_inode(ino, path);
    if (!in)
      return std::move(in).err();
    if (!LINUX_S_ISREG(in->i_mode))
      return m.refuse(errc::conflict, path, fmt::format("exists and is {}", type_name(in->i_mode)));
  } else {
    auto made = m.make_file(at->dir, at->name, mode, uid, gid, path);
    if (!made)
      return std::move(made).err();
    ino = *made;
  }
  if (auto ok = m.write_content(ino, data, path); !ok)
    return ok;
  __u32 t = m.now();
  return m.update(ino, path, [&](ext2_inode& in) {
    in.i_mode = static_cast<__u16>(LINUX_S_IFREG | mode);
    set_owner(in, uid, gid);
    in.i_mtime = t;
  });
}

expected<void> ext4_image::symlink(std::string_view path, std::string_view target, std::uint32_t uid,
                                   std::uint32_t gid) {
  auto& m = state();
  if (auto ok = m.check(path, true); !ok)
    return ok;
  if (target.empty() || target.find('\0') != std::string_view::npos || has_control(target) ||
      target.size() >= m.fsys->blocksize)
    return m.refuse(errc::bad_request, path,
                    fmt::format("symlink target {} must be non-empty, shorter than {} bytes and free of NUL and "
                                "control characters",
                                printable(target), m.fsys->blocksize));
  auto at = m.locate(path);
  if (!at)
    return std::move(at).err();
  if (at->ino != 0)
    return m.refuse(errc::already_exists, path, "already exists");
  std::string tgt(target);
  errcode_t rc = ext2fs_symlink(m.fsys, at->dir, 0, at->name.c_str(), tgt.c_str());
  if (rc == EXT2_ET_DIR_NO_SPACE) {
    if ((rc = ext2fs_expand_dir(m.fsys, at->dir)))
      return m.fail("growing the parent directory of", path, rc);
    rc = ext2fs_symlink(m.fsys, at->dir, 0, at->name.c_str(), tgt.c_str());
  }
  if (rc)
    return m.fail("creating symlink", path, rc);
  auto ino = m.lookup(at->dir, at->name, path);
  if (!ino)
    return std::move(ino).err();
  __u32 t = m.now();
  return m.update(*ino, path, [&](ext2_inode& in) {
    set_owner(in, uid, gid);
    in.i_atime = in.i_mtime = t;
  });
}

expected<std::string> ext4_image::read_file(std::string_view path, std::uint64_t max_bytes) const {
  auto& m = state();
  if (auto ok = m.check(path, false); !ok)
    return std::move(ok).err();
  auto r = m.resolve_followed(path);
  if (!r)
    return std::move(r).err();
  auto* ino = &r->ino;
  auto* in = &r->inode;
  if (!LINUX_S_ISREG(in->i_mode))
    return m.refuse(errc::conflict, path, fmt::format("is {}, not a regular file", type_name(in->i_mode)));
  return m.read_content(*ino, max_bytes, path);
}

expected<bool> ext4_image::exists(std::string_view path) const {
  auto& m = state();
  if (auto ok = m.check(path, false); !ok)
    return std::move(ok).err();
  auto at = m.locate(path);
  if (!at) {
    // A missing parent, or a non-directory where a parent should be: nothing there.
    if (at.err().code == errc::not_found || at.err().code == errc::conflict)
      return false;
    return std::move(at).err();
  }
  return at->ino != 0;
}

expected<void> ext4_image::chmod(std::string_view path, std::uint32_t mode) {
  auto& m = state();
  if (auto ok = m.check(path, true); !ok)
    return ok;
  if (auto ok = check_mode(mode); !ok)
    return m.refuse(errc::bad_request, path, ok.err().message);
  auto at = m.locate_existing(path);
  if (!at)
    return std::move(at).err();
  return m.update(at->ino, path,
                  [&](ext2_inode& in) { in.i_mode = static_cast<__u16>((in.i_mode & LINUX_S_IFMT) | mode); });
}

expected<void> ext4_image::chown(std::string_view path, std::uint32_t uid, std::uint32_t gid) {
  auto& m = state();
  if (auto ok = m.check(path, true); !ok)
    return ok;
  auto at = m.locate_existing(path);
  if (!at)
    return std::move(at).err();
  return m.update(at->ino, path, [&](ext2_inode& in) { set_owner(in, uid, gid); });
}

expected<void> ext4_image::chown_tree(std::string_view path, std::uint32_t uid, std::uint32_t gid) {
  auto& m = state();
  if (auto ok = m.check(path, true); !ok)
    return ok;
  auto at = m.locate_existing(path);
  if (!at)
    return std::move(at).err();
  auto chown_one = [&](ext2_ino_t ino, const std::string& guest) -> expected<bool> {
    bool is_dir = false;
    auto ok = m.update(ino, guest, [&](ext2_inode& in) {
      set_owner(in, uid, gid);
      is_dir = LINUX_S_ISDIR(in.i_mode);
    });
    if (!ok)
      return std::move(ok).err();
    return is_dir;
  };
  std::string top(path == "/" ? "" : path);
  auto first = chown_one(at->ino, std::string(path));
  if (!first)
    return std::move(first).err();
  if (!*first)
    return {};
  std::vector<std::pair<ext2_ino_t, std::string>> pending{{at->ino, top}};
  std::set<ext2_ino_t> seen{at->ino}; // Defense in depth: a corrupt image could loop directories.
  while (!pending.empty()) {
    auto [dir, dir_path] = std::move(pending.back());
    pending.pop_back();
    auto list = m.entries(dir, dir_path.empty() ? "/" : dir_path);
    if (!list)
      return std::move(list).err();
    for (auto& e : *list) {
      if (dir == EXT2_ROOT_INO && e.name == "lost+found")
        continue;
      auto child = dir_path + "/" + e.name;
      auto is_dir = chown_one(e.ino, child);
      if (!is_dir)
        return std::move(is_dir).err();
      if (*is_dir && seen.insert(e.ino).second)
        pending.emplace_back(e.ino, std::move(child));
    }
  }
  return {};
}

expected<void> ext4_image::set_root(std::uint32_t mode, std::uint32_t uid, std::uint32_t gid) {
  auto& m = state();
  if (auto ok = m.check("/", true); !ok)
    return ok;
  if (auto ok = check_mode(mode); !ok)
    return m.refuse(errc::bad_request, "/", ok.err().message);
  return m.update(EXT2_ROOT_INO, "/", [&](ext2_inode& in) {
    in.i_mode = static_cast<__u16>(LINUX_S_IFDIR | mode);
    set_owner(in, uid, gid);
  });
}

expected<std::vector<ext4_entry>> ext4_image::list(std::string_view dir) const {
  auto& m = state();
  if (auto ok = m.check(dir, false); !ok)
    return std::move(ok).err();
  auto r = m.resolve_followed(dir);
  if (!r)
    return std::move(r).err();
  auto* ino = &r->ino;
  auto* in = &r->inode;
  if (!LINUX_S_ISDIR(in->i_mode))
    return m.refuse(errc::conflict, dir, fmt::format("is {}, not a directory", type_name(in->i_mode)));
  auto raw = m.entries(*ino, dir);
  if (!raw)
    return std::move(raw).err();
  std::vector<ext4_entry> out;
  out.reserve(raw->size());
  for (auto& e : *raw) {
    auto child = m.read_inode(e.ino, (dir == "/" ? "" : std::string(dir)) + "/" + e.name);
    if (!child)
      return std::move(child).err();
    out.push_back(ext4_entry{std::move(e.name), type_of(child->i_mode), child->i_mode & 07777u, inode_uid(*child),
                             inode_gid(*child), EXT2_I_SIZE(&*child)});
  }
  std::sort(out.begin(), out.end(), [](const ext4_entry& a, const ext4_entry& b) { return a.name < b.name; });
  return out;
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
