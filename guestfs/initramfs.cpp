// Module dependency resolution and the initramfs writer. See initramfs.hpp for the archive
// layout. Module dependencies are resolved depth-first, dependencies before dependants, which
// is the order modprobe loads them in.
#include "guestfs/initramfs.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <cstdio>
#include <fmt/format.h>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/process.hpp"
#include "common/text.hpp"
#include "guestfs/bzimage.hpp"

namespace banger::guestfs {

namespace {

namespace fs = std::filesystem;

constexpr std::size_t max_module_bytes = 64u << 20;

// The busybox applets /init and a rescue shell use, linked in bin/.
constexpr const char* applets[] = {"sh",       "mount",  "umount",   "mkdir",    "insmod",      "usleep",
                                   "sleep",    "cat",    "echo",     "ip",       "switch_root", "findfs",
                                   "hostname", "setsid", "cttyhack", "poweroff", "ls",          "dmesg"};

std::string canonical_name(std::string_view s) {
  std::string n(s);
  for (auto& c : n)
    if (c == '-')
      c = '_';
  return n;
}

/// "kernel/drivers/virtio/virtio_ring.ko.xz" -> "virtio_ring"
std::string module_name_of(std::string_view path) {
  auto slash = path.rfind('/');
  if (slash != std::string_view::npos)
    path.remove_prefix(slash + 1);
  auto ko = path.find(".ko");
  return canonical_name(path.substr(0, ko));
}

bool is_module_file(const fs::path& p) {
  auto s = p.filename().string();
  return s.ends_with(".ko") || s.ends_with(".ko.xz") || s.ends_with(".ko.zst") || s.ends_with(".ko.gz");
}

/// A module's bytes as insmod wants them: decompressed.
expected<std::string> read_module(const fs::path& file) {
  auto raw = read_file(file);
  if (!raw)
    return raw;
  auto suffix = file.extension().string();
  auto c = suffix == ".xz"    ? compression::xz
           : suffix == ".zst" ? compression::zstd
           : suffix == ".gz"  ? compression::gzip
                              : compression::none;
  if (c == compression::none)
    return raw;
  auto plain = decompress(c, *raw, max_module_bytes);
  if (!plain)
    return make_error(errc::bad_request, fmt::format("module {}: {}", file.string(), plain.err().message));
  return plain;
}

std::uint64_t le(std::string_view b, std::size_t at, int bytes) {
  std::uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i)
    v = (v << 8) | static_cast<unsigned char>(b[at + static_cast<std::size_t>(i)]);
  return v;
}

/// The `depends=` list of a module's .modinfo section (ELF64 little-endian).
expected<std::vector<std::string>> modinfo_depends(const fs::path& file) {
  auto elf = read_module(file);
  if (!elf)
    return std::move(elf).err();
  std::string_view b = *elf;
  auto bad = [&](std::string_view why) {
    return make_error(errc::bad_request, fmt::format("module {}: {}", file.string(), why));
  };
  if (b.size() < 64 ||
      b.substr(0, 4) != "\x7f"
                        "ELF" ||
      b[4] != 2 || b[5] != 1)
    return bad("not a 64-bit little-endian ELF object");
  std::uint64_t shoff = le(b, 0x28, 8), shentsize = le(b, 0x3A, 2), shnum = le(b, 0x3C, 2), shstrndx = le(b, 0x3E, 2);
  if (shentsize < 64 || shoff > b.size() || shnum * shentsize > b.size() - shoff || shstrndx >= shnum)
    return bad("section headers lie outside the file");
  auto section = [&](std::uint64_t i) -> std::string_view {
    std::size_t sh = shoff + i * shentsize;
    std::uint64_t off = le(b, sh + 0x18, 8), size = le(b, sh + 0x20, 8);
    if (off > b.size() || size > b.size() - off)
      return {};
    return b.substr(off, size);
  };
  auto names = section(shstrndx);
  for (std::uint64_t i = 0; i < shnum; ++i) {
    std::uint64_t name_at = le(b, shoff + i * shentsize, 4);
    if (name_at >= names.size())
      continue;
    auto name = names.substr(name_at);
    if (name.substr(0, name.find('\0')) != ".modinfo")
      continue;
    auto info = section(i);
    std::vector<std::string> deps;
    while (!info.empty()) {
      auto end = info.find('\0');
      auto kv = info.substr(0, end);
      if (kv.starts_with("depends=")) {
        kv.remove_prefix(8);
        while (!kv.empty()) {
          auto comma = kv.find(',');
          if (comma != 0)
            deps.push_back(canonical_name(kv.substr(0, comma)));
          kv = comma == std::string_view::npos ? std::string_view() : kv.substr(comma + 1);
        }
      }
      info = end == std::string_view::npos ? std::string_view() : info.substr(end + 1);
    }
    return deps;
  }
  return bad("no .modinfo section");
}

struct module_index {
  std::map<std::string, fs::path> files;               ///< name -> file
  std::map<std::string, std::vector<std::string>> dep; ///< from modules.dep, in its order
  std::set<std::string> builtin;
  bool have_dep_file = false;
};

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at < text.size()) {
    auto nl = text.find('\n', at);
    out.push_back(text.substr(at, nl == std::string::npos ? std::string::npos : nl - at));
    at = nl == std::string::npos ? text.size() : nl + 1;
  }
  return out;
}

std::vector<std::string> words_of(std::string_view s) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at < s.size()) {
    auto start = s.find_first_not_of(" \t", at);
    if (start == std::string_view::npos)
      break;
    auto end = s.find_first_of(" \t", start);
    out.emplace_back(s.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    at = end == std::string_view::npos ? s.size() : end;
  }
  return out;
}

expected<module_index> index_modules(const fs::path& dir) {
  module_index idx;
  std::error_code ec;
  if (fs::exists(dir / "modules.builtin", ec)) {
    auto text = read_file(dir / "modules.builtin");
    if (!text)
      return std::move(text).err();
    for (auto& l : lines_of(*text))
      if (!l.empty())
        idx.builtin.insert(module_name_of(l));
  }
  if (fs::exists(dir / "modules.dep", ec)) {
    idx.have_dep_file = true;
    auto text = read_file(dir / "modules.dep");
    if (!text)
      return std::move(text).err();
    for (auto& l : lines_of(*text)) {
      auto colon = l.find(':');
      if (colon == std::string::npos)
        continue;
      std::string path = l.substr(0, colon);
      // The tree comes from an untrusted package: its modules.dep may only name files inside it.
      if (path.starts_with('/') || path.find("..") != std::string::npos)
        return make_error(errc::bad_request, fmt::format("{}/modules.dep names {}, outside the modules directory",
                                                         dir.string(), quoted(path)));
      auto name = module_name_of(path);
      idx.files[name] = dir / path;
      auto& deps = idx.dep[name];
      for (auto& w : words_of(std::string_view(l).substr(colon + 1)))
        deps.push_back(module_name_of(w));
    }
    return idx;
  }
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec))
    if (it->is_regular_file(ec) && is_module_file(it->path()))
      idx.files.emplace(module_name_of(it->path().string()), it->path());
  if (ec)
    return make_error(errc::operation_failed, fmt::format("walk {}: {}", dir.string(), ec.message()));
  return idx;
}

} // namespace

const std::vector<std::string>& guest_modules() {
  static const std::vector<std::string> names{"virtio",         "virtio_mmio", "virtio_blk", "virtio_net",
                                              "virtio_console", "ext4",        "button",     "evdev"};
  return names;
}

expected<fs::path> find_modules_dir(const fs::path& root, std::string_view version) {
  std::error_code ec;
  for (auto* prefix : {"lib/modules", "usr/lib/modules"}) {
    auto dir = root / prefix / version;
    if (fs::is_directory(dir, ec))
      return dir;
  }
  return make_error(errc::not_found, fmt::format("no lib/modules/{} under {}: the kernel package ships no modules",
                                                 version, root.string()));
}

expected<std::vector<kernel_module>> resolve_modules(const fs::path& modules_dir,
                                                     const std::vector<std::string>& wanted) {
  auto idx = index_modules(modules_dir);
  if (!idx)
    return std::move(idx).err();
  std::vector<kernel_module> order;
  std::set<std::string> done, active;
  std::function<expected<void>(const std::string&, const std::string&)> visit =
    [&](const std::string& raw, const std::string& needed_by) -> expected<void> {
    auto name = canonical_name(raw);
    if (done.contains(name) || idx->builtin.contains(name))
      return {};
    if (active.contains(name))
      return make_error(errc::bad_request,
                        fmt::format("module dependency cycle through {} in {}", name, modules_dir.string()));
    auto file = idx->files.find(name);
    if (file == idx->files.end())
      return make_error(errc::not_found, fmt::format("kernel module {}{} is neither in {} nor built in", name,
                                                     needed_by.empty() ? "" : fmt::format(" (needed by {})", needed_by),
                                                     modules_dir.string()));
    active.insert(name);
    std::vector<std::string> deps;
    if (idx->have_dep_file) {
      // modules.dep lists the whole closure, each entry depending only on later ones.
      auto& d = idx->dep[name];
      deps.assign(d.rbegin(), d.rend());
    } else {
      auto d = modinfo_depends(file->second);
      if (!d)
        return std::move(d).err();
      deps = std::move(*d);
    }
    for (auto& dep : deps)
      if (auto r = visit(dep, name); !r)
        return r;
    active.erase(name);
    done.insert(name);
    order.push_back(kernel_module{name, file->second});
    return {};
  };
  for (auto& w : wanted)
    if (auto r = visit(w, ""); !r)
      return std::move(r).err();
  return order;
}

std::string init_script(const std::vector<std::string>& module_names) {
  std::string mods;
  for (auto& m : module_names)
    mods += (mods.empty() ? "" : " ") + m;
  // The script is parsed by busybox ash. Kernel arguments it reads (from /proc/cmdline, since
  // the kernel consumes some of them): root= rootfstype= rootflags= ro rw init= ip=
  // banger.shell. ip= is client-ip:server-ip:gw-ip:netmask:hostname:device:autoconf.
  return fmt::format(R"SH(#!/bin/sh
# banger initramfs /init (generated by guestfs/initramfs.cpp): load modules, apply ip=,
# wait for the root device, mount it and switch_root into it.
export PATH=/bin
modules="{}"

fail() {{
  echo "banger-initramfs: error: $*"
  if [ -n "$rescue" ]; then
    echo "banger-initramfs: banger.shell is set: starting a shell"
    exec setsid cttyhack sh
  fi
  echo "banger-initramfs: powering off (add banger.shell to the kernel command line for a shell)"
  poweroff -f
  sleep 10
  exit 1
}}

prefix_len() {{
  old_ifs=$IFS; IFS=.; set -- $1; IFS=$old_ifs
  [ $# -eq 4 ] || return 1
  bits=0
  for octet in "$@"; do
    case "$octet" in
    255) bits=$((bits + 8)) ;; 254) bits=$((bits + 7)) ;; 252) bits=$((bits + 6)) ;;
    248) bits=$((bits + 5)) ;; 240) bits=$((bits + 4)) ;; 224) bits=$((bits + 3)) ;;
    192) bits=$((bits + 2)) ;; 128) bits=$((bits + 1)) ;; 0) ;;
    *) return 1 ;;
    esac
  done
  echo $bits
}}

apply_ip() {{
  old_ifs=$IFS; IFS=:; set -- $1; IFS=$old_ifs
  client=$1 gw=$3 mask=${{4:-255.255.255.255}} host=$5 dev=${{6:-eth0}}
  case "$client" in
  ""|off|none) return 0 ;;
  dhcp|on|any|both|bootp|rarp) echo "banger-initramfs: warning: ip=$client is not supported; skipping"; return 0 ;;
  esac
  bits=$(prefix_len "$mask") || fail "ip=: bad netmask '$mask'"
  n=0
  while [ ! -e "/sys/class/net/$dev" ]; do
    n=$((n + 1))
    [ $n -le 50 ] || fail "ip=: network device $dev did not appear within 5 s"
    usleep 100000
  done
  [ -z "$host" ] || hostname "$host"
  ip link set lo up
  ip link set "$dev" up || fail "ip=: cannot bring $dev up"
  ip addr add "$client/$bits" dev "$dev" || fail "ip=: cannot add $client/$bits to $dev"
  [ -z "$gw" ] || ip route add default via "$gw" dev "$dev" || fail "ip=: cannot add a default route via $gw"
}}

mkdir -p /proc /sys /dev /newroot
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

set -f
root= fstype=ext4 flags= mode=rw init=/sbin/init ip= rescue=
for arg in $(cat /proc/cmdline); do
  case "$arg" in
  root=*) root=${{arg#root=}} ;;
  rootfstype=*) fstype=${{arg#rootfstype=}} ;;
  rootflags=*) flags=,${{arg#rootflags=}} ;;
  ro) mode=ro ;;
  rw) mode=rw ;;
  init=*) init=${{arg#init=}} ;;
  ip=*) ip=${{arg#ip=}} ;;
  banger.shell) rescue=1 ;;
  esac
done
set +f

for m in $modules; do
  insmod "/lib/modules/$m.ko" || echo "banger-initramfs: warning: insmod $m failed"
done

[ -z "$ip" ] || apply_ip "$ip"

[ -n "$root" ] || fail "no root= on the kernel command line"
n=0
dev=$root
while :; do
  case "$root" in UUID=*|LABEL=*) dev=$(findfs "$root" 2>/dev/null) ;; esac
  [ -n "$dev" ] && [ -b "$dev" ] && break
  n=$((n + 1))
  [ $n -le 100 ] || fail "root device $root did not appear within 10 s (modules loaded: $modules)"
  usleep 100000
done

mount -t "$fstype" -o "$mode$flags" "$dev" /newroot || fail "cannot mount $root ($fstype, $mode$flags)"
[ -e "/newroot$init" ] || [ -L "/newroot$init" ] || fail "init $init not found on $root"
for d in dev proc sys; do
  if [ -d "/newroot/$d" ]; then mount --move "/$d" "/newroot/$d"; else umount "/$d"; fi
done
exec switch_root /newroot "$init"
fail "switch_root into $root ($init) failed"
)SH",
                     mods);
}

namespace {

struct writer_closer {
  void operator()(archive* a) const { archive_write_free(a); }
};

struct cpio_writer {
  std::unique_ptr<archive, writer_closer> a{archive_write_new()};
  std::string path;
  la_int64_t ino = 1;

  expected<void> add(std::string_view name, mode_t type, mode_t perm, std::string_view data = {},
                     std::string_view link = {}, dev_t rdev = 0) {
    std::unique_ptr<archive_entry, void (*)(archive_entry*)> e(archive_entry_new(), archive_entry_free);
    archive_entry_set_pathname(e.get(), std::string(name).c_str());
    archive_entry_set_filetype(e.get(), type);
    archive_entry_set_perm(e.get(), perm);
    archive_entry_set_uid(e.get(), 0);
    archive_entry_set_gid(e.get(), 0);
    archive_entry_set_mtime(e.get(), 0, 0);
    archive_entry_set_nlink(e.get(), type == AE_IFDIR ? 2 : 1);
    archive_entry_set_ino64(e.get(), ino++);
    if (type == AE_IFLNK)
      archive_entry_set_symlink(e.get(), std::string(link).c_str());
    if (type == AE_IFCHR)
      archive_entry_set_rdev(e.get(), rdev);
    archive_entry_set_size(e.get(), type == AE_IFREG ? static_cast<la_int64_t>(data.size()) : 0);
    if (archive_write_header(a.get(), e.get()) != ARCHIVE_OK)
      return failed(name);
    if (type == AE_IFREG && !data.empty() &&
        archive_write_data(a.get(), data.data(), data.size()) != static_cast<la_ssize_t>(data.size()))
      return failed(name);
    return {};
  }

  error failed(std::string_view name) {
    const char* s = archive_error_string(a.get());
    return make_error(errc::operation_failed,
                      fmt::format("write {} into {}: {}", name, path, s ? s : "unknown libarchive error"));
  }
};

} // namespace

expected<void> build_initramfs(const initramfs_spec& spec, const fs::path& output) {
  auto busybox = read_file(spec.busybox);
  if (!busybox)
    return make_error(errc::not_found, fmt::format("read busybox {}: {} (install busybox-static)",
                                                   spec.busybox.string(), busybox.err().message));
  std::vector<std::pair<std::string, std::string>> modules;
  std::vector<std::string> names;
  for (auto& m : spec.modules) {
    auto bytes = read_module(m.file);
    if (!bytes)
      return std::move(bytes).err();
    modules.emplace_back(m.name, std::move(*bytes));
    names.push_back(m.name);
  }

  cpio_writer w;
  w.path = output.string() + ".tmp";
  archive_write_set_format_cpio_newc(w.a.get());
  archive_write_add_filter_gzip(w.a.get());
  archive_write_set_filter_option(w.a.get(), "gzip", "timestamp", nullptr); // reproducible bytes
  archive_write_set_bytes_in_last_block(w.a.get(), 1);
  if (archive_write_open_filename(w.a.get(), w.path.c_str()) != ARCHIVE_OK)
    return w.failed("(open)");
  struct unlink_tmp {
    std::string path;
    bool keep = false;
    ~unlink_tmp() {
      if (!keep)
        ::unlink(path.c_str());
    }
  } tmp{w.path};

  for (auto* dir : {"bin", "dev", "lib", "lib/modules", "proc", "sys", "newroot"})
    if (auto r = w.add(dir, AE_IFDIR, 0755); !r)
      return r;
  if (auto r = w.add("dev/console", AE_IFCHR, 0600, {}, {}, makedev(5, 1)); !r)
    return r;
  if (auto r = w.add("init", AE_IFREG, 0755, init_script(names)); !r)
    return r;
  if (auto r = w.add("bin/busybox", AE_IFREG, 0755, *busybox); !r)
    return r;
  for (auto* applet : applets)
    if (auto r = w.add(fmt::format("bin/{}", applet), AE_IFLNK, 0777, {}, "busybox"); !r)
      return r;
  for (auto& [name, bytes] : modules)
    if (auto r = w.add(fmt::format("lib/modules/{}.ko", name), AE_IFREG, 0644, bytes); !r)
      return r;
  if (archive_write_close(w.a.get()) != ARCHIVE_OK)
    return w.failed("(close)");
  if (::rename(w.path.c_str(), output.c_str()) != 0)
    return make_error(errc::operation_failed,
                      fmt::format("rename {} to {}: {}", w.path, output.string(), errno_text(errno)));
  tmp.keep = true;
  return {};
}

} // namespace banger::guestfs
