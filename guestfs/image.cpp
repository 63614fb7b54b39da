// Guest image building's shared machinery (image_internal.hpp): the staging directory, the
// finishing steps every builder shares (ssh host key removal, rootfs.ext4 / work-seed.ext4
// creation, in-image injection of banger-init and banger-agent, manifest), and running the
// tools the builders call. The busybox builder is in image_busybox.cpp, the debootstrap builder
// in image_debootstrap.cpp, import from a directory or a tar file in image_import.cpp,
// verification in image_verify.cpp. Blocking; the calling thread does everything (subprocesses
// are waited for).
#include "guestfs/image.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <elf.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <spawn.h>
#include <sstream>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/process.hpp"
#include "common/sha256.hpp"
#include "common/subprocess.hpp"
#include "common/text.hpp"
#include "guestfs/ext4.hpp"
#include "guestfs/image_internal.hpp"
#include "guestfs/kernel_dir.hpp"

extern char** environ;

namespace banger::guestfs {

namespace fs = std::filesystem;

namespace detail {

error sys_error(std::string_view what, const fs::path& path, int err) {
  return make_error(errc::operation_failed, fmt::format("{} {}: {}", what, path.string(), errno_text(err)));
}

namespace {

std::uint64_t round_up(std::uint64_t n, std::uint64_t to) { return (n + to - 1) / to * to; }

/// Mount points from /proc/self/mountinfo (field 5, octal escapes decoded).
std::vector<std::string> mount_points() {
  std::vector<std::string> out;
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string id, parent, devno, root, point;
    if (!(fields >> id >> parent >> devno >> root >> point))
      continue;
    std::string decoded;
    for (std::size_t i = 0; i < point.size(); ++i) {
      if (point[i] == '\\' && i + 3 < point.size()) {
        decoded += static_cast<char>(std::strtol(point.substr(i + 1, 3).c_str(), nullptr, 8));
        i += 3;
      } else {
        decoded += point[i];
      }
    }
    out.push_back(std::move(decoded));
  }
  return out;
}

} // namespace

bool unmount_below(const fs::path& dir) {
  auto prefix = dir.lexically_normal().string();
  auto below = [&] {
    std::vector<std::string> found;
    for (auto& p : mount_points())
      if (p == prefix || p.starts_with(prefix + "/"))
        found.push_back(p);
    std::sort(found.begin(), found.end(), [](auto& a, auto& b) { return a.size() > b.size(); });
    return found;
  };
  for (auto& p : below())
    ::umount2(p.c_str(), MNT_DETACH);
  return below().empty();
}

expected<staging> staging::begin(const fs::path& dest) {
  std::error_code ec;
  if (fs::symlink_status(dest, ec).type() != fs::file_type::not_found)
    return make_error(errc::already_exists, fmt::format("image directory {} already exists: images are immutable, "
                                                        "build into a new directory",
                                                        dest.string()));
  fs::path parent = dest.parent_path().empty() ? fs::path(".") : dest.parent_path();
  if (!fs::is_directory(parent, ec))
    return make_error(errc::not_found,
                      fmt::format("image directory {}: parent {} does not exist", dest.string(), parent.string()));
  std::string tmpl = (parent / fmt::format("{}.building-XXXXXX", dest.filename().string())).string();
  if (!::mkdtemp(tmpl.data()))
    return sys_error("mkdtemp", tmpl, errno);
  staging s{fs::path(tmpl)};
  if (::mkdir(s.out().c_str(), 0755) != 0)
    return sys_error("mkdir", s.out(), errno);
  return s;
}

staging::~staging() {
  if (dir_.empty())
    return;
  // Never recurse into something still mounted below the scratch tree (debootstrap mounts the
  // host's /proc and /sys there); leave the directory for a human instead.
  if (!unmount_below(dir_))
    return;
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

std::optional<fs::path> resolve_in_tree(const fs::path& tree, std::string_view guest_path) {
  std::vector<std::string> pending;
  auto push_components = [&](std::string_view p) {
    std::vector<std::string> parts;
    std::size_t start = 0;
    while (start <= p.size()) {
      auto end = p.find('/', start);
      if (end == std::string_view::npos)
        end = p.size();
      if (end > start)
        parts.emplace_back(p.substr(start, end - start));
      start = end + 1;
    }
    pending.insert(pending.end(), parts.rbegin(), parts.rend()); // a stack: last component deepest
  };
  push_components(guest_path);
  std::vector<std::string> done; // resolved components below tree, no symlinks among them
  int links = 0;
  while (!pending.empty()) {
    auto part = std::move(pending.back());
    pending.pop_back();
    if (part == ".")
      continue;
    if (part == "..") {
      if (!done.empty())
        done.pop_back();
      continue;
    }
    fs::path here = tree;
    for (auto& d : done)
      here /= d;
    here /= part;
    struct stat st {};
    if (::lstat(here.c_str(), &st) != 0)
      return std::nullopt;
    if (!S_ISLNK(st.st_mode)) {
      done.push_back(std::move(part));
      continue;
    }
    if (++links > 40)
      return std::nullopt;
    std::string target(static_cast<std::size_t>(st.st_size) + 1, '\0');
    auto n = ::readlink(here.c_str(), target.data(), target.size());
    if (n < 0 || static_cast<std::size_t>(n) >= target.size())
      return std::nullopt;
    target.resize(static_cast<std::size_t>(n));
    if (target.starts_with('/'))
      done.clear();
    push_components(target);
  }
  fs::path out = tree;
  for (auto& d : done)
    out /= d;
  return out;
}

std::uint64_t tree_bytes(const fs::path& tree) {
  std::uint64_t total = 4096;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(tree, fs::directory_options::none, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0)
      continue;
    total += 256;
    if (S_ISREG(st.st_mode))
      total += round_up(static_cast<std::uint64_t>(st.st_size), 4096);
    else if (S_ISDIR(st.st_mode) || (S_ISLNK(st.st_mode) && st.st_size >= 60))
      total += 4096;
  }
  return total;
}

expected<void> write_host_file(const fs::path& path, std::string_view bytes, mode_t mode) {
  unique_fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode));
  if (!fd)
    return sys_error("create", path, errno);
  for (std::size_t done = 0; done < bytes.size();) {
    ssize_t n = ::write(fd.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return sys_error("write", path, errno);
    done += static_cast<std::size_t>(n);
  }
  if (::fchmod(fd.get(), mode) != 0)
    return sys_error("fchmod", path, errno);
  if (::fsync(fd.get()) != 0)
    return sys_error("fsync", path, errno);
  return {};
}

expected<void> remove_host_keys(const fs::path& tree) {
  auto ssh = resolve_in_tree(tree, "/etc/ssh");
  std::error_code ec;
  if (!ssh || !fs::is_directory(*ssh, ec))
    return {};
  for (auto& e : fs::directory_iterator(*ssh, ec))
    if (e.path().filename().string().starts_with("ssh_host_") && ::unlink(e.path().c_str()) != 0 && errno != ENOENT)
      return sys_error("unlink", e.path(), errno);
  if (ec)
    return sys_error("list", *ssh, ec.value());
  return {};
}

namespace {

constexpr std::string_view sshd_dropin = "# Written by banger: root logs in with a key, never a password.\n"
                                         "PermitRootLogin prohibit-password\n"
                                         "PubkeyAuthentication yes\n"
                                         "PasswordAuthentication no\n"
                                         "KbdInteractiveAuthentication no\n";

} // namespace

namespace {

/// Writes host file `host` as `dir`/`name` in the image (replacing an entry of that name),
/// streamed in 1 MiB pieces: the static guest binaries are 13 MiB each, and a pull holds no
/// whole file in memory.
expected<void> copy_in(ext4_image& img, std::string_view dir, const std::string& name, const fs::path& host,
                       std::uint32_t mode) {
  unique_fd fd(::open(host.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd)
    return sys_error("open", host, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0)
    return sys_error("stat", host, errno);
  auto parent = img.inode_of(dir);
  if (!parent)
    return std::move(parent).err();
  if (auto r = img.remove_tree_in(*parent, name); !r)
    return r;
  auto w = img.create_in(*parent, name, mode, 0, 0, static_cast<std::uint64_t>(st.st_size));
  if (!w)
    return std::move(w).err();
  std::vector<char> buf(1 << 20);
  for (;;) {
    auto n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return sys_error("read", host, errno);
    if (n == 0)
      break;
    if (auto r = w->write(std::string_view(buf.data(), static_cast<std::size_t>(n))); !r)
      return r;
  }
  auto done = w->finish(std::time(nullptr));
  if (!done)
    return std::move(done).err();
  return {};
}

} // namespace

expected<void> inject(ext4_image& img, const guest_binaries& bins) {
  for (auto* d : {"/proc", "/sys", "/dev", "/run"}) {
    auto there = img.exists(d);
    if (!there)
      return std::move(there).err();
    if (!*there)
      if (auto r = img.mkdir_p(d, 0755, 0, 0); !r)
        return r;
  }
  for (auto [d, mode] : {std::pair{"/tmp", 01777u}, std::pair{"/root", 0700u}}) {
    auto there = img.exists(d);
    if (!there)
      return std::move(there).err();
    if (!*there)
      if (auto r = img.mkdir_p(d, mode, 0, 0); !r)
        return r;
  }
  if (auto r = img.mkdir_p("/usr/local/sbin", 0755, 0, 0); !r)
    return r;
  if (auto r = copy_in(img, "/usr/local/sbin", "banger-init", bins.init, 0755); !r)
    return make_error(r.err().code, fmt::format("banger-init: {}", r.err().message));
  if (auto r = copy_in(img, "/usr/local/sbin", "banger-agent", bins.agent, 0755); !r)
    return make_error(r.err().code, fmt::format("banger-agent: {}", r.err().message));
  auto has_init = img.exists("/sbin/init");
  if (!has_init)
    return std::move(has_init).err();
  if (!*has_init) {
    auto has_sbin = img.exists("/sbin");
    if (!has_sbin)
      return std::move(has_sbin).err();
    if (!*has_sbin)
      if (auto r = img.mkdir_p("/sbin", 0755, 0, 0); !r)
        return r;
    if (auto r = img.symlink("/sbin/init", "/usr/local/sbin/banger-init", 0, 0); !r)
      return r;
  }
  auto has_sshd = img.exists("/usr/sbin/sshd");
  if (!has_sshd)
    return std::move(has_sshd).err();
  if (*has_sshd) {
    if (auto r = img.mkdir_p("/etc/ssh/sshd_config.d", 0755, 0, 0); !r)
      return r;
    if (auto r = img.write_file("/etc/ssh/sshd_config.d/banger.conf", sshd_dropin, 0644, 0, 0); !r)
      return r;
  }
  return img.close();
}

namespace {

nlohmann::ordered_json to_json(const image_manifest& m) {
  nlohmann::ordered_json files = nlohmann::ordered_json::array();
  for (auto& f : m.files)
    files.push_back({{"name", f.name}, {"sha256", f.sha256}, {"size", f.size}});
  nlohmann::ordered_json j = {{"name", m.name},         {"source", m.source},
                              {"init", m.init},         {"created_ns", m.created_ns},
                              {"packages", m.packages}, {"packages_sha256", m.packages_sha256},
                              {"files", files}};
  if (m.oci) {
    nlohmann::ordered_json layers = nlohmann::ordered_json::array();
    for (auto& l : m.oci->layers)
      layers.push_back({{"digest", l.digest}, {"size", l.size}, {"diff_id", l.diff_id}});
    j["oci"] = {{"reference", m.oci->reference},
                {"manifest_digest", m.oci->manifest_digest},
                {"index_digest", m.oci->index_digest},
                {"platform", m.oci->platform},
                {"layers", layers}};
  }
  if (!m.config.empty())
    j["config"] = {{"env", m.config.env},
                   {"working_dir", m.config.working_dir},
                   {"user", m.config.user},
                   {"entrypoint", m.config.entrypoint},
                   {"cmd", m.config.cmd}};
  return j;
}

} // namespace

expected<std::uint64_t> guest_binaries_size(const guest_binaries& bins) {
  std::uint64_t total = 0;
  for (auto [what, p] : {std::pair{"banger-agent", &bins.agent}, std::pair{"banger-init", &bins.init}}) {
    std::error_code ec;
    auto n = fs::file_size(*p, ec);
    if (ec)
      return make_error(errc::not_found, fmt::format("{}: {}: {}", what, p->string(), ec.message()));
    total += n;
  }
  return total;
}

void report(const progress_fn& progress, const std::string& stage, std::uint64_t done, std::uint64_t total) {
  if (progress)
    progress(stage, done, total);
}

expected<image_manifest> finish(staging& stage, finish_spec spec, const guest_binaries& bins, const fs::path& dest,
                                const progress_fn& progress) {
  auto binaries = guest_binaries_size(bins);
  if (!binaries)
    return std::move(binaries).err();
  auto tree = stage.tree();
  if (::chmod(tree.c_str(), 0755) != 0) // mkfs -d gives the image root the tree's mode
    return sys_error("chmod", tree, errno);
  if (auto r = remove_host_keys(tree); !r)
    return std::move(r).err();

  std::optional<owner> content_owner;
  if (spec.everything_root_owned)
    content_owner = owner{0, 0};
  auto rootfs = stage.out() / "rootfs.ext4";
  auto rootfs_bytes = spec.rootfs_bytes;
  if (rootfs_bytes == 0)
    rootfs_bytes = tree_bytes(tree) * 13 / 10 + 256 * mib + *binaries;
  rootfs_bytes = round_up(rootfs_bytes, 4096);
  report(progress, "rootfs", 0, rootfs_bytes);
  if (auto r = create_image(rootfs, rootfs_bytes, tree, content_owner); !r)
    return make_error(r.err().code, fmt::format("image {}: rootfs.ext4: {}", spec.manifest.name, r.err().message));
  {
    auto img = ext4_image::open(rootfs, true);
    if (!img)
      return std::move(img).err();
    if (auto r = inject(*img, bins); !r)
      return make_error(r.err().code,
                        fmt::format("image {}: injecting banger-init/agent: {}", spec.manifest.name, r.err().message));
  }
  report(progress, "rootfs", rootfs_bytes, rootfs_bytes);

  // The work seed is the image's /root; an image without one gets an empty one.
  auto root = resolve_in_tree(tree, "/root");
  std::error_code ec;
  if (!root || !fs::is_directory(*root, ec)) {
    root = stage.dir() / "empty-root";
    if (::mkdir(root->c_str(), 0700) != 0)
      return sys_error("mkdir", *root, errno);
  }
  auto seed_bytes = spec.work_seed_bytes;
  if (seed_bytes == 0)
    seed_bytes = std::max<std::uint64_t>(16 * mib, tree_bytes(*root) * 13 / 10 + 16 * mib);
  seed_bytes = round_up(seed_bytes, 4096);
  report(progress, "work-seed", 0, seed_bytes);
  if (auto r = create_image(stage.out() / "work-seed.ext4", seed_bytes, *root, content_owner); !r)
    return make_error(r.err().code, fmt::format("image {}: work-seed.ext4: {}", spec.manifest.name, r.err().message));
  report(progress, "work-seed", seed_bytes, seed_bytes);
  return install(stage, std::move(spec.manifest), dest, progress);
}

expected<image_manifest> install(staging& stage, image_manifest m, const fs::path& dest, const progress_fn& progress) {
  m.created_ns =
    std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  m.files.clear();
  for (auto* name : {"rootfs.ext4", "work-seed.ext4"}) { // sorted by name
    report(progress, "checksum", 0, 0);
    auto sum = sha256_file(stage.out() / name);
    if (!sum)
      return std::move(sum).err();
    m.files.push_back({name, *sum, static_cast<std::uint64_t>(fs::file_size(stage.out() / name))});
  }
  if (auto r = write_host_file(stage.out() / "manifest.json", to_json(m).dump(2) + "\n", 0644); !r)
    return std::move(r).err();
  if (::rename(stage.out().c_str(), dest.c_str()) != 0)
    return make_error(errc::operation_failed,
                      fmt::format("rename {} to {}: {}", stage.out().string(), dest.string(), errno_text(errno)));
  report(progress, "done", 1, 1);
  return m;
}

process_result run_tool(const std::vector<std::string>& argv, std::function<void(std::string_view)> on_line,
                        std::chrono::milliseconds timeout) {
  process_options opts;
  const char* path = std::getenv("PATH");
  opts.env = {{"PATH", fmt::format("{}:/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin", path ? path : "")},
              {"LC_ALL", "C"},
              {"DEBIAN_FRONTEND", "noninteractive"}};
  opts.merge_stderr = true;
  opts.on_line = std::move(on_line);
  opts.timeout = timeout;
  return run_process(argv, opts);
}

std::string tail(const std::string& s, std::size_t n) { return s.size() <= n ? s : "..." + s.substr(s.size() - n); }

} // namespace detail

} // namespace banger::guestfs
