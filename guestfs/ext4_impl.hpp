// Internal to banger_guestfs_ext4: the open filesystem (struct ext4_image::impl) and the path and
// inode helpers that ext4.cpp (opening, closing, creating images), ext4_write.cpp (creating
// and changing entries) and ext4_read.cpp (reading them) share. With those files, the only
// place that includes libext2fs; not included outside guestfs/ext4*.cpp.
//
// Allocation follows libext2fs's own contract: an inode or block found free with ext2fs_new_* is
// marked in the bitmaps (ext2fs_*_alloc_stats2) before anything else can allocate, and the
// bitmaps, group descriptors and superblock are written back by ext2fs_close2. A directory entry
// is added with ext2fs_link, growing the directory by one block (ext2fs_expand_dir) when it is
// full. Not thread-safe, like ext4_image: one thread uses an image at a time.
#pragma once

#include <ext2fs/ext2fs.h>

#include <et/com_err.h>

#include <algorithm>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <fmt/format.h>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "common/process.hpp"
#include "guestfs/ext4.hpp"

namespace banger::guestfs {

namespace detail {

/// `s` for an error message: quoted, control characters escaped, cut after 200 bytes.
inline std::string printable(std::string_view s) {
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

inline std::string ext2_text(errcode_t rc) { return fmt::format("{} (ext2fs error {})", error_message(rc), rc); }

inline bool has_control(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char ch) {
    auto c = static_cast<unsigned char>(ch);
    return c < 0x20 || c == 0x7f;
  });
}

/// The components of a path validate_guest_path accepted; empty for "/".
inline std::vector<std::string> split(std::string_view path) {
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

inline std::string join(const std::vector<std::string>& comps, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i)
    out += "/" + comps[i];
  return out.empty() ? "/" : out;
}

inline const char* type_name(std::uint16_t mode) {
  if (LINUX_S_ISREG(mode))
    return "a regular file";
  if (LINUX_S_ISDIR(mode))
    return "a directory";
  if (LINUX_S_ISLNK(mode))
    return "a symlink";
  return "a special file";
}

inline entry_type type_of(std::uint16_t mode) {
  if (LINUX_S_ISREG(mode))
    return entry_type::regular;
  if (LINUX_S_ISDIR(mode))
    return entry_type::directory;
  if (LINUX_S_ISLNK(mode))
    return entry_type::symlink;
  return entry_type::other;
}

inline void set_owner(ext2_inode& in, std::uint32_t uid, std::uint32_t gid) {
  in.i_uid = static_cast<__u16>(uid & 0xffff);
  ext2fs_set_i_uid_high(in, static_cast<__u16>(uid >> 16));
  in.i_gid = static_cast<__u16>(gid & 0xffff);
  ext2fs_set_i_gid_high(in, static_cast<__u16>(gid >> 16));
}

/// A name for the by-inode writes (ext4_tree.cpp): bytes, but not "." or "..", '/' or NUL, and
/// 1 to max_guest_name bytes.
inline expected<void> check_name(std::string_view name) {
  if (name.empty() || name.size() > max_guest_name)
    return make_error(errc::bad_request, fmt::format("name {} must be 1 to {} bytes", printable(name), max_guest_name));
  if (name == "." || name == "..")
    return make_error(errc::bad_request, fmt::format("name {} is not an entry", printable(name)));
  if (name.find('/') != std::string_view::npos || name.find('\0') != std::string_view::npos)
    return make_error(errc::bad_request, fmt::format("name {} holds '/' or NUL", printable(name)));
  return {};
}

inline expected<void> check_mode(std::uint32_t mode) {
  if (mode > 07777)
    return make_error(errc::bad_request, fmt::format("mode {:o} has bits beyond 07777 (permission bits only)", mode));
  return {};
}

} // namespace detail

struct ext4_image::impl {
  std::filesystem::path image;
  bool writable = false;
  std::optional<std::time_t> fixed_time;
  unique_fd lock; ///< flock held while open
  ext2_filsys fsys = nullptr;
  /// The directories this object made, each with every name it has linked into them: a new
  /// entry there is checked against this set instead of a scan of the directory's blocks
  /// (thousands of entries into a tree being built). link() adds, unlinked() removes,
  /// forget_dir() drops a directory whose inode is freed (its number may come back).
  std::unordered_map<ext2_ino_t, std::unordered_set<std::string>> made_dirs;

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
                                                            image.string(), detail::ext2_text(rc)));
    return {};
  }

  error fail(std::string_view what, std::string_view guest, errcode_t rc) const {
    return make_error(errc::operation_failed, fmt::format("ext4 image {}: {} {}: {}", image.string(), what,
                                                          detail::printable(guest), detail::ext2_text(rc)));
  }
  error refuse(errc code, std::string_view guest, std::string_view why) const {
    return make_error(code, fmt::format("ext4 image {}: {}: {}", image.string(), detail::printable(guest), why));
  }

  /// For a new entry `name` in directory `dir` (the by-inode writes): the image is writable,
  /// the name and the mode (when given) are valid, and `dir` has no entry of that name yet
  /// (errc::already_exists).
  expected<void> check_new(ext2_ino_t dir, const std::string& name, std::optional<std::uint32_t> mode) const {
    if (auto ok = check("/", true); !ok)
      return ok;
    if (auto ok = detail::check_name(name); !ok)
      return ok;
    if (mode)
      if (auto ok = detail::check_mode(*mode); !ok)
        return ok;
    if (auto made = made_dirs.find(dir); made != made_dirs.end()) {
      if (made->second.count(name))
        return refuse(errc::already_exists, name, "already exists");
      return {};
    }
    auto existing = lookup(dir, name, name);
    if (!existing)
      return std::move(existing).err();
    if (*existing != 0)
      return refuse(errc::already_exists, name, "already exists");
    return {};
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
      auto prefix = detail::join(comps, i + 1);
      auto ino = lookup(cur, comps[i], guest);
      if (!ino)
        return std::move(ino).err();
      if (*ino == 0)
        return refuse(errc::not_found, guest, fmt::format("parent {} does not exist", detail::printable(prefix)));
      auto target = follow(cur, *ino, prefix);
      if (!target)
        return std::move(target).err();
      auto in = read_inode(*target, prefix);
      if (!in)
        return std::move(in).err();
      if (!LINUX_S_ISDIR(in->i_mode))
        return refuse(errc::conflict, guest,
                      fmt::format("parent {} is {}", detail::printable(prefix), detail::type_name(in->i_mode)));
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
    auto comps = detail::split(guest);
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

  /// Adds `name` -> `ino` to `dir`, growing the directory when its blocks are full. The caller
  /// has checked that `dir` has no entry `name` (check_new, or a lookup).
  errcode_t link(ext2_ino_t dir, const std::string& name, ext2_ino_t ino, int file_type) {
    errcode_t rc = ext2fs_link(fsys, dir, name.c_str(), ino, file_type);
    if (rc == EXT2_ET_DIR_NO_SPACE) {
      if ((rc = ext2fs_expand_dir(fsys, dir)))
        return rc;
      rc = ext2fs_link(fsys, dir, name.c_str(), ino, file_type);
    }
    if (!rc)
      if (auto made = made_dirs.find(dir); made != made_dirs.end())
        made->second.insert(name);
    return rc;
  }

  /// Records that `name` was unlinked from `dir`.
  void unlinked(ext2_ino_t dir, const std::string& name) {
    if (auto made = made_dirs.find(dir); made != made_dirs.end())
      made->second.erase(name);
  }
  void forget_dir(ext2_ino_t dir) { made_dirs.erase(dir); }

  /// Undoes an inode made for an entry that could not be linked: its blocks and the inode go
  /// back to the free pool (and a directory's ".." back off its parent's link count).
  void discard_unlinked(ext2_ino_t ino, bool is_dir, ext2_ino_t parent) {
    ext2_inode in{};
    if (ext2fs_read_inode(fsys, ino, &in) == 0) {
      if (!(LINUX_S_ISLNK(in.i_mode) && ext2fs_is_fast_symlink(&in)))
        (void)ext2fs_punch(fsys, ino, &in, nullptr, 0, ~0ULL);
      in.i_links_count = 0;
      in.i_dtime = now();
      (void)ext2fs_write_inode(fsys, ino, &in);
    }
    ext2fs_inode_alloc_stats2(fsys, ino, -1, is_dir ? 1 : 0);
    if (is_dir) {
      forget_dir(ino);
      (void)update(parent, "", [](ext2_inode& p) {
        if (p.i_links_count > 1)
          --p.i_links_count;
      });
    }
  }

  /// A new symlink `name` -> `target` in `dir` (growing the directory when it is full), owned
  /// by uid/gid with mtime `mtime`; its inode. `guest` names it in messages.
  expected<ext2_ino_t> make_symlink(ext2_ino_t dir, const std::string& name, const std::string& target,
                                    std::uint32_t uid, std::uint32_t gid, __u32 mtime, std::string_view guest) {
    // The inode is made unnamed and linked here: ext2fs_symlink's own naming would scan the
    // directory twice more (a lookup, then the link).
    ext2_ino_t made = 0;
    if (errcode_t rc = ext2fs_new_inode(fsys, dir, LINUX_S_IFLNK | 0777, nullptr, &made))
      return fail("allocating an inode for", guest, rc);
    if (errcode_t rc = ext2fs_symlink(fsys, dir, made, nullptr, target.c_str()))
      return fail("creating symlink", guest, rc);
    if (errcode_t rc = link(dir, name, made, EXT2_FT_SYMLINK)) {
      discard_unlinked(made, false, dir);
      return fail("adding the directory entry for", guest, rc);
    }
    expected<ext2_ino_t> ino = made;
    auto ok = update(*ino, guest, [&](ext2_inode& in) {
      detail::set_owner(in, uid, gid);
      in.i_atime = in.i_mtime = mtime;
    });
    if (!ok)
      return std::move(ok).err();
    return ino;
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

  /// A new directory `name` in `parent` (which has no entry of that name); its inode. Made
  /// unnamed and linked here, as make_symlink does, and remembered in made_dirs.
  expected<ext2_ino_t> make_dir(ext2_ino_t parent, const std::string& name, std::uint32_t mode, std::uint32_t uid,
                                std::uint32_t gid, std::string_view guest) {
    ext2_ino_t made = 0;
    if (errcode_t rc = ext2fs_new_inode(fsys, parent, LINUX_S_IFDIR | 0755, nullptr, &made))
      return fail("allocating an inode for", guest, rc);
    if (errcode_t rc = ext2fs_mkdir(fsys, parent, made, nullptr))
      return fail("creating directory", guest, rc);
    if (errcode_t rc = link(parent, name, made, EXT2_FT_DIR)) {
      discard_unlinked(made, true, parent);
      return fail("adding the directory entry for", guest, rc);
    }
    made_dirs[made];
    expected<ext2_ino_t> ino = made;
    __u32 t = now();
    auto ok = update(*ino, guest, [&](ext2_inode& in) {
      in.i_mode = static_cast<__u16>(LINUX_S_IFDIR | mode);
      detail::set_owner(in, uid, gid);
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
    detail::set_owner(in, uid, gid);
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

  struct block_run {
    blk64_t lblk, pblk, len;
  };
  /// The mapped blocks of extent-mapped `ino` (its inode `in`), in file order.
  expected<std::vector<block_run>> runs_of(ext2_ino_t ino, ext2_inode& in, std::string_view guest) const {
    std::vector<block_run> out;
    ext2_extent_handle_t h = nullptr;
    if (errcode_t rc = ext2fs_extent_open2(fsys, ino, &in, &h))
      return fail("reading the extents of", guest, rc);
    ext2fs_extent ex{};
    errcode_t rc = ext2fs_extent_get(h, EXT2_EXTENT_ROOT, &ex);
    while (!rc) {
      if ((ex.e_flags & EXT2_EXTENT_FLAGS_LEAF) && !(ex.e_flags & EXT2_EXTENT_FLAGS_SECOND_VISIT))
        out.push_back({ex.e_lblk, ex.e_pblk, ex.e_len});
      rc = ext2fs_extent_get(h, EXT2_EXTENT_NEXT, &ex);
    }
    ext2fs_extent_free(h);
    if (rc != EXT2_ET_EXTENT_NO_NEXT && rc != EXT2_ET_EXTENT_NO_DOWN)
      return fail("reading the extents of", guest, rc);
    return out;
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

} // namespace banger::guestfs
