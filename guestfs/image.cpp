// Guest image builders (image.hpp): the staging directory, the finishing steps every builder
// shares (ssh host key removal, rootfs.ext4 / work-seed.ext4 creation, in-image injection of
// banger-init and banger-agent, manifest), the busybox and debootstrap builders, and
// verification. Import from a directory or a tar file is in image_import.cpp. Blocking; the
// calling thread does everything (subprocesses are waited for).
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

constexpr std::uint64_t mib = 1024 * 1024;

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

namespace {

expected<std::string> slurp(const fs::path& path) {
  auto r = banger::read_file(path);
  if (!r)
    return std::move(r).err();
  return std::move(*r);
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

/// Deletes /etc/ssh/ssh_host_* from the tree: every VM generates its own on first boot.
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

constexpr std::string_view sshd_dropin = "# Written by banger: root logs in with a key, never a password.\n"
                                         "PermitRootLogin prohibit-password\n"
                                         "PubkeyAuthentication yes\n"
                                         "PasswordAuthentication no\n"
                                         "KbdInteractiveAuthentication no\n";

/// Injects banger's guest side into an open rootfs (paths resolved inside the image): the
/// mount points banger-init needs, /usr/local/sbin/banger-{init,agent}, /sbin/init when the
/// image has none, and the sshd drop-in when it has sshd.
expected<void> inject(ext4_image& img, const std::string& agent, const std::string& init) {
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
  if (auto r = img.write_file("/usr/local/sbin/banger-init", init, 0755, 0, 0); !r)
    return r;
  if (auto r = img.write_file("/usr/local/sbin/banger-agent", agent, 0755, 0, 0); !r)
    return r;
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

nlohmann::ordered_json to_json(const image_manifest& m) {
  nlohmann::ordered_json files = nlohmann::ordered_json::array();
  for (auto& f : m.files)
    files.push_back({{"name", f.name}, {"sha256", f.sha256}, {"size", f.size}});
  return {{"name", m.name},         {"source", m.source},
          {"init", m.init},         {"created_ns", m.created_ns},
          {"packages", m.packages}, {"packages_sha256", m.packages_sha256},
          {"files", files}};
}

void report(const progress_fn& progress, const std::string& stage, std::uint64_t done, std::uint64_t total) {
  if (progress)
    progress(stage, done, total);
}

} // namespace

expected<image_manifest> finish(staging& stage, finish_spec spec, const guest_binaries& bins, const fs::path& dest,
                                const progress_fn& progress) {
  auto agent = slurp(bins.agent);
  if (!agent)
    return make_error(agent.err().code, fmt::format("banger-agent: {}", agent.err().message));
  auto init = slurp(bins.init);
  if (!init)
    return make_error(init.err().code, fmt::format("banger-init: {}", init.err().message));
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
    rootfs_bytes = tree_bytes(tree) * 13 / 10 + 256 * mib + agent->size() + init->size();
  rootfs_bytes = round_up(rootfs_bytes, 4096);
  report(progress, "rootfs", 0, rootfs_bytes);
  if (auto r = create_image(rootfs, rootfs_bytes, tree, content_owner); !r)
    return make_error(r.err().code, fmt::format("image {}: rootfs.ext4: {}", spec.manifest.name, r.err().message));
  {
    auto img = ext4_image::open(rootfs, true);
    if (!img)
      return std::move(img).err();
    if (auto r = inject(*img, *agent, *init); !r)
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

  auto& m = spec.manifest;
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

} // namespace detail

namespace {

using detail::staging;
using detail::sys_error;
using detail::write_host_file;

/// Runs argv[0] (a path) with stdin from /dev/null, PATH extended with the sbin directories and
/// LC_ALL=C, output and errors interleaved, calling `on_line` for each output line.
process_result run_tool(const std::vector<std::string>& argv, std::function<void(std::string_view)> on_line = {},
                        std::chrono::milliseconds timeout = std::chrono::minutes(10)) {
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

std::string tail(const std::string& s, std::size_t n = 2000) {
  return s.size() <= n ? s : "..." + s.substr(s.size() - n);
}

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

bool valid_package_name(std::string_view n) {
  if (n.size() < 2 || n.size() > 100 ||
      !(std::islower(static_cast<unsigned char>(n[0])) || std::isdigit(static_cast<unsigned char>(n[0]))))
    return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
  });
}

expected<void> validate_debootstrap(const debootstrap_spec& spec) {
  auto bad = [](std::string why) { return make_error(errc::bad_request, "debootstrap: " + why); };
  if (spec.suite.empty() || spec.suite.size() > 64 || !std::all_of(spec.suite.begin(), spec.suite.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
      }))
    return bad(fmt::format("suite {} is not a Debian suite name (e.g. bookworm)", quoted(spec.suite)));
  bool scheme =
    spec.mirror.starts_with("http://") || spec.mirror.starts_with("https://") || spec.mirror.starts_with("file:///");
  if (!scheme || spec.mirror.size() > 1024 || std::any_of(spec.mirror.begin(), spec.mirror.end(), [](char c) {
        return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == ',';
      }))
    return bad(fmt::format("mirror {} is not an http(s):// or file:/// URL", quoted(spec.mirror)));
  for (auto& p : spec.packages)
    if (!valid_package_name(p))
      return bad(fmt::format("{} is not a Debian package name", quoted(p)));
  return {};
}

/// Installed packages from the tree's dpkg status file, sorted.
expected<std::vector<std::string>> installed_packages(const fs::path& tree) {
  auto status = banger::read_file(tree / "var/lib/dpkg/status");
  if (!status)
    return std::move(status).err();
  std::set<std::string> names;
  std::istringstream in(*status);
  std::string pkg;
  bool installed = false;
  auto flush = [&] {
    if (!pkg.empty() && installed)
      names.insert(pkg);
    pkg.clear();
    installed = false;
  };
  for (std::string line; std::getline(in, line);) {
    if (line.empty())
      flush();
    else if (line.starts_with("Package: "))
      pkg = line.substr(9);
    else if (line.starts_with("Status: "))
      installed = line.ends_with(" installed");
  }
  flush();
  return std::vector<std::string>(names.begin(), names.end());
}

/// Empties `guest_dir` in the tree, keeping entries named in `keep`.
void empty_dir(const fs::path& tree, std::string_view guest_dir, std::initializer_list<std::string_view> keep = {}) {
  auto dir = detail::resolve_in_tree(tree, guest_dir);
  std::error_code ec;
  if (!dir || !fs::is_directory(*dir, ec))
    return;
  std::vector<fs::path> doomed;
  for (auto& e : fs::directory_iterator(*dir, ec))
    if (std::find(keep.begin(), keep.end(), e.path().filename().string()) == keep.end())
      doomed.push_back(e.path());
  for (auto& p : doomed)
    fs::remove_all(p, ec);
}

/// Removes device nodes, fifos and sockets (debootstrap makes some in /dev): banger-init mounts
/// devtmpfs on /dev, and the tar import and the cache refuse them.
void drop_special_files(const fs::path& tree) {
  std::error_code ec;
  std::vector<fs::path> doomed;
  for (auto it = fs::recursive_directory_iterator(tree, fs::directory_options::none, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) == 0 && !S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
      doomed.push_back(it->path());
  }
  for (auto& p : doomed)
    ::unlink(p.c_str());
}

/// Apt lists and caches, documentation, man pages and locales, special files: nothing a VM
/// needs at run time.
void trim_debootstrap_tree(const fs::path& tree) {
  empty_dir(tree, "/var/lib/apt/lists", {"partial", "lock"});
  empty_dir(tree, "/var/cache/apt/archives", {"partial", "lock"});
  if (auto apt = detail::resolve_in_tree(tree, "/var/cache/apt")) {
    std::error_code ec;
    for (auto& e : fs::directory_iterator(*apt, ec))
      if (e.path().extension() == ".bin")
        fs::remove(e.path(), ec);
  }
  for (auto* d : {"/usr/share/doc", "/usr/share/man", "/usr/share/info", "/usr/share/locale"})
    empty_dir(tree, d);
  drop_special_files(tree);
}

/// The packages debootstrap is asked to --include: the defaults, then the spec's, once each.
std::vector<std::string> debootstrap_packages(const debootstrap_spec& spec) {
  std::vector<std::string> packages{"openssh-server", "ca-certificates", "curl", "git", "iproute2"};
  for (auto& p : spec.packages)
    if (std::find(packages.begin(), packages.end(), p) == packages.end())
      packages.push_back(p);
  return packages;
}

fs::path debootstrap_cache_file(const debootstrap_spec& spec) {
  return spec.cache_dir /
         fmt::format("debootstrap-{}-{}.tar.zst", spec.suite, debootstrap_cache_key(spec).substr(0, 16));
}

/// Fills the (missing) tree from the cache file and returns its installed packages, or reports
/// why the file is unusable (missing files silently), removes whatever was extracted and
/// returns std::nullopt: the caller runs debootstrap. An error only when the tree cannot be
/// cleaned up.
expected<std::optional<std::vector<std::string>>> restore_from_cache(const fs::path& file, const fs::path& tree,
                                                                     const progress_fn& progress) {
  std::error_code ec;
  if (fs::symlink_status(file, ec).type() == fs::file_type::not_found)
    return std::optional<std::vector<std::string>>();
  auto unusable = [&](const std::string& why) -> expected<std::optional<std::vector<std::string>>> {
    detail::report(progress, fmt::format("cache: {} unusable, running debootstrap: {}", file.string(), why), 0, 0);
    std::error_code rm;
    fs::remove_all(tree, rm);
    if (rm)
      return sys_error("remove", tree, rm.value());
    return std::optional<std::vector<std::string>>();
  };
  detail::report(progress, "cache", 0, 0);
  if (::mkdir(tree.c_str(), 0755) != 0)
    return sys_error("mkdir", tree, errno);
  // Members are written by absolute path under the tree: no host links in that prefix (as the
  // tar import does).
  auto canonical = fs::canonical(tree, ec);
  if (ec)
    return sys_error("realpath", tree, ec.value());
  if (auto r = detail::extract_tar(file, canonical, fmt::format("debootstrap cache {}", file.string()), true, "cache",
                                   progress);
      !r)
    return unusable(r.err().message);
  auto installed = installed_packages(tree);
  if (!installed)
    return unusable(installed.err().message);
  if (installed->empty())
    return unusable("its dpkg status lists no installed package");
  detail::report(progress, "cache-hit", 0, 0);
  return std::optional(std::move(*installed));
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

std::string debootstrap_cache_key(const debootstrap_spec& spec) {
  auto packages = debootstrap_packages(spec);
  std::sort(packages.begin(), packages.end());
  auto text = fmt::format("banger debootstrap cache format {}\nsuite {}\nmirror {}\n", debootstrap_cache_format,
                          spec.suite, spec.mirror);
  for (auto& p : packages)
    text += fmt::format("package {}\n", p);
  return sha256_hex(text);
}

expected<image_manifest> build_debootstrap_image(const std::string& name, const debootstrap_spec& spec,
                                                 const guest_binaries& bins, const fs::path& dest,
                                                 const progress_fn& progress) {
  if (auto r = validate_debootstrap(spec); !r)
    return std::move(r).err();
  if (::geteuid() != 0)
    return make_error(errc::unauthorized, fmt::format("image {}: debootstrap needs root (it creates device nodes "
                                                      "and chroots); run the build as root",
                                                      name));
  auto stage = staging::begin(dest);
  if (!stage)
    return std::move(stage).err();
  auto tree = stage->tree();
  std::optional<fs::path> cache_file;
  if (!spec.cache_dir.empty())
    cache_file = debootstrap_cache_file(spec);
  std::optional<std::vector<std::string>> installed;
  if (cache_file) {
    auto cached = restore_from_cache(*cache_file, tree, progress);
    if (!cached)
      return make_error(cached.err().code, fmt::format("image {}: {}", name, cached.err().message));
    installed = std::move(*cached);
  }
  bool hit = installed.has_value();

  if (!hit) {
    auto debootstrap = find_program("debootstrap");
    if (!debootstrap)
      return make_error(errc::unavailable, "debootstrap not found: install the debootstrap package");
    std::string include;
    for (auto& p : debootstrap_packages(spec))
      include += (include.empty() ? "" : ",") + p;
    std::uint64_t lines = 0;
    detail::report(progress, "debootstrap", 0, 0);
    auto ran = run_tool(
      {debootstrap->string(), "--variant=minbase", "--include=" + include, spec.suite, tree.string(), spec.mirror},
      [&](std::string_view) { detail::report(progress, "debootstrap", ++lines, 0); }, std::chrono::hours(1));
    if (ran.exit_code != 0)
      return make_error(errc::operation_failed,
                        fmt::format("image {}: debootstrap {} from {} exited with {}{} (is the mirror reachable?): {}",
                                    name, spec.suite, spec.mirror, ran.exit_code, ran.timed_out ? " (timed out)" : "",
                                    tail(ran.out)));
    if (!detail::unmount_below(tree))
      return make_error(errc::operation_failed,
                        fmt::format("image {}: debootstrap left mounts below {}", name, tree.string()));
    auto listed = installed_packages(tree);
    if (!listed)
      return make_error(listed.err().code, fmt::format("image {}: {}", name, listed.err().message));
    installed = std::move(*listed);
  }
  trim_debootstrap_tree(tree);
  if (auto r = detail::remove_host_keys(tree); !r)
    return std::move(r).err();
  // The cache holds Debian's tree only: written before anything of banger's goes in.
  if (cache_file && !hit)
    if (auto r = detail::write_cache_tar(tree, *cache_file, progress); !r)
      detail::report(progress, fmt::format("cache: not written: {}", r.err().message), 0, 0);
  if (auto etc = detail::resolve_in_tree(tree, "/etc")) {
    if (auto r = write_host_file(*etc / "hostname", "banger\n", 0644); !r)
      return std::move(r).err();
    if (auto r =
          write_host_file(*etc / "hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n", 0644);
        !r)
      return std::move(r).err();
  }

  detail::finish_spec fin;
  fin.manifest.name = name;
  fin.manifest.source = "debootstrap:" + spec.suite;
  fin.manifest.init = "banger-init";
  fin.manifest.packages = std::move(*installed);
  std::string joined;
  for (auto& p : fin.manifest.packages)
    joined += (joined.empty() ? "" : "\n") + p;
  fin.manifest.packages_sha256 = sha256_hex(joined);
  return detail::finish(*stage, std::move(fin), bins, dest, progress);
}

expected<image_manifest> verify_image_dir(const fs::path& dir) {
  auto bad = [&](std::string why) {
    return make_error(errc::bad_request, fmt::format("image directory {}: {}", dir.string(), why));
  };
  auto text = banger::read_file(dir / "manifest.json");
  if (!text)
    return bad(fmt::format("no readable manifest.json: {}", text.err().message));
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("files") || !j["files"].is_array())
    return bad("manifest.json is not an image manifest");
  auto text_field = [&](const nlohmann::json& o, const char* key) -> std::optional<std::string> {
    if (!o.contains(key))
      return std::string();
    if (!o[key].is_string())
      return std::nullopt;
    return o[key].get<std::string>();
  };
  image_manifest m;
  auto name = text_field(j, "name"), source = text_field(j, "source"), init = text_field(j, "init"),
       packages_sha256 = text_field(j, "packages_sha256");
  if (!name || !source || !init || !packages_sha256)
    return bad("manifest.json has a non-text name, source, init or packages_sha256");
  m.name = *name;
  m.source = *source;
  m.init = *init;
  m.packages_sha256 = *packages_sha256;
  if (j.contains("created_ns")) {
    if (!j["created_ns"].is_number_integer())
      return bad("manifest.json has a non-integer created_ns");
    m.created_ns = j["created_ns"].get<std::int64_t>();
  }
  if (j.contains("packages")) {
    if (!j["packages"].is_array())
      return bad("manifest.json has a packages field that is not a list");
    for (auto& p : j["packages"]) {
      if (!p.is_string())
        return bad("manifest.json lists a package that is not text");
      m.packages.push_back(p.get<std::string>());
    }
  }
  for (auto& f : j["files"]) {
    if (!f.is_object())
      return bad("manifest.json has a file entry that is not an object");
    auto fname = text_field(f, "name"), sum = text_field(f, "sha256");
    if (!fname || !sum || !f.contains("size") || !f["size"].is_number_unsigned())
      return bad("manifest.json has a file entry without a text name and sha256 and a size");
    m.files.push_back({*fname, *sum, f["size"].get<std::uint64_t>()});
  }
  std::set<std::string> names;
  for (auto& f : m.files) {
    if (f.name.empty() || f.name.find('/') != std::string::npos || f.name == "." || f.name == "..")
      return bad(fmt::format("manifest.json names an unsafe file {}", quoted(f.name)));
    names.insert(f.name);
  }
  for (auto* required : {"rootfs.ext4", "work-seed.ext4"})
    if (!names.count(required))
      return bad(fmt::format("manifest.json does not list {}", required));
  for (auto& f : m.files) {
    std::error_code ec;
    auto size = fs::file_size(dir / f.name, ec);
    if (ec)
      return bad(fmt::format("{} is missing: {}", f.name, ec.message()));
    if (size != f.size)
      return bad(
        fmt::format("{} is {} bytes, the manifest says {}: the image is corrupt, rebuild it", f.name, size, f.size));
    auto sum = sha256_file(dir / f.name);
    if (!sum)
      return std::move(sum).err();
    if (*sum != f.sha256)
      return bad(fmt::format("{} has sha256 {}, the manifest says {}: the image is corrupt, rebuild it", f.name, *sum,
                             f.sha256));
  }
  return m;
}

} // namespace banger::guestfs
