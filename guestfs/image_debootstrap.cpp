// The debootstrap image builder (image.hpp): a Debian tree from debootstrap --variant=minbase,
// or from the debootstrap cache when it holds a usable one (image.hpp draws the cache file;
// image_cache.cpp writes it, image_import.cpp's extract_tar reads it), trimmed and finished like
// every other build (image.cpp). Needs root. Blocking; the calling thread does everything
// (debootstrap is waited for, up to an hour).
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <fmt/format.h>
#include <set>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

#include "common/process.hpp"
#include "common/sha256.hpp"
#include "common/subprocess.hpp"
#include "common/text.hpp"
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

} // namespace banger::guestfs
