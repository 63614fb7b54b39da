// The busybox image builder (image.hpp): the host's busybox-static, its applets as symlinks,
// /etc basics and empty mount points in a staged tree, finished like every other build
// (image.cpp). Blocking; the calling thread does everything (busybox --list-full is waited for).
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <elf.h>
#include <fmt/format.h>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

#include "common/process.hpp"
#include "guestfs/image.hpp"
#include "guestfs/image_internal.hpp"

namespace banger::guestfs {

namespace fs = std::filesystem;

namespace {

using detail::run_tool;
using detail::staging;
using detail::sys_error;
using detail::tail;
using detail::write_host_file;

/// Whether `path` is an ELF executable without a PT_INTERP (a static binary).
expected<bool> is_static_elf(const fs::path& path) {
  auto bytes = banger::read_file(path);
  if (!bytes)
    return std::move(bytes).err();
  const auto& b = *bytes;
  if (b.size() < sizeof(Elf64_Ehdr) || b.compare(0, 4, ELFMAG) != 0 || b[EI_CLASS] != ELFCLASS64)
    return false;
  Elf64_Ehdr eh;
  std::memcpy(&eh, b.data(), sizeof eh);
  for (unsigned i = 0; i < eh.e_phnum; ++i) {
    auto off = eh.e_phoff + std::uint64_t{i} * eh.e_phentsize;
    if (off + sizeof(Elf64_Phdr) > b.size())
      return false;
    Elf64_Phdr ph;
    std::memcpy(&ph, b.data() + off, sizeof ph);
    if (ph.p_type == PT_INTERP)
      return false;
  }
  return true;
}

expected<void> make_dir(const fs::path& p, mode_t mode) {
  if (::mkdir(p.c_str(), mode) != 0 && errno != EEXIST)
    return sys_error("mkdir", p, errno);
  if (::chmod(p.c_str(), mode) != 0)
    return sys_error("chmod", p, errno);
  return {};
}

/// The busybox tree: /usr/bin/busybox, its applets as symlinks to it (except init: banger-init
/// is PID 1), /etc basics and empty mount points.
expected<void> fill_busybox_tree(const fs::path& tree, const fs::path& busybox) {
  for (auto [d, mode] : std::initializer_list<std::pair<const char*, mode_t>>{{"", 0755},
                                                                              {"bin", 0755},
                                                                              {"sbin", 0755},
                                                                              {"usr", 0755},
                                                                              {"usr/bin", 0755},
                                                                              {"usr/sbin", 0755},
                                                                              {"etc", 0755},
                                                                              {"proc", 0555},
                                                                              {"sys", 0555},
                                                                              {"dev", 0755},
                                                                              {"run", 0755},
                                                                              {"tmp", 01777},
                                                                              {"root", 0700},
                                                                              {"var", 0755}})
    if (auto r = make_dir(tree / d, mode); !r)
      return r;
  std::error_code ec;
  if (!fs::copy_file(busybox, tree / "usr/bin/busybox", ec))
    return make_error(errc::operation_failed,
                      fmt::format("copy {} into the image: {}", busybox.string(), ec.message()));
  if (::chmod((tree / "usr/bin/busybox").c_str(), 0755) != 0)
    return sys_error("chmod", tree / "usr/bin/busybox", errno);
  auto list = run_tool({busybox.string(), "--list-full"});
  if (list.exit_code != 0)
    return make_error(errc::operation_failed, fmt::format("{} --list-full exited with {}: {}", busybox.string(),
                                                          list.exit_code, tail(list.out)));
  std::istringstream lines(list.out);
  int applets = 0;
  for (std::string line; std::getline(lines, line);) {
    bool in_bin_dir = line.starts_with("bin/") || line.starts_with("sbin/") || line.starts_with("usr/bin/") ||
                      line.starts_with("usr/sbin/");
    auto name = line.substr(line.rfind('/') + 1);
    if (!in_bin_dir || name.empty() || name == "." || name == ".." || line == "sbin/init" || name == "busybox" ||
        std::count(line.begin(), line.end(), '/') > 2)
      continue;
    auto link = tree / line;
    if (::symlink("/usr/bin/busybox", link.c_str()) != 0 && errno != EEXIST)
      return sys_error("symlink", link, errno);
    ++applets;
  }
  if (applets == 0)
    return make_error(errc::operation_failed,
                      fmt::format("{} --list-full listed no applets: is it busybox?", busybox.string()));
  const std::pair<const char*, std::string_view> files[] = {
    {"etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"},
    {"etc/group", "root:x:0:\nnogroup:x:65534:\n"},
    {"etc/shadow", "root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n"},
    {"etc/hostname", "banger\n"},
    {"etc/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"},
  };
  for (auto& [rel, text] : files)
    if (auto r = write_host_file(tree / rel, text, std::string_view(rel) == "etc/shadow" ? 0640 : 0644); !r)
      return r;
  return {};
}

std::optional<fs::path> host_busybox() {
  for (auto* p : {"/usr/bin/busybox", "/bin/busybox"})
    if (::access(p, X_OK) == 0)
      return fs::path(p);
  return std::nullopt;
}

} // namespace

expected<image_manifest> build_busybox_image(const std::string& name, const guest_binaries& bins, const fs::path& dest,
                                             const progress_fn& progress) {
  auto busybox = host_busybox();
  if (!busybox)
    return make_error(errc::unavailable,
                      "busybox not found at /usr/bin/busybox or /bin/busybox: install busybox-static");
  auto is_static = is_static_elf(*busybox);
  if (!is_static)
    return std::move(is_static).err();
  if (!*is_static)
    return make_error(errc::unavailable, fmt::format("{} is not statically linked: install busybox-static (it "
                                                     "replaces the dynamic busybox)",
                                                     busybox->string()));
  auto stage = staging::begin(dest);
  if (!stage)
    return std::move(stage).err();
  detail::report(progress, "tree", 0, 0);
  if (auto r = fill_busybox_tree(stage->tree(), *busybox); !r)
    return make_error(r.err().code, fmt::format("image {}: {}", name, r.err().message));
  detail::finish_spec spec;
  spec.manifest.name = name;
  spec.manifest.source = "busybox";
  spec.manifest.init = "banger-init";
  spec.rootfs_bytes = 64 * detail::mib;
  spec.work_seed_bytes = 16 * detail::mib;
  spec.everything_root_owned = true;
  return detail::finish(*stage, std::move(spec), bins, dest, progress);
}

} // namespace banger::guestfs
