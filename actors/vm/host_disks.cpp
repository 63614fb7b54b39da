// The disk kinds on the host (host_internal.hpp): a VM's qcow2 overlay on its image's immutable
// rootfs and its raw ext4 work disk, both copies of per-image templates (disks.hpp), in
// STATE/vms/<name>/. Blocking file I/O; VM worker threads.
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

#include <fmt/core.h>

#include "actors/vm/host_internal.hpp"
#include "common/guest_protocol.hpp"
#include "common/process.hpp"
#include "common/ssh_key.hpp"
#include "common/subprocess.hpp"
#include "guestfs/ext4.hpp"
#include "workspace/land_ext4.hpp"

namespace banger::actors {

namespace fs = std::filesystem;

namespace {

expected<void> remove_file(const fs::path& p) {
  std::error_code ec;
  fs::remove(p, ec);
  if (ec)
    return make_error(errc::operation_failed, fmt::format("remove {}: {}", p.string(), ec.message()));
  return {};
}

/// `text` as the whole of `p` (through a temporary name beside it, renamed over).
expected<void> replace_file(const fs::path& p, std::string_view text, mode_t mode) {
  auto tmp = p.string() + ".tmp";
  unique_fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode));
  if (!fd || ::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()) ||
      ::rename(tmp.c_str(), p.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return make_error(errc::operation_failed, fmt::format("write {}: {}", p.string(), std::strerror(err)));
  }
  return {};
}

/// When the VM's image runs sshd: a fresh host key for the VM, made here at native speed (not by
/// ssh-keygen in the guest, under TCG), the private half into the work disk where banger-init
/// starts sshd with it, the public half beside the disk for known_hosts.
expected<void> give_host_key(const host_env& h, const vm_state& s) {
  auto p = h.paths(s);
  auto rootfs = guestfs::ext4_image::open(h.image_dir(s) / "rootfs.ext4", false);
  if (!rootfs)
    return rootfs.err();
  auto sshd = rootfs->exists("/usr/sbin/sshd");
  if (!sshd)
    return sshd.err();
  if (!*sshd)
    return remove_file(p.host_key_pub());
  auto key = generate_ed25519_key(s.name);
  if (!key)
    return key.err();
  auto disk = guestfs::ext4_image::open(p.work_disk(), true);
  if (!disk)
    return disk.err();
  std::string dir = "/" + std::string(guest_protocol::work_disk_host_key_dir);
  if (auto ok = disk->mkdir_p(dir, 0700, 0, 0); !ok)
    return ok;
  if (auto ok = disk->write_file("/" + std::string(guest_protocol::work_disk_host_key), key->private_key, 0600, 0, 0);
      !ok)
    return ok;
  if (auto ok = disk->close(); !ok)
    return ok;
  return replace_file(p.host_key_pub(), key->public_key, 0644);
}

} // namespace

expected<void> make_private_dir(const fs::path& p) {
  std::error_code ec;
  fs::create_directories(p, ec);
  if (ec)
    return make_error(errc::operation_failed, fmt::format("mkdir {}: {}", p.string(), ec.message()));
  fs::permissions(p, fs::perms::owner_all, ec);
  return {};
}

bool resource_handler<resource_kind::overlay>::wants(const host_env&) { return true; }

std::string resource_handler<resource_kind::overlay>::planned_id(const host_env& h, const vm_state& s) {
  return h.paths(s).overlay().string();
}

expected<step_result> resource_handler<resource_kind::overlay>::make(const host_env& h, const vm_state& s,
                                                                     const std::string&) {
  auto p = h.paths(s);
  auto base = h.image_dir(s) / "rootfs.ext4";
  if (!fs::exists(base))
    return make_error(errc::not_found,
                      fmt::format("image {} version {} has no {}: it was removed; create the VM again from a "
                                  "current image",
                                  s.image, s.image_version, base.string()));
  if (auto ok = make_private_dir(p.state_dir); !ok)
    return ok.err();
  if (auto ok = make_overlay(h.templates(), s.image, s.image_version, p.overlay()); !ok)
    return ok.err();
  // Never booted: its first start may restore a boot snapshot (host_vmm.cpp).
  if (unique_fd fd(::open(fresh_marker(p).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644)); !fd)
    return make_error(errc::operation_failed,
                      fmt::format("create {}: {}", fresh_marker(p).string(), std::strerror(errno)));
  return step_result{p.overlay().string(), s.image_version};
}

expected<void> resource_handler<resource_kind::overlay>::release(const host_env& h, const vm_state& s,
                                                                 const vm_resource& r, const std::string&) {
  return remove_file(r.id.empty() ? h.paths(s).overlay() : fs::path(r.id));
}

bool resource_handler<resource_kind::work_disk>::wants(const host_env&) { return true; }

std::string resource_handler<resource_kind::work_disk>::planned_id(const host_env& h, const vm_state& s) {
  return h.paths(s).work_disk().string();
}

expected<step_result> resource_handler<resource_kind::work_disk>::make(const host_env& h, const vm_state& s,
                                                                       const std::string&) {
  auto p = h.paths(s);
  auto seed = h.image_dir(s) / "work-seed.ext4";
  if (!fs::exists(seed))
    return make_error(errc::not_found, fmt::format("image {} has no work seed {}", s.image, seed.string()));
  if (auto ok = make_private_dir(p.state_dir); !ok)
    return ok.err();
  if (auto ok =
        make_work_disk(h.templates(), s.image, s.image_version, s.disk_mib, h.cfg.ssh_public_key, p.work_disk());
      !ok)
    return ok.err();
  if (auto ok = give_host_key(h, s); !ok)
    return make_error(ok.err().code, "the VM's ssh host key: " + ok.err().message);
  return step_result{p.work_disk().string(), fmt::format("{} MiB", s.disk_mib)};
}

expected<void> resource_handler<resource_kind::work_disk>::release(const host_env& h, const vm_state& s,
                                                                   const vm_resource& r, const std::string&) {
  return remove_file(r.id.empty() ? h.paths(s).work_disk() : fs::path(r.id));
}

expected<workspace::landed> land_workspace_on_disk(const host_env& h, const vm_state& s, const std::string& guest_path,
                                                   workspace_feed& feed) {
  auto disk = h.paths(s).work_disk();
  auto img = guestfs::ext4_image::open(disk, true);
  if (!img)
    return img.err(); // the feed ends with the command: the CLI's next call gets this error
  auto to = workspace::ext4_receiver(*img, guest_path);
  auto landed = feed.pump(*to);
  to.reset();
  auto closed = img->close();
  if (!landed)
    return landed;
  if (!closed)
    return closed.err();
  return landed;
}

expected<void> repair_work_disk(const host_env& h, const vm_state& s) {
  auto disk = h.paths(s).work_disk();
  std::error_code ec;
  if (!fs::exists(disk, ec))
    return {};
  auto e2fsck = find_program("e2fsck");
  if (!e2fsck)
    return make_error(errc::unavailable, "e2fsck is not installed (e2fsprogs)");
  // -p: repairs what is safe to repair without asking; exit 0 or 1 is a clean (or cleaned) disk.
  auto r = run_process({e2fsck->string(), "-f", "-p", disk.string()});
  if (r.exit_code != 0 && r.exit_code != 1)
    return make_error(errc::operation_failed,
                      fmt::format("e2fsck -f -p {} exited {}: {}", disk.string(), r.exit_code, r.out + r.err));
  if (s.workspace_pending_path.empty())
    return {};
  // Then what the landing left goes (its staging tree; the previous workspace back in place if
  // the cut came mid-swap), so the guest never sees it.
  auto img = guestfs::ext4_image::open(disk, true);
  if (!img)
    return img.err();
  if (auto ok = workspace::tidy_landing(*img, s.workspace_pending_path); !ok)
    return ok;
  return img->close();
}

} // namespace banger::actors
