// ext4_image's writes by inode (ext4.hpp, "by inode"): new directories, symlinks and streamed
// files inside a directory given by its inode, renames within a directory, removal of whole
// trees with their blocks freed, and free space. What workspaces and image layers are written
// with: names are bytes, nothing is looked up by path and no symlink is followed. Not
// thread-safe: one thread uses an image at a time.
#include "guestfs/ext4_impl.hpp"

#include <optional>
#include <set>

namespace banger::guestfs {

namespace {

using detail::printable;
using detail::set_owner;
using detail::type_of;

/// The depth remove_tree_in goes to; a deeper tree is a corrupt (looping) image.
constexpr int max_remove_depth = 4096;

__u32 clamp_time(std::int64_t t) { return static_cast<__u32>(std::clamp<std::int64_t>(t, 0, 0xffffffffLL)); }

int file_type_of(std::uint16_t mode) {
  if (LINUX_S_ISREG(mode))
    return EXT2_FT_REG_FILE;
  if (LINUX_S_ISDIR(mode))
    return EXT2_FT_DIR;
  if (LINUX_S_ISLNK(mode))
    return EXT2_FT_SYMLINK;
  if (LINUX_S_ISCHR(mode))
    return EXT2_FT_CHRDEV;
  if (LINUX_S_ISBLK(mode))
    return EXT2_FT_BLKDEV;
  if (LINUX_S_ISFIFO(mode))
    return EXT2_FT_FIFO;
  if (LINUX_S_ISSOCK(mode))
    return EXT2_FT_SOCK;
  return EXT2_FT_UNKNOWN;
}

} // namespace

struct ext4_image::file_writer::state {
  ext4_image::impl* m = nullptr;
  ext2_file_t file = nullptr; ///< streaming through libext2fs (size not given)
  ext2_ino_t ino = 0;
  std::string what; ///< for messages

  // Written straight to blocks allocated up front (size given): what file.c would otherwise do
  // per block (map it, allocate it, zero it, then write it) is one allocation per file and one
  // write per run of whole blocks.
  bool direct = false;
  bool open = false; ///< direct: still taking bytes
  std::uint64_t declared = 0;
  ext2_inode inode{};
  struct run {
    blk64_t lblk, pblk, len;
  };
  std::vector<run> runs;  ///< the allocated blocks, in file order
  std::size_t cursor = 0; ///< the run holding block `next`
  blk64_t next = 0;       ///< the next logical block to write
  std::string partial;    ///< bytes short of a whole block

  ~state() {
    if (file)
      ext2fs_file_close(file);
  }

  /// Writes `n` whole blocks from `p` at logical block `next` onwards.
  errcode_t put_blocks(const char* p, blk64_t n) {
    auto bs = m->fsys->blocksize;
    while (n > 0) {
      while (cursor < runs.size() && next >= runs[cursor].lblk + runs[cursor].len)
        ++cursor;
      if (cursor == runs.size() || next < runs[cursor].lblk)
        return EXT2_ET_BLOCK_ALLOC_FAIL; // a hole in what fallocate mapped: never expected
      const auto& r = runs[cursor];
      blk64_t count = std::min<blk64_t>(n, r.lblk + r.len - next);
      if (errcode_t rc = io_channel_write_blk64(m->fsys->io, r.pblk + (next - r.lblk), static_cast<int>(count), p))
        return rc;
      p += count * bs;
      next += count;
      n -= count;
    }
    return 0;
  }
};

ext4_image::file_writer::file_writer(std::unique_ptr<state> s) : s_(std::move(s)) {}
ext4_image::file_writer::file_writer(file_writer&&) noexcept = default;
ext4_image::file_writer& ext4_image::file_writer::operator=(file_writer&&) noexcept = default;
ext4_image::file_writer::~file_writer() = default;

expected<void> ext4_image::file_writer::write(std::string_view data) {
  BANGER_CHECK(s_ && (s_->file || s_->open), "write() on a finished or moved-from file_writer");
  if (s_->direct)
    return write_direct(data);
  std::size_t off = 0;
  while (off < data.size()) {
    auto chunk = static_cast<unsigned int>(std::min<std::size_t>(data.size() - off, 1u << 20));
    unsigned int n = 0;
    errcode_t rc = ext2fs_file_write(s_->file, data.data() + off, chunk, &n);
    if (!rc && n == 0)
      rc = EXT2_ET_SHORT_WRITE;
    if (rc) {
      // The file keeps what was written before this call; the writer is done.
      written_ += off;
      ext2fs_file_set_size2(s_->file, written_);
      ext2fs_file_close(s_->file);
      s_->file = nullptr;
      return s_->m->fail(fmt::format("writing {} bytes at offset {} to", data.size() - off, written_), s_->what, rc);
    }
    off += n;
  }
  written_ += data.size();
  return {};
}

expected<void> ext4_image::file_writer::write_direct(std::string_view data) {
  auto& st = *s_;
  if (written_ + data.size() > st.declared) {
    st.open = false;
    return st.m->refuse(errc::bad_request, st.what,
                        fmt::format("{} bytes written to a file declared as {}", written_ + data.size(), st.declared));
  }
  std::size_t bs = st.m->fsys->blocksize;
  errcode_t rc = 0;
  std::string_view rest = data;
  if (!st.partial.empty()) {
    auto take = std::min(rest.size(), bs - st.partial.size());
    st.partial.append(rest.substr(0, take));
    rest.remove_prefix(take);
    if (st.partial.size() == bs) {
      rc = st.put_blocks(st.partial.data(), 1);
      st.partial.clear();
    }
  }
  if (!rc && rest.size() >= bs) {
    auto whole = rest.size() / bs;
    rc = st.put_blocks(rest.data(), whole);
    rest.remove_prefix(whole * bs);
  }
  if (rc) {
    st.open = false;
    return st.m->fail(fmt::format("writing {} bytes at offset {} to", data.size(), written_), st.what, rc);
  }
  st.partial.append(rest);
  written_ += data.size();
  return {};
}

expected<ext4_image::inode_number> ext4_image::file_writer::finish(std::int64_t mtime) {
  BANGER_CHECK(s_ && (s_->file || s_->open), "finish() on a finished or moved-from file_writer");
  if (s_->direct)
    return finish_direct(mtime);
  errcode_t rc = ext2fs_file_set_size2(s_->file, written_);
  errcode_t close_rc = ext2fs_file_close(s_->file);
  s_->file = nullptr;
  if (rc || close_rc)
    return s_->m->fail(fmt::format("finishing ({} bytes)", written_), s_->what, rc ? rc : close_rc);
  auto ok = s_->m->update(s_->ino, s_->what, [&](ext2_inode& in) { in.i_mtime = in.i_atime = clamp_time(mtime); });
  if (!ok)
    return std::move(ok).err();
  return s_->ino;
}

expected<ext4_image::inode_number> ext4_image::file_writer::finish_direct(std::int64_t mtime) {
  auto& st = *s_;
  st.open = false;
  auto& fsys = st.m->fsys;
  if (!st.partial.empty()) {
    st.partial.resize(fsys->blocksize, '\0'); // the rest of the last block reads as zeros
    if (errcode_t rc = st.put_blocks(st.partial.data(), 1))
      return st.m->fail(fmt::format("writing the last block ({} bytes) of", written_), st.what, rc);
    st.partial.clear();
  }
  blk64_t used = (written_ + fsys->blocksize - 1) / fsys->blocksize;
  if (written_ < st.declared)
    // Fewer bytes than declared: the blocks past the end go back.
    if (errcode_t rc = ext2fs_punch(fsys, st.ino, &st.inode, nullptr, used, ~0ULL))
      return st.m->fail("freeing the unwritten blocks of", st.what, rc);
  if (errcode_t rc = ext2fs_inode_size_set(fsys, &st.inode, written_))
    return st.m->fail(fmt::format("setting the size ({} bytes) of", written_), st.what, rc);
  st.inode.i_mtime = st.inode.i_atime = clamp_time(mtime);
  st.inode.i_ctime = st.m->now();
  if (auto ok = st.m->write_inode(st.ino, st.inode, st.what); !ok)
    return std::move(ok).err();
  return st.ino;
}

expected<ext4_image::inode_number> ext4_image::inode_of(std::string_view path) const {
  auto& m = state();
  if (auto ok = m.check(path, false); !ok)
    return std::move(ok).err();
  auto at = m.locate_existing(path);
  if (!at)
    return std::move(at).err();
  return at->ino;
}

expected<ext4_image::inode_info> ext4_image::stat(inode_number ino) const {
  auto& m = state();
  if (!m.fsys)
    return make_error(errc::internal, fmt::format("ext4 image {}: used after close()", m.image.string()));
  if (ino == 0 || ino > m.fsys->super->s_inodes_count)
    return make_error(errc::bad_request, fmt::format("ext4 image {}: no inode {}", m.image.string(), ino));
  auto in = m.read_inode(ino, fmt::format("inode {}", ino));
  if (!in)
    return std::move(in).err();
  inode_info out;
  out.ino = ino;
  out.type = type_of(in->i_mode);
  out.mode = in->i_mode & 07777;
  out.uid = inode_uid(*in);
  out.gid = inode_gid(*in);
  out.size = EXT2_I_SIZE(&*in);
  out.mtime = in->i_mtime;
  out.ctime = in->i_ctime;
  out.format = in->i_mode & LINUX_S_IFMT;
  if (LINUX_S_ISCHR(in->i_mode) || LINUX_S_ISBLK(in->i_mode)) {
    if (in->i_block[0] != 0) { // the old encoding: 8-bit major and minor
      out.rdev_major = (in->i_block[0] >> 8) & 0xff;
      out.rdev_minor = in->i_block[0] & 0xff;
    } else {
      std::uint32_t d = in->i_block[1];
      out.rdev_major = (d & 0xfff00) >> 8;
      out.rdev_minor = (d & 0xff) | ((d >> 12) & 0xfff00);
    }
  }
  return out;
}

expected<ext4_image::inode_number> ext4_image::mknod_in(inode_number dir, std::string_view name, node_kind kind,
                                                        std::uint32_t mode, std::uint32_t uid, std::uint32_t gid,
                                                        std::uint32_t major, std::uint32_t minor, std::int64_t mtime) {
  auto& m = state();
  std::string n(name);
  if (auto ok = m.check_new(dir, n, mode); !ok)
    return std::move(ok).err();
  bool device = kind != node_kind::fifo;
  if (device && (major >= 4096 || minor >= (1u << 20)))
    return m.refuse(
      errc::bad_request, name,
      fmt::format("device number {}:{} is outside what Linux encodes (major < 4096, minor < 1048576)", major, minor));
  std::uint16_t fmt_bits = kind == node_kind::char_device    ? LINUX_S_IFCHR
                           : kind == node_kind::block_device ? LINUX_S_IFBLK
                                                             : LINUX_S_IFIFO;
  int ft = kind == node_kind::char_device    ? EXT2_FT_CHRDEV
           : kind == node_kind::block_device ? EXT2_FT_BLKDEV
                                             : EXT2_FT_FIFO;
  ext2_ino_t ino = 0;
  if (errcode_t rc = ext2fs_new_inode(m.fsys, dir, fmt_bits | 0600, nullptr, &ino))
    return m.fail("allocating an inode for", n, rc);
  if (errcode_t rc = m.link(dir, n, ino, ft))
    return m.fail("adding the directory entry for", n, rc);
  ext2fs_inode_alloc_stats2(m.fsys, ino, +1, 0);
  ext2_inode in{};
  in.i_mode = static_cast<__u16>(fmt_bits | mode);
  detail::set_owner(in, uid, gid);
  in.i_links_count = 1;
  in.i_ctime = m.now();
  in.i_atime = in.i_mtime = clamp_time(mtime);
  if (device) { // as Linux writes i_block for a device: the old encoding when it fits, else the new
    if (major < 256 && minor < 256)
      in.i_block[0] = (major << 8) | minor;
    else
      in.i_block[1] = (minor & 0xff) | (major << 8) | ((minor & ~0xffu) << 12);
  }
  if (errcode_t rc = ext2fs_write_new_inode(m.fsys, ino, &in))
    return m.fail("writing the new inode of", n, rc);
  return ino;
}

expected<void> validate_xattr(std::string_view name, std::size_t value_size) {
  bool known = name.starts_with("user.") || name.starts_with("security.") || name.starts_with("trusted.");
  if (!known || name.size() > max_xattr_name || name.find('\0') != std::string_view::npos)
    return make_error(errc::bad_request,
                      fmt::format("extended attribute {}: only user.*, security.* and trusted.* names of at most {} "
                                  "bytes are written",
                                  printable(name.substr(0, 80)), max_xattr_name));
  if (value_size > max_xattr_value)
    return make_error(errc::bad_request, fmt::format("extended attribute {} is too long: {} bytes (at most {})",
                                                     printable(name), value_size, max_xattr_value));
  return {};
}

expected<void> ext4_image::set_xattr(inode_number ino, std::string_view name, std::string_view value) {
  auto& m = state();
  if (auto ok = m.check("/", true); !ok)
    return ok;
  if (auto ok = validate_xattr(name, value.size()); !ok)
    return ok;
  auto what = fmt::format("inode {}", ino);
  ext2_xattr_handle* h = nullptr;
  if (errcode_t rc = ext2fs_xattrs_open(m.fsys, ino, &h))
    return m.fail("opening the extended attributes of", what, rc);
  errcode_t rc = ext2fs_xattrs_read(h);
  std::string key(name);
  if (!rc)
    rc = ext2fs_xattr_set(h, key.c_str(), value.data(), value.size());
  errcode_t closed = ext2fs_xattrs_close(&h);
  if (rc || closed)
    return m.fail(fmt::format("setting extended attribute {} of", printable(name)).c_str(), what, rc ? rc : closed);
  return {};
}

expected<std::optional<std::string>> ext4_image::get_xattr(inode_number ino, std::string_view name) const {
  auto& m = state();
  if (auto ok = m.check("/", false); !ok)
    return std::move(ok).err();
  auto what = fmt::format("inode {}", ino);
  ext2_xattr_handle* h = nullptr;
  if (errcode_t rc = ext2fs_xattrs_open(m.fsys, ino, &h))
    return m.fail("opening the extended attributes of", what, rc);
  errcode_t rc = ext2fs_xattrs_read(h);
  void* value = nullptr;
  size_t len = 0;
  std::string key(name);
  std::optional<std::string> out;
  if (!rc) {
    rc = ext2fs_xattr_get(h, key.c_str(), &value, &len);
    if (rc == EXT2_ET_EA_KEY_NOT_FOUND) {
      rc = 0;
    } else if (!rc) {
      out = std::string(static_cast<const char*>(value), len);
      ext2fs_free_mem(&value);
    }
  }
  ext2fs_xattrs_close(&h);
  if (rc)
    return m.fail("reading the extended attributes of", what, rc);
  return out;
}

expected<ext4_image::inode_number> ext4_image::mkdir_in(inode_number dir, std::string_view name, std::uint32_t mode,
                                                        std::uint32_t uid, std::uint32_t gid, std::int64_t mtime) {
  auto& m = state();
  std::string n(name);
  if (auto ok = m.check_new(dir, n, mode); !ok)
    return std::move(ok).err();
  auto made = m.make_dir(dir, n, mode, uid, gid, n);
  if (!made)
    return made;
  auto ok = m.update(*made, n, [&](ext2_inode& in) { in.i_mtime = in.i_atime = clamp_time(mtime); });
  if (!ok)
    return std::move(ok).err();
  return made;
}

expected<ext4_image::inode_number> ext4_image::symlink_in(inode_number dir, std::string_view name,
                                                          std::string_view target, std::uint32_t uid, std::uint32_t gid,
                                                          std::int64_t mtime) {
  auto& m = state();
  std::string n(name), t(target);
  if (auto ok = m.check_new(dir, n, std::nullopt); !ok)
    return std::move(ok).err();
  if (target.empty() || target.find('\0') != std::string_view::npos || target.size() >= m.fsys->blocksize)
    return m.refuse(
      errc::bad_request, name,
      fmt::format("symlink target {} must be 1 to {} bytes without NUL", printable(target), m.fsys->blocksize - 1));
  return m.make_symlink(dir, n, t, uid, gid, clamp_time(mtime), n);
}

expected<ext4_image::file_writer> ext4_image::create_in(inode_number dir, std::string_view name, std::uint32_t mode,
                                                        std::uint32_t uid, std::uint32_t gid,
                                                        std::optional<std::uint64_t> size) {
  auto& m = state();
  std::string n(name);
  if (auto ok = m.check_new(dir, n, mode); !ok)
    return std::move(ok).err();
  auto ino = m.make_file(dir, n, mode, uid, gid, n);
  if (!ino)
    return std::move(ino).err();
  auto st = std::make_unique<file_writer::state>();
  st->m = &m;
  st->ino = *ino;
  st->what = n;
  if (size && ext2fs_has_feature_extents(m.fsys->super)) {
    st->direct = st->open = true;
    st->declared = *size;
    auto in = m.read_inode(*ino, n);
    if (!in)
      return std::move(in).err();
    st->inode = *in;
    blk64_t blocks = (*size + m.fsys->blocksize - 1) / m.fsys->blocksize;
    if (blocks > 0) {
      // Within i_size, so that fallocate makes the extents initialised: every block is
      // written (the last one padded) before anything can read it.
      if (errcode_t rc = ext2fs_inode_size_set(m.fsys, &st->inode, *size))
        return m.fail("sizing", n, rc);
      if (errcode_t rc = ext2fs_fallocate(m.fsys, EXT2_FALLOCATE_FORCE_INIT | EXT2_FALLOCATE_INIT_BEYOND_EOF, *ino,
                                          &st->inode, ~0ULL, 0, blocks)) {
        // Not there at all rather than half allocated: what fallocate took goes back.
        auto err = m.fail(fmt::format("allocating {} bytes for", *size), n, rc);
        (void)m.write_inode(*ino, st->inode, n);
        (void)remove_tree_in(dir, n);
        return err;
      }
      if (auto ok = m.write_inode(*ino, st->inode, n); !ok)
        return std::move(ok).err();
      if (auto runs = m.runs_of(*ino, st->inode, n); !runs)
        return std::move(runs).err();
      else
        for (const auto& r : *runs)
          st->runs.push_back({r.lblk, r.pblk, r.len});
    }
    return file_writer{std::move(st)};
  }
  if (errcode_t rc = ext2fs_file_open(m.fsys, *ino, EXT2_FILE_WRITE, &st->file))
    return m.fail("opening", n, rc);
  return file_writer{std::move(st)};
}

expected<std::optional<ext4_image::inode_info>> ext4_image::lookup_in(inode_number dir, std::string_view name) const {
  auto& m = state();
  if (auto ok = m.check("/", false); !ok)
    return ok.err();
  if (auto ok = detail::check_name(name); !ok)
    return ok.err();
  std::string n(name);
  std::optional<inode_info> none;
  if (auto made = m.made_dirs.find(dir); made != m.made_dirs.end() && !made->second.count(n))
    return none; // a directory this image made: its names are known
  auto ino = m.lookup(dir, n, n);
  if (!ino)
    return ino.err();
  if (*ino == 0)
    return none;
  auto st = stat(*ino);
  if (!st)
    return st.err();
  return std::optional<inode_info>(*st);
}

expected<std::vector<std::pair<std::string, ext4_image::inode_number>>> ext4_image::entries_in(inode_number dir) const {
  auto& m = state();
  if (auto ok = m.check("/", false); !ok)
    return ok.err();
  auto list = m.entries(dir, fmt::format("directory inode {}", dir));
  if (!list)
    return list.err();
  std::vector<std::pair<std::string, inode_number>> out;
  out.reserve(list->size());
  for (auto& e : *list)
    out.emplace_back(std::move(e.name), e.ino);
  return out;
}

expected<void> ext4_image::link_in(inode_number dir, std::string_view name, inode_number target) {
  auto& m = state();
  std::string n(name);
  if (auto ok = m.check_new(dir, n, std::nullopt); !ok)
    return ok;
  auto in = m.read_inode(target, n);
  if (!in)
    return in.err();
  if (!LINUX_S_ISREG(in->i_mode) || in->i_links_count == 0)
    return m.refuse(errc::bad_request, n, "a hard link's target must be a regular file");
  if (in->i_links_count >= EXT2_LINK_MAX)
    return m.refuse(errc::bad_request, n, fmt::format("its target has {} links already", in->i_links_count));
  if (errcode_t rc = m.link(dir, n, target, EXT2_FT_REG_FILE))
    return m.fail("adding the hard link", n, rc);
  ++in->i_links_count;
  in->i_ctime = m.now();
  return m.write_inode(target, *in, n);
}

expected<void> ext4_image::set_attrs(inode_number ino, std::uint32_t mode, std::uint32_t uid, std::uint32_t gid,
                                     std::int64_t mtime) {
  auto& m = state();
  if (auto ok = m.check("/", true); !ok)
    return ok;
  if (auto ok = detail::check_mode(mode); !ok)
    return ok;
  auto what = fmt::format("inode {}", ino);
  return m.update(ino, what, [&](ext2_inode& in) {
    in.i_mode = static_cast<__u16>((in.i_mode & LINUX_S_IFMT) | mode);
    set_owner(in, uid, gid);
    in.i_mtime = clamp_time(mtime);
  });
}

expected<void> ext4_image::rename_in(inode_number dir, std::string_view from, std::string_view to) {
  auto& m = state();
  if (auto ok = m.check("/", true); !ok)
    return ok;
  if (auto ok = detail::check_name(from); !ok)
    return ok;
  if (auto ok = detail::check_name(to); !ok)
    return ok;
  std::string f(from), t(to);
  auto ino = m.lookup(dir, f, f);
  if (!ino)
    return std::move(ino).err();
  if (*ino == 0)
    return m.refuse(errc::not_found, f, "does not exist");
  auto there = m.lookup(dir, t, t);
  if (!there)
    return std::move(there).err();
  if (*there != 0)
    return m.refuse(errc::already_exists, t, "already exists");
  auto in = m.read_inode(*ino, f);
  if (!in)
    return std::move(in).err();
  if (errcode_t rc = m.link(dir, t, *ino, file_type_of(in->i_mode)))
    return m.fail(fmt::format("renaming {} to", printable(f)), t, rc);
  if (errcode_t rc = ext2fs_unlink(m.fsys, dir, f.c_str(), *ino, 0))
    return m.fail("removing the old name", f, rc);
  m.unlinked(dir, f);
  return {};
}

expected<void> ext4_image::remove_tree_in(inode_number dir, std::string_view name) {
  auto& m = state();
  if (auto ok = m.check("/", true); !ok)
    return ok;
  if (auto ok = detail::check_name(name); !ok)
    return ok;
  std::string n(name);
  auto ino = m.lookup(dir, n, n);
  if (!ino)
    return std::move(ino).err();
  if (*ino == 0)
    return {};
  std::set<ext2_ino_t> seen;
  // Unlinks `nm` (inode `i`) from `parent` and frees what nothing links any more.
  auto remove = [&](auto& self, ext2_ino_t parent, const std::string& nm, ext2_ino_t i, int depth) -> expected<void> {
    if (depth > max_remove_depth || (i == EXT2_ROOT_INO))
      return m.refuse(errc::conflict, nm, "is part of a directory loop (a corrupt image)");
    auto in = m.read_inode(i, nm);
    if (!in)
      return std::move(in).err();
    bool is_dir = LINUX_S_ISDIR(in->i_mode);
    if (is_dir) {
      if (!seen.insert(i).second)
        return m.refuse(errc::conflict, nm, "is part of a directory loop (a corrupt image)");
      auto children = m.entries(i, nm);
      if (!children)
        return std::move(children).err();
      for (const auto& c : *children)
        if (auto ok = self(self, i, c.name, c.ino, depth + 1); !ok)
          return ok;
    }
    if (errcode_t rc = ext2fs_unlink(m.fsys, parent, nm.c_str(), i, 0))
      return m.fail("unlinking", nm, rc);
    m.unlinked(parent, nm);
    if (is_dir) {
      // Its ".." counted on the parent.
      auto ok = m.update(parent, nm, [](ext2_inode& p) {
        if (p.i_links_count > 1)
          --p.i_links_count;
      });
      if (!ok)
        return ok;
    }
    auto cur = m.read_inode(i, nm);
    if (!cur)
      return std::move(cur).err();
    if (!is_dir && cur->i_links_count > 1) {
      --cur->i_links_count;
      cur->i_ctime = m.now();
      return m.write_inode(i, *cur, nm);
    }
    // An attribute block (xattrs that did not fit in the inode) is shared by reference count.
    if (blk64_t ea = ext2fs_file_acl_block(m.fsys, &*cur); ea != 0) {
      __u32 left = 0;
      if (errcode_t rc = ext2fs_adjust_ea_refcount3(m.fsys, ea, nullptr, -1, &left, i))
        return m.fail("releasing the attribute block of", nm, rc);
      if (left == 0)
        ext2fs_block_alloc_stats2(m.fsys, ea, -1);
      ext2fs_file_acl_block_set(m.fsys, &*cur, 0);
    }
    bool special = LINUX_S_ISCHR(cur->i_mode) || LINUX_S_ISBLK(cur->i_mode) || LINUX_S_ISFIFO(cur->i_mode) ||
                   LINUX_S_ISSOCK(cur->i_mode); // no blocks: i_block holds a device number, if anything
    if (!special && !(LINUX_S_ISLNK(cur->i_mode) && ext2fs_is_fast_symlink(&*cur))) {
      if (errcode_t rc = ext2fs_punch(m.fsys, i, &*cur, nullptr, 0, ~0ULL))
        return m.fail("freeing the blocks of", nm, rc);
      auto again = m.read_inode(i, nm);
      if (!again)
        return std::move(again).err();
      cur = std::move(again);
      ext2fs_file_acl_block_set(m.fsys, &*cur, 0); // released above
    }
    cur->i_links_count = 0;
    cur->i_dtime = m.now();
    if (auto ok = m.write_inode(i, *cur, nm); !ok)
      return ok;
    ext2fs_inode_alloc_stats2(m.fsys, i, -1, is_dir ? 1 : 0);
    if (is_dir)
      m.forget_dir(i);
    return {};
  };
  return remove(remove, dir, n, *ino, 0);
}

std::uint64_t ext4_image::free_bytes() const {
  auto& m = state();
  if (!m.fsys)
    return 0;
  blk64_t free = ext2fs_free_blocks_count(m.fsys->super), reserved = ext2fs_r_blocks_count(m.fsys->super);
  return (free > reserved ? free - reserved : 0) * static_cast<std::uint64_t>(m.fsys->blocksize);
}

std::uint64_t ext4_image::free_inodes() const {
  auto& m = state();
  return m.fsys ? m.fsys->super->s_free_inodes_count : 0;
}

} // namespace banger::guestfs
