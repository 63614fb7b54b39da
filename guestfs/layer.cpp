// See layer.hpp.
#include "guestfs/layer.hpp"

#include <algorithm>
#include <archive.h>
#include <archive_entry.h>
#include <fmt/format.h>

#include <map>
#include <optional>
#include <set>
#include <string_view>
#include <vector>

#include "common/text.hpp"

namespace banger::guestfs {

namespace {

using ino_t32 = ext4_image::inode_number;
constexpr ino_t32 root_ino = 2; // ext4's root directory
constexpr std::string_view wh_prefix = ".wh.";
constexpr std::string_view opaque_marker = ".wh..wh..opq";

class applier {
public:
  applier(ext4_image& img, std::string what, const layer_limits& lim) : img_(img), what_(std::move(what)), lim_(lim) {}

  expected<layer_stats> run(archive* in) {
    std::vector<char> buf(1 << 20);
    for (;;) {
      archive_entry* e = nullptr;
      int rc = archive_read_next_header(in, &e);
      if (rc == ARCHIVE_EOF)
        return st_;
      if (rc < ARCHIVE_WARN)
        return make_error(errc::bad_request, fmt::format("{}: reading the layer: {}", what_, text_of(in)));
      if (++st_.entries > lim_.max_entries)
        return make_error(errc::bad_request, fmt::format("{}: more than {} entries (the cap on a layer's entries, "
                                                         "max_layer_entries in config.toml's [images])",
                                                         what_, lim_.max_entries));
      const char* raw = archive_entry_pathname(e);
      if (auto ok = one(in, e, raw ? std::string(raw) : std::string(), buf); !ok)
        return ok.err();
    }
  }

private:
  static std::string text_of(archive* a) {
    const char* s = archive_error_string(a);
    return s ? s : "unknown libarchive error";
  }

  error refuse(const std::string& name, const std::string& why) const {
    return make_error(errc::bad_request, fmt::format("{}: entry {}: {}", what_, quoted(name), why));
  }

  /// `raw` as components: "./" and trailing '/' dropped; anything else odd refused. Empty for
  /// the root itself.
  expected<std::vector<std::string>> split(const std::string& raw) const {
    std::string_view s = raw;
    if (s.empty())
      return refuse(raw, "an empty name");
    if (s.front() == '/')
      return refuse(raw, "an absolute name (a layer's names are relative to its root)");
    if (s.size() > max_guest_path)
      return refuse(raw, fmt::format("a path over {} bytes", max_guest_path));
    while (s.size() >= 2 && s.substr(0, 2) == "./")
      s.remove_prefix(2);
    if (s == ".")
      s = {};
    while (!s.empty() && s.back() == '/')
      s.remove_suffix(1);
    std::vector<std::string> out;
    while (!s.empty()) {
      auto slash = s.find('/');
      auto c = s.substr(0, slash);
      if (c.empty() || c == "." || c == "..")
        return refuse(raw, "an empty, \".\" or \"..\" component");
      if (c.size() > max_guest_name)
        return refuse(raw, fmt::format("a component over {} bytes", max_guest_name));
      out.emplace_back(c);
      if (slash == std::string_view::npos)
        break;
      s.remove_prefix(slash + 1);
    }
    if (out.size() > lim_.max_depth)
      return refuse(raw, fmt::format("deeper than {} components", lim_.max_depth));
    return out;
  }

  static std::string join(const std::vector<std::string>& comps, std::size_t n) {
    std::string p;
    for (std::size_t i = 0; i < n; ++i)
      p += (i ? "/" : "") + comps[i];
    return p;
  }

  enum class missing { make, refuse, nothing };

  /// The directory reached through the first `n` components, none of them a symlink. A missing
  /// one is made (0755 root), refused, or the answer is 0 (nothing there), as `if_missing` says.
  expected<ino_t32> parent(const std::vector<std::string>& comps, std::size_t n, const std::string& raw,
                           missing if_missing) {
    ino_t32 cur = root_ino;
    std::string path;
    for (std::size_t i = 0; i < n; ++i) {
      path += (i ? "/" : "") + comps[i];
      if (auto hit = dirs_.find(path); hit != dirs_.end()) {
        cur = hit->second;
        continue;
      }
      auto child = img_.lookup_in(cur, comps[i]);
      if (!child)
        return child.err();
      if (!*child) {
        if (if_missing == missing::nothing)
          return ino_t32{0};
        if (if_missing == missing::refuse)
          return refuse(raw, fmt::format("{} does not exist", quoted(path)));
        auto made = img_.mkdir_in(cur, comps[i], 0755, 0, 0, 0);
        if (!made)
          return made.err();
        made_.insert(path);
        cur = *made;
      } else if ((*child)->type == entry_type::symlink) {
        return refuse(raw, fmt::format("{} is a symlink: nothing in a layer goes through one", quoted(path)));
      } else if ((*child)->type != entry_type::directory) {
        return refuse(raw, fmt::format("{} is not a directory", quoted(path)));
      } else {
        cur = (*child)->ino;
      }
      dirs_[path] = cur;
    }
    return cur;
  }

  /// Forgets resolved directories at and below `path` (they are about to go).
  void forget(const std::string& path) {
    auto it = dirs_.lower_bound(path);
    while (it != dirs_.end() && (it->first == path || it->first.rfind(path + "/", 0) == 0))
      it = dirs_.erase(it);
  }

  bool made_below(const std::string& path) const {
    auto it = made_.lower_bound(path + "/");
    return it != made_.end() && it->rfind(path + "/", 0) == 0;
  }

  /// Removes what lower layers left below directory `dir` (at `path`): this layer's entries
  /// stay, and so do the directories that hold some of them.
  expected<void> prune(ino_t32 dir, const std::string& path) {
    auto list = img_.entries_in(dir);
    if (!list)
      return list.err();
    for (const auto& [name, child] : *list) {
      if (path.empty() && name == "lost+found")
        continue;
      auto cp = path.empty() ? name : path + "/" + name;
      bool ours = made_.count(cp) != 0;
      if (ours || made_below(cp)) {
        auto st = img_.stat(child);
        if (!st)
          return st.err();
        if (st->type == entry_type::directory)
          if (auto ok = prune(child, cp); !ok)
            return ok;
        continue;
      }
      forget(cp);
      if (auto ok = img_.remove_tree_in(dir, name); !ok)
        return ok;
    }
    return {};
  }

  expected<void> whiteout(const std::vector<std::string>& comps, const std::string& raw, archive_entry* e) {
    ++st_.whiteouts;
    if (archive_entry_filetype(e) != AE_IFREG || archive_entry_size(e) != 0 || archive_entry_hardlink(e))
      return refuse(raw, "a whiteout must be an empty regular file");
    const std::string& base = comps.back();
    auto dir = parent(comps, comps.size() - 1, raw, missing::nothing);
    if (!dir)
      return dir.err();
    if (*dir == 0)
      return {}; // nothing below a directory that is not there
    auto dir_path = join(comps, comps.size() - 1);
    if (base == opaque_marker)
      return prune(*dir, dir_path);
    auto name = base.substr(wh_prefix.size());
    if (name.empty() || name == "." || name == ".." || name.rfind(wh_prefix, 0) == 0)
      return refuse(raw, "a malformed whiteout name");
    auto target = dir_path.empty() ? name : dir_path + "/" + name;
    if (made_.count(target))
      return {}; // this layer's own entry: whiteouts hide lower layers only
    auto there = img_.lookup_in(*dir, name);
    if (!there)
      return there.err();
    if (!*there)
      return {};
    if (made_below(target)) { // this layer added below a lower directory it also hides
      if ((*there)->type == entry_type::directory)
        return prune((*there)->ino, target);
      return {};
    }
    forget(target);
    return img_.remove_tree_in(*dir, name);
  }

  expected<void> one(archive* in, archive_entry* e, const std::string& raw, std::vector<char>& buf) {
    auto comps = split(raw);
    if (!comps)
      return comps.err();
    if (comps->empty())
      return {}; // the root itself: its attributes stay the image's
    if (comps->back().rfind(wh_prefix, 0) == 0)
      return whiteout(*comps, raw, e);
    auto type = archive_entry_filetype(e);
    const char* hardlink = archive_entry_hardlink(e);
    bool node = type == AE_IFCHR || type == AE_IFBLK || type == AE_IFIFO;
    if (!hardlink && type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK && !node)
      return refuse(raw, "a socket or an entry of unknown type (tar cannot carry sockets)");
    auto xattrs = xattrs_of(e, raw);
    if (!xattrs)
      return xattrs.err();
    auto uid = archive_entry_uid(e), gid = archive_entry_gid(e);
    if (uid < 0 || gid < 0 || uid > 0xfffffffeLL || gid > 0xfffffffeLL)
      return refuse(raw, fmt::format("uid {} / gid {} is outside 0..4294967294", uid, gid));
    auto mode = static_cast<std::uint32_t>(archive_entry_perm(e)) & 07777;
    std::int64_t mtime = archive_entry_mtime(e);
    auto dir = parent(*comps, comps->size() - 1, raw, missing::make);
    if (!dir)
      return dir.err();
    const std::string& base = comps->back();
    auto path = join(*comps, comps->size());
    auto there = img_.lookup_in(*dir, base);
    if (!there)
      return there.err();
    auto u = static_cast<std::uint32_t>(uid), g = static_cast<std::uint32_t>(gid);

    if (hardlink) {
      auto to = split(hardlink);
      if (!to)
        return refuse(raw, fmt::format("hard link target {}: {}", quoted(hardlink), to.err().message));
      if (to->empty())
        return refuse(raw, "a hard link to the root");
      auto tdir = parent(*to, to->size() - 1, raw, missing::refuse);
      if (!tdir)
        return tdir.err();
      auto target = img_.lookup_in(*tdir, to->back());
      if (!target)
        return target.err();
      if (!*target)
        return refuse(raw, fmt::format("hard link to {}, which is not in the image", quoted(hardlink)));
      if ((*target)->type != entry_type::regular)
        return refuse(raw, fmt::format("hard link to {}, which is not a regular file", quoted(hardlink)));
      if (*there && (*there)->ino == (*target)->ino)
        return {}; // linked already
      if (*there) {
        forget(path);
        if (auto ok = img_.remove_tree_in(*dir, base); !ok)
          return ok;
      }
      made_.insert(path);
      return img_.link_in(*dir, base, (*target)->ino);
    }
    if (type == AE_IFDIR) {
      made_.insert(path);
      if (*there && (*there)->type == entry_type::directory) { // its contents stay
        if (auto ok = img_.set_attrs((*there)->ino, mode, u, g, mtime); !ok)
          return ok;
        return set_xattrs((*there)->ino, *xattrs, raw);
      }
      if (*there) {
        forget(path);
        if (auto ok = img_.remove_tree_in(*dir, base); !ok)
          return ok;
      }
      auto made = img_.mkdir_in(*dir, base, mode, u, g, mtime);
      if (!made)
        return made.err();
      dirs_[path] = *made;
      return set_xattrs(*made, *xattrs, raw);
    }
    if (*there) { // a file or symlink replaces whatever was there, never writing through it
      forget(path);
      if (auto ok = img_.remove_tree_in(*dir, base); !ok)
        return ok;
    }
    made_.insert(path);
    if (type == AE_IFLNK) {
      const char* target = archive_entry_symlink(e);
      if (!target || !*target)
        return refuse(raw, "a symlink without a target");
      auto made = img_.symlink_in(*dir, base, target, u, g, mtime);
      if (!made)
        return refuse(raw, made.err().message);
      return set_xattrs(*made, *xattrs, raw);
    }
    if (node) {
      auto kind = type == AE_IFCHR   ? ext4_image::node_kind::char_device
                  : type == AE_IFBLK ? ext4_image::node_kind::block_device
                                     : ext4_image::node_kind::fifo;
      auto made = img_.mknod_in(*dir, base, kind, mode, u, g, static_cast<std::uint32_t>(archive_entry_rdevmajor(e)),
                                static_cast<std::uint32_t>(archive_entry_rdevminor(e)), mtime);
      if (!made)
        return refuse(raw, made.err().message);
      ++st_.nodes;
      return set_xattrs(*made, *xattrs, raw);
    }
    auto size = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;
    if (size < 0)
      return refuse(raw, "a negative size");
    auto bytes = static_cast<std::uint64_t>(size);
    if (bytes > lim_.max_bytes || st_.bytes + bytes > lim_.max_bytes)
      return refuse(raw, fmt::format("the layer's files would pass {} bytes (the cap on a layer's content, "
                                     "max_layer_bytes in config.toml's [images])",
                                     lim_.max_bytes));
    auto w = img_.create_in(*dir, base, mode, u, g, bytes);
    if (!w)
      return w.err();
    std::uint64_t got = 0;
    for (;;) {
      la_ssize_t n = archive_read_data(in, buf.data(), buf.size());
      if (n < 0)
        return make_error(errc::bad_request, fmt::format("{}: reading {}: {}", what_, quoted(raw), text_of(in)));
      if (n == 0)
        break;
      got += static_cast<std::uint64_t>(n);
      if (auto ok = w->write(std::string_view(buf.data(), static_cast<std::size_t>(n))); !ok)
        return ok.err();
    }
    if (got != bytes)
      return refuse(raw, fmt::format("{} bytes of content where its header says {}", got, bytes));
    auto ino = w->finish(mtime);
    if (!ino)
      return ino.err();
    ++st_.files;
    st_.bytes += bytes;
    return set_xattrs(*ino, *xattrs, raw);
  }

  using xattr_list = std::vector<std::pair<std::string, std::string>>;

  /// The entry's extended attributes, checked: validate_xattr's rules, at most max_xattrs.
  expected<xattr_list> xattrs_of(archive_entry* e, const std::string& raw) const {
    xattr_list out;
    if (archive_entry_xattr_reset(e) == 0)
      return out;
    const char* name = nullptr;
    const void* value = nullptr;
    size_t size = 0;
    while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
      std::string n = name ? name : "";
      // A pax header may carry one attribute twice (SCHILY.xattr and LIBARCHIVE.xattr): the
      // later one is the entry's.
      auto same = std::find_if(out.begin(), out.end(), [&](const auto& x) { return x.first == n; });
      if (same != out.end())
        out.erase(same);
      else if (out.size() == max_xattrs)
        return refuse(raw, fmt::format("more than {} extended attributes", max_xattrs));
      if (auto ok = validate_xattr(n, size); !ok) // before any write, so a refused entry makes nothing
        return refuse(raw, ok.err().message);
      out.emplace_back(std::move(n), std::string(static_cast<const char*>(value), size));
    }
    return out;
  }

  expected<void> set_xattrs(ino_t32 ino, const xattr_list& xs, const std::string& raw) {
    for (const auto& [n, v] : xs)
      if (auto ok = img_.set_xattr(ino, n, v); !ok)
        return refuse(raw, ok.err().message);
    st_.xattrs += xs.size();
    return {};
  }

  ext4_image& img_;
  std::string what_;
  layer_limits lim_;
  layer_stats st_;
  std::set<std::string> made_;          ///< paths this layer wrote (or made as parents)
  std::map<std::string, ino_t32> dirs_; ///< directories resolved so far, by path
};

} // namespace

expected<layer_stats> apply_layer(ext4_image& img, archive* in, const std::string& what, const layer_limits& limits) {
  return applier(img, what, limits).run(in);
}

} // namespace banger::guestfs
