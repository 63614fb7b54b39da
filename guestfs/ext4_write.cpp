// ext4_image's writes (ext4.hpp): mkdir_p, write_file, symlink, chmod, chown, chown_tree and
// set_root. Each validates its guest path and that the image is writable before touching it, so a
// refused call changes nothing; inodes and entries are made through ext4_image::impl
// (ext4_impl.hpp). Not thread-safe: one thread uses an image at a time.
#include "guestfs/ext4_impl.hpp"

#include <set>

namespace banger::guestfs {

namespace {

using detail::check_mode;
using detail::has_control;
using detail::join;
using detail::printable;
using detail::set_owner;
using detail::split;
using detail::type_name;

} // namespace

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
  auto made = m.make_symlink(at->dir, at->name, std::string(target), uid, gid, m.now(), path);
  if (!made)
    return std::move(made).err();
  return {};
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

} // namespace banger::guestfs
