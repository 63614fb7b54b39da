// ext4 images read and edited in-process with libext2fs: no mount, no sudo, no debugfs
// subprocess (DESIGN.md §7). An ext4_image owns one open filesystem; every method validates its
// guest path at the time of use (validate_guest_path) before touching the image, so a refused
// call leaves the image byte-for-byte unchanged. Guest paths are resolved inside the image only:
// symlinks in intermediate components are followed with the image's root as `/`, never the
// host's. libext2fs headers stay in ext4*.cpp and their private ext4_impl.hpp. Not thread-safe:
// one thread uses an image at a time.
#pragma once

#include <cstdint>
#include <ctime>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.hpp"

namespace banger::guestfs {

/// Longest guest path accepted (bytes), and longest single component (ext4's name limit).
inline constexpr std::size_t max_guest_path = 4095;
inline constexpr std::size_t max_guest_name = 255;

/// Accepts an absolute path of '/'-separated components ("/" alone is the root). Refuses, with
/// errc::bad_request: empty, relative, empty components ("//", trailing '/'), "." or ".."
/// components, NUL, control characters (< 0x20, 0x7f), a component over max_guest_name bytes or
/// a path over max_guest_path bytes. Bytes >= 0x80 (UTF-8) are accepted.
expected<void> validate_guest_path(std::string_view path);

/// Extended attributes ext4_image writes: a name in user.*, security.* (file capabilities) or
/// trusted.*, at most max_xattr_name bytes; a value of at most max_xattr_value bytes. system.*
/// is refused (ACLs and other data the kernel interprets). errc::bad_request otherwise.
inline constexpr std::size_t max_xattr_name = 255;
inline constexpr std::size_t max_xattr_value = 65536;
expected<void> validate_xattr(std::string_view name, std::size_t value_size);

enum class entry_type : std::uint8_t { regular, directory, symlink, other };

/// One directory entry as list() reports it. `mode` holds the permission bits only (07777).
struct ext4_entry {
  std::string name;
  entry_type type = entry_type::other;
  std::uint32_t mode = 0;
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::uint64_t size = 0; ///< i_size: bytes for files, target length for symlinks
};

/// An open ext4 filesystem image. Move-only; the destructor closes it (writing back metadata when
/// writable, errors ignored): call close() to see them. A writable image holds an exclusive flock
/// on the image file and a read-only one a shared flock, so two banger writers never share an
/// image (other tools such as debugfs do not take the lock).
class ext4_image {
public:
  /// Opens `image` (a raw ext4 image file). A writable open refuses a filesystem whose journal
  /// needs recovery, and fsyncs the file first (libext2fs does), so opening a freshly copied
  /// image pays for writing the copy back. `fixed_time`, when set, is the timestamp given to every inode this object
  /// creates or changes (reproducible images); otherwise the current time.
  static expected<ext4_image> open(const std::filesystem::path& image, bool writable,
                                   std::optional<std::time_t> fixed_time = std::nullopt);

  ext4_image(ext4_image&&) noexcept;
  ext4_image& operator=(ext4_image&&) noexcept;
  ext4_image(const ext4_image&) = delete;
  ext4_image& operator=(const ext4_image&) = delete;
  ~ext4_image();

  const std::filesystem::path& path() const;
  bool writable() const;

  /// Creates `path` and any missing parents as directories with mode/uid/gid. Directories that
  /// already exist are left as they are (idempotent); a non-directory in the way is
  /// errc::conflict.
  expected<void> mkdir_p(std::string_view path, std::uint32_t mode, std::uint32_t uid, std::uint32_t gid);

  /// Creates the regular file `path`, or replaces the content of an existing one in place (all
  /// its hard links see the new content), then sets mode/uid/gid. The parent must exist
  /// (errc::not_found naming it); an existing directory, symlink or special file at `path` is
  /// errc::conflict. A failure part-way (e.g. the image is full) can leave a truncated file.
  expected<void> write_file(std::string_view path, std::string_view data, std::uint32_t mode, std::uint32_t uid,
                            std::uint32_t gid);

  /// Creates the symlink `path` -> `target` owned by uid/gid. `target` is stored as given (it is
  /// resolved by the guest, not here) but must be non-empty, shorter than a block and free of NUL
  /// and control characters. An existing entry at `path` is errc::already_exists.
  expected<void> symlink(std::string_view path, std::string_view target, std::uint32_t uid, std::uint32_t gid);

  /// The content of regular file `path` (a symlink at `path` is followed inside the image). A
  /// file larger than `max_bytes` is refused with errc::bad_request.
  expected<std::string> read_file(std::string_view path, std::uint64_t max_bytes = 64u << 20) const;

  /// Whether an entry exists at `path` (a symlink counts itself, dangling or not). A missing
  /// parent is `false`; an invalid path is an error, never `false`.
  expected<bool> exists(std::string_view path) const;

  /// Set permission bits (07777) / owner of the entry at `path`; a symlink itself is changed,
  /// not its target.
  expected<void> chmod(std::string_view path, std::uint32_t mode);
  expected<void> chown(std::string_view path, std::uint32_t uid, std::uint32_t gid);
  /// chown of `path` and everything below it, symlinks not followed. From "/", /lost+found is
  /// left alone (it belongs to the filesystem, not the content).
  expected<void> chown_tree(std::string_view path, std::uint32_t uid, std::uint32_t gid);
  /// Mode and owner of the root directory (mkfs gives it 0755 root:root or the -d source's).
  expected<void> set_root(std::uint32_t mode, std::uint32_t uid, std::uint32_t gid);

  /// Entries of directory `dir` (a symlink is followed), without "." and "..", sorted by name.
  expected<std::vector<ext4_entry>> list(std::string_view dir) const;

  // ---- by inode: writing and replacing whole trees (workspaces, image layers) ----
  // A tree of thousands of entries is written with one directory lookup per entry instead of a
  // path walk per entry. Names here are bytes: any but NUL and '/', not "." or "..", 1-255 bytes
  // (control characters included: a workspace's names are shipped byte for byte). Symlinks are
  // never followed by these calls.

  using inode_number = std::uint32_t;

  struct inode_info {
    inode_number ino = 0;
    entry_type type = entry_type::other;
    std::uint32_t mode = 0; ///< permission bits (07777)
    std::uint32_t uid = 0, gid = 0;
    std::uint64_t size = 0;
    std::int64_t mtime = 0, ctime = 0;            ///< seconds; this writer stores no nanoseconds
    std::uint32_t format = 0;                     ///< the S_IFMT bits (S_IFREG, S_IFCHR, S_IFIFO, ...)
    std::uint32_t rdev_major = 0, rdev_minor = 0; ///< a device node's number
  };

  /// What mknod_in makes. Inodes only: the guest opens them, the host never does.
  enum class node_kind { char_device, block_device, fifo };

  /// The inode of the entry at `path`, not following a symlink there; errc::not_found when
  /// there is none.
  expected<inode_number> inode_of(std::string_view path) const;
  expected<inode_info> stat(inode_number ino) const;

  /// A new directory `name` in directory `dir`; an existing entry of that name is
  /// errc::already_exists.
  expected<inode_number> mkdir_in(inode_number dir, std::string_view name, std::uint32_t mode, std::uint32_t uid,
                                  std::uint32_t gid, std::int64_t mtime);
  /// A new symlink `name` -> `target` in `dir` (target: 1 to blocksize-1 bytes, no NUL).
  expected<inode_number> symlink_in(inode_number dir, std::string_view name, std::string_view target, std::uint32_t uid,
                                    std::uint32_t gid, std::int64_t mtime);

  /// A regular file being written: write() appends, finish() sets its size and mtime and
  /// returns its inode. A failed write (the image is full, or more bytes than the size given to
  /// create_in) ends the writer; dropped or failed, the file stays with what was written
  /// before, or with blocks allocated for it (the caller removes the tree it was building).
  class file_writer {
  public:
    file_writer(file_writer&&) noexcept;
    file_writer& operator=(file_writer&&) noexcept;
    ~file_writer();
    expected<void> write(std::string_view data);
    expected<inode_number> finish(std::int64_t mtime);
    std::uint64_t written() const { return written_; }

  private:
    expected<void> write_direct(std::string_view data);
    expected<inode_number> finish_direct(std::int64_t mtime);
    friend class ext4_image;
    struct state;
    explicit file_writer(std::unique_ptr<state> s);
    std::unique_ptr<state> s_;
    std::uint64_t written_ = 0;
  };
  /// A new empty regular file `name` in `dir`, open for writing. With `size` (the bytes the
  /// writer will be given), its blocks are allocated at once, as few runs as the free space
  /// allows, and written straight to: a full image fails here rather than part-way, and a
  /// writer given more than `size` bytes fails; fewer are fine (the rest is freed at finish).
  expected<file_writer> create_in(inode_number dir, std::string_view name, std::uint32_t mode, std::uint32_t uid,
                                  std::uint32_t gid, std::optional<std::uint64_t> size = std::nullopt);

  /// A new device node or fifo `name` in `dir` (device numbers: major < 4096, minor < 2^20, as
  /// Linux encodes them; ignored for a fifo).
  expected<inode_number> mknod_in(inode_number dir, std::string_view name, node_kind kind, std::uint32_t mode,
                                  std::uint32_t uid, std::uint32_t gid, std::uint32_t major, std::uint32_t minor,
                                  std::int64_t mtime);
  /// Sets extended attribute `name` of `ino` to `value` (validate_xattr's rules), replacing one
  /// of the same name; errc::operation_failed when the inode's attributes do not fit (ext4
  /// keeps them in the inode and one block).
  expected<void> set_xattr(inode_number ino, std::string_view name, std::string_view value);
  /// Extended attribute `name` of `ino`; nothing when it has none of that name.
  expected<std::optional<std::string>> get_xattr(inode_number ino, std::string_view name) const;

  /// The entry `name` of directory `dir`, not followed; nothing when there is none.
  expected<std::optional<inode_info>> lookup_in(inode_number dir, std::string_view name) const;
  /// The content of regular file `ino`, or the target of symlink `ino`; anything else is
  /// errc::conflict, and a file over `max_bytes` errc::bad_request.
  expected<std::string> read_in(inode_number ino, std::uint64_t max_bytes = 64u << 20) const;
  /// The entries of directory `dir` (no "." or ".."), in directory order.
  expected<std::vector<std::pair<std::string, inode_number>>> entries_in(inode_number dir) const;
  /// A new name `name` in `dir` for the regular file `target` (a hard link): anything else as
  /// the target is errc::bad_request, an existing `name` errc::already_exists.
  expected<void> link_in(inode_number dir, std::string_view name, inode_number target);
  /// Sets permission bits (07777), owner and mtime of `ino` (a symlink's own).
  expected<void> set_attrs(inode_number ino, std::uint32_t mode, std::uint32_t uid, std::uint32_t gid,
                           std::int64_t mtime);

  /// Renames entry `from` of directory `dir` to `to` in the same directory; an existing `to` is
  /// errc::already_exists (never replaced).
  expected<void> rename_in(inode_number dir, std::string_view from, std::string_view to);
  /// Removes `name` from `dir` and, when it is a directory, everything below it; the blocks and
  /// inodes of what is no longer linked anywhere are freed. A missing `name` is success.
  expected<void> remove_tree_in(inode_number dir, std::string_view name);

  /// Bytes in free blocks (less the blocks reserved for root) and free inodes.
  std::uint64_t free_bytes() const;
  std::uint64_t free_inodes() const;

  /// Writes back metadata and releases the image. Every later call fails. Idempotent.
  expected<void> close();

private:
  struct impl;
  explicit ext4_image(std::unique_ptr<impl> p);
  impl& state() const; ///< asserts: using a moved-from image is a bug
  std::unique_ptr<impl> impl_;
};

struct owner {
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
};

/// Creates a new image file of `size_bytes` (a multiple of 4096) with `mkfs.ext4 -q -F -b 4096
/// [-d source_dir]`, so its content is a copy of `source_dir` when given. When `content_owner`
/// is set, the copied tree (root included, /lost+found excluded) is then chowned in-process.
/// Refuses to overwrite an existing file (errc::already_exists); removes a partial image on
/// failure.
expected<void> create_image(const std::filesystem::path& image, std::uint64_t size_bytes,
                            const std::optional<std::filesystem::path>& source_dir = std::nullopt,
                            const std::optional<owner>& content_owner = std::nullopt);

} // namespace banger::guestfs
