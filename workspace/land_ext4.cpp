#include "workspace/land_ext4.hpp"

#include <fmt/format.h>

#include <map>
#include <optional>

#include "common/text.hpp"
#include "workspace/git_layout.hpp"
#include "workspace/git_meta.hpp"
#include "workspace/rules.hpp"

namespace banger::workspace {

namespace {

using guestfs::ext4_image;
using ino_t32 = ext4_image::inode_number;

/// Rough cost of one entry beyond its bytes (inode table share, directory entry, extent block).
constexpr std::uint64_t per_entry_overhead = 4096;

/// What a landing of `name` in directory `parent` (inode `dir`) cut short may have left: a
/// staging tree goes; an old tree is the previous workspace when the cut came between the
/// swap's two renames (the target is missing then), so it goes back in place.
expected<void> tidy_in(ext4_image& img, ino_t32 dir, const std::string& parent, const std::string& name) {
  std::string staging = "." + name + ".banger-new", old = "." + name + ".banger-old";
  if (auto ok = img.remove_tree_in(dir, staging); !ok)
    return ok;
  std::string base = parent == "/" ? "" : parent;
  auto target = img.exists(base + "/" + name);
  auto aside = img.exists(base + "/" + old);
  if (!target)
    return target.err();
  if (!aside)
    return aside.err();
  if (*aside && !*target)
    return img.rename_in(dir, old, name);
  return img.remove_tree_in(dir, old);
}

class ext4_recv final : public receiver {
public:
  ext4_recv(ext4_image& img, std::string guest_path, std::time_t now)
    : img_(img), check_(std::move(guest_path)), now_(now) {}
  ~ext4_recv() override {
    if (begun_ && !done_)
      abort();
  }

  expected<void> begin(const stream_begin& b) override {
    if (auto ok = check_.begin(b); !ok)
      return ok;
    guest_ = b.guest_path;
    auto at = work_disk_path(guest_);
    auto slash = at.rfind('/');
    std::string parent = slash == 0 ? "/" : at.substr(0, slash);
    name_ = at.substr(slash + 1);
    staging_ = "." + name_ + ".banger-new";
    old_ = "." + name_ + ".banger-old";
    if (parent != "/")
      if (auto ok = img_.mkdir_p(parent, 0755, 0, 0); !ok)
        return ok;
    auto p = img_.inode_of(parent);
    if (!p)
      return p.err();
    auto pst = img_.stat(*p);
    if (!pst)
      return pst.err();
    if (pst->type != guestfs::entry_type::directory)
      return make_error(errc::conflict, fmt::format("{} is not a directory on the work disk (it is a link or a file "
                                                    "the guest made); choose another --guest-path",
                                                    quoted("/root" + parent)));
    parent_ = *p;
    if (auto ok = tidy_in(img_, parent_, parent, name_); !ok)
      return ok;
    std::uint64_t need = b.bytes + (b.files + 16) * per_entry_overhead, free = img_.free_bytes();
    if (need > free)
      return make_error(errc::bad_request,
                        fmt::format("the workspace needs about {} ({} in {} files) but the work disk has {} free; "
                                    "give the VM a bigger one (vm create --disk-size MiB) or ship less",
                                    human_bytes(need), human_bytes(b.bytes), b.files, human_bytes(free)));
    if (2 * b.files + 16 > img_.free_inodes())
      return make_error(errc::bad_request, fmt::format("the workspace has {} files but the work disk has {} free "
                                                       "inodes; give the VM a bigger one (vm create --disk-size MiB)",
                                                       b.files, img_.free_inodes()));
    auto s = img_.mkdir_in(parent_, staging_, 0755, 0, 0, now_);
    if (!s)
      return s.err();
    begun_ = true;
    dirs_[""] = *s;
    for (const char* d : git_skeleton_dirs)
      if (auto ok = dir_of(std::string(d) + "/x"); !ok)
        return ok.err();
    return {};
  }

  expected<void> entry(const stream_entry& e) override {
    if (done_)
      return make_error(errc::bad_request, "workspace stream: an entry outside begin() and finish()");
    if (auto ok = check_.entry(e); !ok)
      return ok;
    if (auto ok = end_file(); !ok)
      return ok;
    std::string rel = e.git ? ".git/" + e.path : e.path;
    auto dir = dir_of(rel);
    if (!dir)
      return dir.err();
    auto name = rel.substr(rel.rfind('/') == std::string::npos ? 0 : rel.rfind('/') + 1);
    std::int64_t mtime = e.git || e.mtime <= 0 || e.mtime >= now_ ? now_ - 1 : e.mtime;
    if (e.kind == entry_kind::symlink) {
      auto ino = img_.symlink_in(*dir, name, e.target, 0, 0, mtime);
      if (!ino)
        return ino.err();
      inodes_[e.path] = *ino;
      return {};
    }
    auto w = img_.create_in(*dir, name, e.git ? 0644 : e.mode, 0, 0, e.size);
    if (!w)
      return w.err();
    cur_.emplace(std::move(*w));
    cur_path_ = e.path;
    cur_git_ = e.git;
    cur_mtime_ = mtime;
    return {};
  }

  expected<void> data(std::string_view bytes) override {
    if (auto ok = check_.data(bytes); !ok)
      return ok;
    return cur_->write(bytes);
  }

  expected<landed> finish(const std::vector<index_record>& index) override {
    if (!begun_ || done_)
      return make_error(errc::bad_request, "workspace stream: finish() outside a stream");
    if (auto ok = check_.finish(); !ok)
      return ok.err();
    if (auto ok = end_file(); !ok)
      return ok.err();
    auto stats = index_stats(index, [&](const std::string& path) -> expected<std::optional<landed_file>> {
      auto it = inodes_.find(path);
      if (it == inodes_.end())
        return std::optional<landed_file>();
      auto st = img_.stat(it->second);
      if (!st)
        return st.err();
      index_stat x;
      x.ctime = static_cast<std::uint32_t>(st->ctime);
      x.mtime = static_cast<std::uint32_t>(st->mtime);
      x.ino = st->ino;
      x.size = static_cast<std::uint32_t>(st->size);
      return std::optional<landed_file>(landed_file{st->type == guestfs::entry_type::symlink, st->mode, x});
    });
    if (!stats)
      return stats.err();
    auto encoded = encode_index(index, *stats);
    if (!encoded)
      return encoded.err();
    auto git = dir_of(".git/index");
    if (!git)
      return git.err();
    auto w = img_.create_in(*git, "index", 0644, 0, 0, encoded->size());
    if (!w)
      return w.err();
    if (auto ok = w->write(*encoded); !ok)
      return ok.err();
    if (auto ok = w->finish(now_); !ok)
      return ok.err();
    // The swap: the old tree aside, the new one in, the old one gone.
    auto there = img_.exists(work_disk_path(guest_));
    if (!there)
      return there.err();
    if (*there)
      if (auto ok = img_.rename_in(parent_, name_, old_); !ok)
        return ok.err();
    if (auto ok = img_.rename_in(parent_, staging_, name_); !ok) {
      if (*there)
        (void)img_.rename_in(parent_, old_, name_);
      return ok.err();
    }
    done_ = true;
    (void)img_.remove_tree_in(parent_, old_); // removed at the next landing if this fails
    return check_.result();
  }

  void abort() override {
    if (!begun_ || done_)
      return;
    done_ = true;
    cur_.reset();
    (void)img_.remove_tree_in(parent_, staging_);
  }

private:
  /// Finishes the file being written, which must have all its bytes.
  expected<void> end_file() {
    if (!cur_)
      return {};
    auto ino = cur_->finish(cur_mtime_);
    cur_.reset();
    if (!ino)
      return ino.err();
    if (!cur_git_)
      inodes_[cur_path_] = *ino;
    return {};
  }

  /// The staging directory holding `rel`'s last component, made (0755, root) when missing.
  expected<ino_t32> dir_of(const std::string& rel) {
    auto slash = rel.rfind('/');
    if (slash == std::string::npos)
      return dirs_.at("");
    std::string dir = rel.substr(0, slash);
    if (auto it = dirs_.find(dir); it != dirs_.end())
      return it->second;
    auto parent = dir_of(dir);
    if (!parent)
      return parent;
    auto ps = dir.rfind('/');
    auto made = img_.mkdir_in(*parent, ps == std::string::npos ? dir : dir.substr(ps + 1), 0755, 0, 0, now_ - 1);
    if (!made)
      return made;
    dirs_[dir] = *made;
    return made;
  }

  ext4_image& img_;
  stream_checker check_;
  std::time_t now_;
  bool begun_ = false, done_ = false;
  std::string guest_, name_, staging_, old_;
  ino_t32 parent_ = 0;
  std::map<std::string, ino_t32> dirs_;   ///< staging-relative directory -> inode ("" the staging root)
  std::map<std::string, ino_t32> inodes_; ///< shipped path -> inode, for the index
  std::optional<ext4_image::file_writer> cur_;
  std::string cur_path_;
  bool cur_git_ = false;
  std::int64_t cur_mtime_ = 0;
};

} // namespace

expected<void> tidy_landing(ext4_image& image, std::string_view guest_path) {
  if (auto ok = validate_guest_path(guest_path); !ok)
    return ok;
  auto at = work_disk_path(guest_path);
  auto slash = at.rfind('/');
  std::string parent = slash == 0 ? "/" : at.substr(0, slash);
  auto p = image.inode_of(parent);
  if (!p)
    return p.err().code == errc::not_found ? expected<void>{} : expected<void>(p.err()); // nothing landed there
  auto st = image.stat(*p);
  if (!st)
    return st.err();
  if (st->type != guestfs::entry_type::directory)
    return {};
  return tidy_in(image, *p, parent, at.substr(slash + 1));
}

std::string work_disk_path(std::string_view guest) {
  return guest.rfind("/root/", 0) == 0 ? std::string(guest.substr(5)) : std::string(guest);
}

std::unique_ptr<receiver> ext4_receiver(ext4_image& image, std::string guest_path, std::time_t now) {
  return std::make_unique<ext4_recv>(image, std::move(guest_path), now);
}

} // namespace banger::workspace
