// See disks.hpp.
#include "actors/vm/disks.hpp"

#include <cerrno>
#include <fcntl.h>
#include <functional>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/core.h>

#include "common/process.hpp"
#include "common/sha256.hpp"
#include "common/subprocess.hpp"
#include "guestfs/ext4.hpp"

namespace banger::actors {

namespace fs = std::filesystem;

namespace {

expected<void> sys_fail(std::string_view call, const fs::path& p, int err) {
  return make_error(errc::operation_failed, fmt::format("{} {}: {}", call, p.string(), errno_text(err)));
}

expected<void> run_tool(const std::vector<std::string>& argv, std::string_view what) {
  process_options o;
  o.timeout = std::chrono::minutes(5);
  auto r = run_process(argv, o);
  if (r.exit_code == 0)
    return {};
  return make_error(errc::operation_failed, fmt::format("{}: `{}` failed ({}): {}", what, describe_command(argv),
                                                        r.timed_out ? "timed out" : fmt::format("exit {}", r.exit_code),
                                                        r.err.empty() ? r.out : r.err));
}

/// Writes [off, end) of `in` to the same offsets of `out`.
expected<void> copy_range(int in, int out, off_t off, off_t end, const fs::path& from, const fs::path& to) {
  bool use_cfr = true;
  std::vector<char> buf;
  while (off < end) {
    auto want = static_cast<std::size_t>(std::min<off_t>(end - off, off_t{1} << 30));
    if (use_cfr) {
      loff_t i = off, o = off;
      auto n = ::copy_file_range(in, &i, out, &o, want, 0);
      if (n > 0) {
        off += n;
        continue;
      }
      if (n == 0)
        return make_error(errc::operation_failed, fmt::format("copy {}: it shrank while being copied", from.string()));
      if (errno == EINTR)
        continue;
      if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP)
        return sys_fail("copy_file_range to", to, errno);
      use_cfr = false; // this pair of filesystems can't: read and write
      buf.resize(1 << 20);
    }
    auto n = ::pread(in, buf.data(), std::min(want, buf.size()), off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return sys_fail("pread", from, errno);
    if (n == 0)
      return make_error(errc::operation_failed, fmt::format("copy {}: it shrank while being copied", from.string()));
    for (ssize_t done = 0; done < n;) {
      auto w = ::pwrite(out, buf.data() + done, static_cast<std::size_t>(n - done), off + done);
      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0)
        return sys_fail("pwrite", to, errno);
      done += w;
    }
    off += n;
  }
  return {};
}

} // namespace

expected<void> ensure_template(const fs::path& final, const std::function<expected<void>(const fs::path&)>& build) {
  std::error_code ec;
  if (fs::exists(final, ec))
    return {};
  fs::create_directories(final.parent_path(), ec);
  if (ec)
    return make_error(errc::operation_failed, fmt::format("mkdir {}: {}", final.parent_path().string(), ec.message()));
  auto lock_path = fs::path(final.string() + ".lock");
  unique_fd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock)
    return sys_fail("open", lock_path, errno);
  while (::flock(lock.get(), LOCK_EX) != 0)
    if (errno != EINTR)
      return sys_fail("flock", lock_path, errno);
  if (fs::exists(final, ec))
    return {}; // another thread built it while we waited
  auto tmp = fs::path(final.string() + ".tmp");
  fs::remove_all(tmp, ec); // left by a daemon that died while building
  if (auto ok = build(tmp); !ok) {
    fs::remove_all(tmp, ec);
    return ok;
  }
  if (::rename(tmp.c_str(), final.c_str()) != 0) {
    int err = errno;
    fs::remove_all(tmp, ec);
    return sys_fail("rename to", final, err);
  }
  return {};
}

fs::path version_dir(const disk_templates& t, const std::string& image, const std::string& version) {
  return t.root / image / version;
}

expected<void> sparse_copy(const fs::path& from, const fs::path& to) {
  unique_fd in(::open(from.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in)
    return sys_fail("open", from, errno);
  struct stat st {};
  if (::fstat(in.get(), &st) != 0)
    return sys_fail("fstat", from, errno);
  std::error_code ec;
  fs::remove(to, ec);
  unique_fd out(::open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!out)
    return sys_fail("open", to, errno);
  if (::ioctl(out.get(), FICLONE, in.get()) == 0)
    return {}; // a reflink (btrfs, XFS): shares the blocks, copies nothing
  for (off_t off = 0; off < st.st_size;) {
    off_t data = ::lseek(in.get(), off, SEEK_DATA);
    if (data < 0 && errno == ENXIO)
      break; // only a hole remains
    if (data < 0)
      return sys_fail("lseek SEEK_DATA", from, errno);
    off_t hole = ::lseek(in.get(), data, SEEK_HOLE);
    if (hole < 0)
      return sys_fail("lseek SEEK_HOLE", from, errno);
    if (auto ok = copy_range(in.get(), out.get(), data, std::min(hole, st.st_size), from, to); !ok)
      return ok;
    off = hole;
  }
  if (::ftruncate(out.get(), st.st_size) != 0)
    return sys_fail("ftruncate", to, errno);
  return {};
}

void prune_templates(const disk_templates& t) {
  if (t.images.empty())
    return;
  std::error_code ec;
  for (const auto& img : fs::directory_iterator(t.root, ec)) {
    std::error_code ec2;
    auto image_dir = t.images / img.path().filename();
    if (!fs::exists(image_dir, ec2) && !ec2) {
      fs::remove_all(img.path(), ec2); // the image was removed
      continue;
    }
    for (const auto& ver : fs::directory_iterator(img.path(), ec2)) {
      std::error_code ec3;
      if (!fs::exists(image_dir / ver.path().filename(), ec3) && !ec3)
        fs::remove_all(ver.path(), ec3);
    }
  }
}

expected<void> make_overlay(const disk_templates& t, const std::string& image, const std::string& version,
                            const fs::path& out) {
  auto base = t.images / image / version / "rootfs.ext4";
  auto tmpl = version_dir(t, image, version) / "overlay.qcow2";
  auto ok = ensure_template(tmpl, [&](const fs::path& tmp) -> expected<void> {
    prune_templates(t);
    auto qemu_img = find_program("qemu-img");
    if (!qemu_img)
      return make_error(errc::unavailable, "qemu-img is not installed (package qemu-utils)");
    return run_tool({qemu_img->string(), "create", "-q", "-f", "qcow2", "-F", "raw", "-b", base.string(), tmp.string()},
                    "overlay");
  });
  if (!ok)
    return ok;
  return sparse_copy(tmpl, out);
}

expected<void> make_work_disk(const disk_templates& t, const std::string& image, const std::string& version,
                              std::uint32_t disk_mib, const fs::path& public_key, const fs::path& out) {
  auto seed = t.images / image / version / "work-seed.ext4";
  std::string key_id = "nokey";
  std::optional<std::string> key;
  if (!public_key.empty()) {
    auto k = read_file(public_key);
    if (!k)
      return k.err();
    key = std::move(*k);
    key_id = sha256_hex(*key).substr(0, 16);
  }
  auto tmpl = version_dir(t, image, version) / fmt::format("work-{}-{}.ext4", disk_mib, key_id);
  auto ok = ensure_template(tmpl, [&](const fs::path& disk) -> expected<void> {
    prune_templates(t);
    if (auto copied = sparse_copy(seed, disk); !copied)
      return copied;
    std::error_code ec;
    std::uint64_t want = std::uint64_t{disk_mib} << 20;
    if (fs::file_size(disk, ec) < want) {
      fs::resize_file(disk, want, ec);
      if (ec)
        return make_error(errc::operation_failed, fmt::format("grow {}: {}", disk.string(), ec.message()));
      auto resize2fs = find_program("resize2fs");
      if (!resize2fs)
        return make_error(errc::unavailable, "resize2fs is not installed (package e2fsprogs)");
      if (auto grown = run_tool({resize2fs->string(), "-f", disk.string()}, "work disk"); !grown)
        return grown;
    }
    if (!key)
      return {};
    auto img = guestfs::ext4_image::open(disk, true);
    if (!img)
      return img.err();
    // The work disk is the guest's /root.
    if (auto made = img->mkdir_p("/.ssh", 0700, 0, 0); !made)
      return made;
    if (auto written = img->write_file("/.ssh/authorized_keys", *key, 0600, 0, 0); !written)
      return written;
    return img->close();
  });
  if (!ok)
    return ok;
  return sparse_copy(tmpl, out);
}

} // namespace banger::actors
