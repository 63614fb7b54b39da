// ext4_image's reads (ext4.hpp): read_file, exists and list, on images opened either way.
// Symlinks are followed inside the image (ext4_image::impl, ext4_impl.hpp), never on the host.
// Not thread-safe: one thread uses an image at a time.
#include "guestfs/ext4_impl.hpp"

#include <algorithm>

namespace banger::guestfs {

namespace {

using detail::type_name;
using detail::type_of;

} // namespace

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

expected<std::string> ext4_image::read_in(inode_number ino, std::uint64_t max_bytes) const {
  auto& m = state();
  auto guest = fmt::format("inode {}", ino);
  auto in = m.read_inode(ino, guest);
  if (!in)
    return std::move(in).err();
  if (LINUX_S_ISLNK(in->i_mode)) {
    if (ext2fs_is_fast_symlink(&*in)) // the target is stored in the inode itself
      return std::string(reinterpret_cast<const char*>(in->i_block),
                         std::min<std::size_t>(EXT2_I_SIZE(&*in), sizeof(in->i_block)));
    return m.read_content(ino, 4096, guest);
  }
  if (!LINUX_S_ISREG(in->i_mode))
    return m.refuse(errc::conflict, guest, fmt::format("is {}, not a regular file or symlink", type_name(in->i_mode)));
  return m.read_content(ino, max_bytes, guest);
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

} // namespace banger::guestfs
