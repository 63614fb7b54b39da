// .deb listing and safe extraction with libarchive. See deb.hpp for the format and the
// refusal rules.
//
// How extraction stays inside the destination: the tree is built under a fresh temporary
// directory opened once as `root`; every member is created relative to a directory fd reached
// from `root` one component at a time with O_NOFOLLOW|O_DIRECTORY, so no symlink is ever
// followed while writing, and leaves are created with O_EXCL|O_NOFOLLOW (a member cannot
// overwrite another or write through a link). A symlink is kept only if its target is relative
// with all `..` leading and no deeper than the link's own directory, so resolving it later
// (through any chain of such links) cannot leave the tree either.
#include "guestfs/deb.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <cerrno>
#include <fcntl.h>
#include <fmt/format.h>
#include <memory>
#include <sys/stat.h>
#include <unistd.h>

#include "common/process.hpp"
#include "common/text.hpp"

namespace banger::guestfs {

namespace {

namespace fs = std::filesystem;

struct archive_closer {
  void operator()(archive* a) const { archive_read_free(a); }
};
using archive_ptr = std::unique_ptr<archive, archive_closer>;

/// Both levels of an open package, positioned inside the data archive. The inner archive reads
/// the outer one's current member through read_outer().
struct deb_reader {
  std::string name;
  archive_ptr outer;
  archive_ptr inner;
  std::string buf = std::string(64 * 1024, '\0'); ///< read_outer's; libarchive may hold on to it
};

la_ssize_t read_outer(archive*, void* data, const void** out) {
  auto* r = static_cast<deb_reader*>(data);
  *out = r->buf.data();
  return archive_read_data(r->outer.get(), r->buf.data(), r->buf.size());
}

std::string archive_text(archive* a) {
  const char* s = archive_error_string(a);
  return s ? s : "unknown libarchive error";
}

expected<std::unique_ptr<deb_reader>> open_deb(const fs::path& deb) {
  auto r = std::make_unique<deb_reader>();
  r->name = deb.string();
  r->outer.reset(archive_read_new());
  archive_read_support_format_ar(r->outer.get());
  if (archive_read_open_filename(r->outer.get(), deb.c_str(), 64 * 1024) != ARCHIVE_OK)
    return make_error(errc::bad_request, fmt::format("open {}: {}", r->name, archive_text(r->outer.get())));
  archive_entry* e = nullptr;
  for (;;) {
    int rc = archive_read_next_header(r->outer.get(), &e);
    if (rc == ARCHIVE_EOF)
      return make_error(errc::bad_request,
                        fmt::format("{} has no data.tar member: it is not a Debian binary package", r->name));
    if (rc != ARCHIVE_OK)
      return make_error(errc::bad_request, fmt::format("read {}: {}", r->name, archive_text(r->outer.get())));
    std::string_view member = archive_entry_pathname(e) ? archive_entry_pathname(e) : "";
    if (member.starts_with("data.tar"))
      break;
  }
  r->inner.reset(archive_read_new());
  // The codecs dpkg-deb writes, all in-process: filter_all would also run external programs.
  archive_read_support_filter_xz(r->inner.get());
  archive_read_support_filter_zstd(r->inner.get());
  archive_read_support_filter_gzip(r->inner.get());
  archive_read_support_filter_bzip2(r->inner.get());
  archive_read_support_filter_lzma(r->inner.get());
  archive_read_support_format_tar(r->inner.get());
  if (archive_read_open(r->inner.get(), r.get(), nullptr, read_outer, nullptr) != ARCHIVE_OK)
    return make_error(errc::bad_request,
                      fmt::format("open the data archive of {}: {}", r->name, archive_text(r->inner.get())));
  return r;
}

char type_of(archive_entry* e) {
  if (archive_entry_hardlink(e))
    return 'h';
  switch (archive_entry_filetype(e)) {
  case AE_IFREG: return 'f';
  case AE_IFDIR: return 'd';
  case AE_IFLNK: return 'l';
  default: return '?';
  }
}

std::vector<std::string_view> split(std::string_view p) {
  std::vector<std::string_view> parts;
  while (!p.empty()) {
    auto slash = p.find('/');
    parts.push_back(p.substr(0, slash));
    p = slash == std::string_view::npos ? std::string_view() : p.substr(slash + 1);
  }
  return parts;
}

/// A symlink target is safe when it is relative, its `..` components all lead, and there are
/// no more of them than directories above the link.
bool symlink_stays_inside(std::string_view link_name, std::string_view target) {
  if (target.empty() || target.front() == '/')
    return false;
  std::size_t depth = split(link_name).size() - 1;
  std::size_t ups = 0;
  bool descended = false;
  for (auto part : split(target)) {
    if (part.empty() || part == ".")
      continue;
    if (part == "..") {
      if (descended || ++ups > depth)
        return false;
    } else {
      descended = true;
    }
  }
  return true;
}

/// Opens (creating as needed) the directory holding `name`'s last component, never following
/// a symlink. Returns the fd; `leaf` receives the last component.
expected<unique_fd> open_parent(int root, const std::string& name, std::string& leaf) {
  auto parts = split(name);
  leaf = std::string(parts.back());
  unique_fd dir(::fcntl(root, F_DUPFD_CLOEXEC, 0));
  std::string walked;
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    std::string comp(parts[i]);
    walked += (walked.empty() ? "" : "/") + comp;
    if (::mkdirat(dir.get(), comp.c_str(), 0755) != 0 && errno != EEXIST)
      return make_error(errc::operation_failed, fmt::format("mkdir {}: {}", walked, errno_text(errno)));
    unique_fd next(::openat(dir.get(), comp.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!next)
      return make_error(errc::bad_request, fmt::format("member {} lies under {}, which is not a directory: {}", name,
                                                       walked, errno_text(errno)));
    dir = std::move(next);
  }
  return dir;
}

/// Removes the staging directory unless committed.
struct staging {
  fs::path path;
  bool committed = false;
  ~staging() {
    if (!path.empty() && !committed) {
      std::error_code ec;
      fs::remove_all(path, ec);
    }
  }
};

} // namespace

expected<std::string> normalise_member_name(std::string_view name) {
  if (name.starts_with('/'))
    return make_error(errc::bad_request, fmt::format("member {} has an absolute path", quoted(name)));
  std::string out;
  for (auto part : split(name)) {
    if (part.empty() || part == ".")
      continue;
    if (part == "..")
      return make_error(errc::bad_request, fmt::format("member {} contains \"..\"", quoted(name)));
    if (!out.empty())
      out += '/';
    out += part;
  }
  return out;
}

bool is_kernel_member(std::string_view p) {
  if (p.starts_with("usr/"))
    p.remove_prefix(4);
  return p.starts_with("boot/vmlinuz-") || p.starts_with("boot/config-") || p == "lib/modules" ||
         p.starts_with("lib/modules/");
}

expected<std::vector<deb_member>> list_deb(const fs::path& deb) {
  auto r = open_deb(deb);
  if (!r)
    return std::move(r).err();
  std::vector<deb_member> out;
  archive_entry* e = nullptr;
  for (;;) {
    int rc = archive_read_next_header((*r)->inner.get(), &e);
    if (rc == ARCHIVE_EOF)
      return out;
    if (rc != ARCHIVE_OK)
      return make_error(errc::bad_request, fmt::format("read {}: {}", deb.string(), archive_text((*r)->inner.get())));
    auto name = normalise_member_name(archive_entry_pathname(e) ? archive_entry_pathname(e) : "");
    if (!name)
      return make_error(errc::bad_request, fmt::format("{}: {}", deb.string(), name.err().message));
    deb_member m{*name, static_cast<std::uint64_t>(archive_entry_size(e)), type_of(e), {}};
    if (m.type == 'l')
      m.link_target = archive_entry_symlink(e) ? archive_entry_symlink(e) : "";
    if (m.type == 'h')
      m.link_target = archive_entry_hardlink(e);
    out.push_back(std::move(m));
  }
}

expected<extract_result> extract_deb(const fs::path& deb, const fs::path& dest, const extract_options& opts) {
  std::error_code ec;
  if (fs::symlink_status(dest, ec).type() != fs::file_type::not_found)
    return make_error(errc::already_exists,
                      fmt::format("extract {}: destination {} already exists", deb.string(), dest.string()));
  auto r = open_deb(deb);
  if (!r)
    return std::move(r).err();

  fs::path parent = dest.parent_path().empty() ? fs::path(".") : dest.parent_path();
  std::string tmpl = (parent / (dest.filename().string() + ".partial-XXXXXX")).string();
  if (!::mkdtemp(tmpl.data()))
    return make_error(errc::operation_failed, fmt::format("mkdtemp {}: {}", tmpl, errno_text(errno)));
  staging stage{tmpl};
  unique_fd root(::open(tmpl.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root)
    return make_error(errc::operation_failed, fmt::format("open {}: {}", tmpl, errno_text(errno)));
  ::fchmod(root.get(), 0755);

  auto refuse = [&](const std::string& member, std::string why) {
    return make_error(errc::bad_request, fmt::format("refusing {}: member {} {}", deb.string(), member, why));
  };
  extract_result res;
  std::string data(64 * 1024, '\0');
  archive* in = (*r)->inner.get();
  archive_entry* e = nullptr;
  for (std::uint64_t count = 0;; ++count) {
    int rc = archive_read_next_header(in, &e);
    if (rc == ARCHIVE_EOF)
      break;
    if (rc != ARCHIVE_OK)
      return make_error(errc::bad_request, fmt::format("read {}: {}", deb.string(), archive_text(in)));
    if (count >= opts.max_entries)
      return make_error(errc::bad_request,
                        fmt::format("refusing {}: more than {} members", deb.string(), opts.max_entries));
    auto name = normalise_member_name(archive_entry_pathname(e) ? archive_entry_pathname(e) : "");
    if (!name)
      return make_error(errc::bad_request, fmt::format("refusing {}: {}", deb.string(), name.err().message));
    if (name->empty() || (opts.select && !opts.select(*name)))
      continue;

    char type = type_of(e);
    if (type == '?')
      return refuse(*name, "is a device node, fifo or socket");
    if (type == 'h')
      return refuse(*name, "is a hard link");
    std::string leaf;
    auto dir = open_parent(root.get(), *name, leaf);
    if (!dir)
      return std::move(dir).err();

    if (type == 'd') {
      if (::mkdirat(dir->get(), leaf.c_str(), 0755) != 0) {
        struct stat st {};
        if (errno != EEXIST || ::fstatat(dir->get(), leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISDIR(st.st_mode))
          return refuse(*name, "collides with an earlier member");
      }
      continue;
    }
    if (type == 'l') {
      std::string target = archive_entry_symlink(e) ? archive_entry_symlink(e) : "";
      if (!symlink_stays_inside(*name, target))
        return refuse(*name, fmt::format("is a symlink to {}, which leaves the package tree", quoted(target)));
      if (::symlinkat(target.c_str(), dir->get(), leaf.c_str()) != 0)
        return refuse(*name, fmt::format("cannot be created: {}", errno_text(errno)));
      continue;
    }

    // A regular file: check the announced size against the cap, then count what really arrives.
    auto announced = static_cast<std::uint64_t>(std::max<la_int64_t>(0, archive_entry_size(e)));
    if (announced > opts.max_total_bytes - res.total_bytes)
      return refuse(*name, fmt::format("({} bytes) would take the extracted total past the {} byte cap", announced,
                                       opts.max_total_bytes));
    mode_t mode = (archive_entry_perm(e) & 0111) ? 0755 : 0644;
    unique_fd out(::openat(dir->get(), leaf.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
    if (!out)
      return refuse(*name, fmt::format("cannot be created: {}", errno_text(errno)));
    for (;;) {
      la_ssize_t n = archive_read_data(in, data.data(), data.size());
      if (n < 0)
        return make_error(errc::bad_request, fmt::format("read {} from {}: {}", *name, deb.string(), archive_text(in)));
      if (n == 0)
        break;
      if (static_cast<std::uint64_t>(n) > opts.max_total_bytes - res.total_bytes)
        return refuse(*name, fmt::format("takes the extracted total past the {} byte cap", opts.max_total_bytes));
      res.total_bytes += static_cast<std::uint64_t>(n);
      for (la_ssize_t done = 0; done < n;) {
        ssize_t w = ::write(out.get(), data.data() + done, static_cast<std::size_t>(n - done));
        if (w < 0)
          return make_error(errc::operation_failed,
                            fmt::format("write {} under {}: {}", *name, dest.string(), errno_text(errno)));
        done += w;
      }
    }
    res.files.push_back(*name);
  }

  if (::rename(tmpl.c_str(), dest.c_str()) != 0)
    return make_error(errc::operation_failed,
                      fmt::format("rename {} to {}: {}", tmpl, dest.string(), errno_text(errno)));
  stage.committed = true;
  return res;
}

} // namespace banger::guestfs
