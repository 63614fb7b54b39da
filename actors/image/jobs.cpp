// See jobs.hpp.
#include "actors/image/jobs.hpp"

#include <atomic>
#include <fstream>
#include <random>
#include <unistd.h>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "common/process.hpp"
#include "common/sha256.hpp"
#include "common/subprocess.hpp"
#include "common/text.hpp"
#include "fetch/blob_cache.hpp"
#include "fetch/bundle.hpp"
#include "fetch/catalog.hpp"
#include "fetch/http.hpp"
#include "fetch/oci_reference.hpp"
#include "fetch/pull.hpp"
#include "fetch/registry.hpp"
#include "guestfs/bzimage.hpp"
#include "guestfs/image.hpp"
#include "guestfs/initramfs.hpp"
#include "guestfs/kernel_dir.hpp"

namespace banger::actors {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string artifact_source::key() const {
  switch (kind) {
  case type::deb: return "deb:" + path;
  case type::apt: return "apt:" + package;
  case type::catalog: return "catalog:" + url;
  case type::vmlinux:
    return "vmlinux:" + path + (initrd.empty() ? "" : "+initrd:" + initrd) +
           (modules.empty() ? "" : "+modules:" + modules);
  case type::busybox: return "busybox";
  case type::debootstrap: {
    std::string k = "debootstrap:" + suite;
    for (const auto& p : packages)
      k += (k.back() == ':' || k.find('+') == std::string::npos ? "+" : ",") + p;
    return k;
  }
  case type::dir: return "dir:" + path;
  case type::tar: return "tar:" + path;
  case type::registry: return "registry:" + reference + (platform.empty() ? "" : "+platform:" + platform);
  }
  return "?";
}

expected<void> check_source(artifact_kind k, const artifact_source& s) {
  bool kernel_source = s.kind == artifact_source::type::deb || s.kind == artifact_source::type::apt ||
                       s.kind == artifact_source::type::vmlinux || s.kind == artifact_source::type::catalog;
  if (s.kind == artifact_source::type::registry) {
    if (auto r = fetch::parse_oci_reference(s.reference); !r)
      return r.err();
    if (!s.platform.empty())
      if (auto p = fetch::parse_platform(s.platform); !p)
        return p.err();
  }
  if (s.kind == artifact_source::type::catalog)
    if (auto u = fetch::check_http_url(s.url); !u)
      return u.err();
  if (kernel_source != (k == artifact_kind::kernel))
    return make_error(errc::bad_request, fmt::format("{} cannot be built from {}", to_string(k), s.key()));
  if ((s.kind == artifact_source::type::deb || s.kind == artifact_source::type::vmlinux ||
       s.kind == artifact_source::type::dir || s.kind == artifact_source::type::tar) &&
      (s.path.empty() || s.path[0] != '/'))
    return make_error(errc::bad_request, fmt::format("{} needs an absolute path, got \"{}\"", s.key(), s.path));
  if (s.kind == artifact_source::type::apt &&
      (s.package.empty() ||
       s.package.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789.+-") != std::string::npos))
    return make_error(errc::bad_request, fmt::format("\"{}\" is not a Debian package name", s.package));
  for (const auto& p : s.packages)
    if (p.empty() || p.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789.+-") != std::string::npos)
      return make_error(errc::bad_request, fmt::format("\"{}\" is not a Debian package name", p));
  return {};
}

namespace {

std::string random_suffix() {
  static std::atomic<unsigned> counter{0};
  std::random_device rd;
  return fmt::format("{}-{}-{:08x}", ::getpid(), counter++, rd());
}

struct staging {
  fs::path root;
  ~staging() {
    std::error_code ec;
    if (!root.empty())
      fs::remove_all(root, ec);
  }
};

expected<std::uint64_t> manifest_bytes(const fs::path& manifest) {
  auto text = read_file(manifest);
  if (!text)
    return std::move(text).err();
  auto j = json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.contains("files"))
    return make_error(errc::internal, fmt::format("{} is not a manifest", manifest.string()));
  std::uint64_t total = 0;
  for (const auto& f : j["files"])
    total += f.value("size", std::uint64_t{0});
  return total;
}

/// --vmlinux: the file as given (converted to a PVH ELF when it is a convertible bzImage), an
/// initramfs as given or built from a modules directory, and a manifest like kernel_dir's.
expected<std::string> import_vmlinux(const std::string& name, const artifact_source& s, const fs::path& dest,
                                     const job_progress& progress) {
  auto image = read_file(s.path);
  if (!image)
    return std::move(image).err();
  std::error_code ec;
  fs::create_directories(dest, ec);
  if (ec)
    return make_error(errc::operation_failed, fmt::format("mkdir {}: {}", dest.string(), ec.message()));
  std::string boot_name, format;
  if (guestfs::has_pvh_note(*image)) {
    boot_name = "vmlinux";
    format = "pvh-elf";
  } else {
    progress("convert", 0, 0);
    auto conv = guestfs::convert_to_pvh(*image);
    if (!conv)
      return std::move(conv).err();
    if (conv->vmlinux) {
      *image = std::move(*conv->vmlinux);
      boot_name = "vmlinux";
      format = "pvh-elf";
    } else {
      boot_name = "bzImage";
      format = "bzimage";
    }
  }
  {
    std::ofstream out(dest / boot_name, std::ios::binary);
    out.write(image->data(), static_cast<std::streamsize>(image->size()));
    if (!out)
      return make_error(errc::operation_failed, fmt::format("write {}", (dest / boot_name).string()));
  }
  std::vector<std::string> files{boot_name};
  if (!s.initrd.empty()) {
    fs::copy_file(s.initrd, dest / "initrd.img", ec);
    if (ec)
      return make_error(errc::operation_failed, fmt::format("copy {}: {}", s.initrd, ec.message()));
    files.push_back("initrd.img");
  } else if (!s.modules.empty()) {
    progress("initramfs", 0, 0);
    auto mods = guestfs::resolve_modules(s.modules, guestfs::guest_modules());
    if (!mods)
      return std::move(mods).err();
    guestfs::initramfs_spec spec;
    spec.modules = *mods;
    if (auto r = guestfs::build_initramfs(spec, dest / "initrd.img"); !r)
      return std::move(r).err();
    files.push_back("initrd.img");
  }
  json m = {{"name", name},
            {"kernel_version", fs::path(s.modules).filename().string()},
            {"source", s.key()},
            {"format", format},
            {"files", json::array()}};
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    auto sha = sha256_file(dest / f);
    if (!sha)
      return std::move(sha).err();
    m["files"].push_back({{"name", f}, {"sha256", *sha}, {"size", fs::file_size(dest / f)}});
  }
  std::ofstream(dest / "manifest.json") << m.dump(2) << "\n";
  return fmt::format("{} {}", s.path, format);
}

/// `image pull`: resolve the reference, fetch the config and every layer into the blob cache
/// (verified, resumable, shared with other pulls), then flatten them into a new image.
expected<std::string> pull_image(const artifact_store& store, const std::string& name, const artifact_source& s,
                                 const fs::path& out, const job_progress& progress) {
  auto ref = fetch::parse_oci_reference(s.reference);
  if (!ref)
    return std::move(ref).err();
  fetch::platform_spec platform; // linux/amd64, the only host banger runs on
  if (!s.platform.empty()) {
    auto p = fetch::parse_platform(s.platform);
    if (!p)
      return std::move(p).err();
    platform = *p;
  }
  fetch::registry_options opts;
  opts.plain_http = s.plain_http;
  if (!s.username.empty())
    opts.creds = fetch::credentials{s.username, s.password};
  fetch::registry_client client(*ref, opts);
  progress("resolve", 0, 0);
  auto img = client.resolve(platform);
  if (!img)
    return std::move(img).err();
  auto config = client.fetch_small_blob(img->config);
  if (!config)
    return std::move(config).err();
  if (img->platform.empty()) {
    // The reference named one manifest: its platform is the config's, and must be the one asked for.
    auto c = json::parse(*config, nullptr, false);
    std::string os = c.is_object() && c.value("os", json()).is_string() ? c["os"].get<std::string>() : "";
    std::string arch =
      c.is_object() && c.value("architecture", json()).is_string() ? c["architecture"].get<std::string>() : "";
    if (!os.empty() && !arch.empty()) {
      if (os != platform.os || arch != platform.architecture)
        return make_error(errc::bad_request,
                          fmt::format("{} is an image for {}/{}, not {}; pick another tag{}", ref->str(), quoted(os),
                                      quoted(arch), platform.str(),
                                      s.platform.empty() ? " (or --platform to pull it anyway)" : ""));
      img->platform = os + "/" + arch;
    }
  }

  fetch::blob_cache cache(store.cache / "blobs");
  std::vector<fetch::cached_blob> blobs;
  std::uint64_t total = 0, before = 0, fetched = 0;
  for (const auto& l : img->layers)
    total += l.size;
  for (std::size_t i = 0; i < img->layers.size(); ++i) {
    const auto& d = img->layers[i];
    auto stage = fmt::format("download {}/{} ({})", i + 1, img->layers.size(), human_bytes(d.size));
    progress(stage, before, total);
    auto blob = cache.get(d, [&](int fd, std::uint64_t have) {
      return client.fetch_blob(
        d, fd, have, [&, stage](std::uint64_t done, std::uint64_t) { progress(stage, before + done, total); });
    });
    if (!blob)
      return std::move(blob).err();
    if (blob->downloaded)
      fetched += d.size - blob->resumed_from;
    before += d.size;
    blobs.push_back(std::move(*blob));
  }

  guestfs::oci_image_spec spec;
  spec.name = name;
  spec.max_entries_per_layer = store.pulls.max_layer_entries;
  spec.max_layer_bytes = store.pulls.max_layer_bytes;
  spec.max_rootfs_bytes = store.pulls.max_rootfs_bytes;
  spec.config_json = std::move(*config);
  spec.origin.reference = ref->str();
  spec.origin.manifest_digest = img->manifest_digest;
  spec.origin.index_digest = img->index_digest;
  spec.origin.platform = img->platform;
  for (std::size_t i = 0; i < img->layers.size(); ++i) {
    auto comp = fetch::compression_of(img->layers[i]);
    if (!comp)
      return std::move(comp).err();
    guestfs::oci_layer_input in;
    in.fd = blobs[i].fd.get();
    in.codec = *comp == fetch::layer_compression::none   ? guestfs::layer_codec::none
               : *comp == fetch::layer_compression::gzip ? guestfs::layer_codec::gzip
                                                         : guestfs::layer_codec::zstd;
    in.record = {img->layers[i].digest, img->layers[i].size, ""};
    spec.layers.push_back(in);
  }
  guestfs::guest_binaries bins{store.agent_bin, store.init_bin};
  auto m = guestfs::build_oci_image(spec, bins, out, progress);
  if (!m)
    return std::move(m).err();
  return fmt::format("{} {} ({} layer{}, {} downloaded)", ref->str(), img->manifest_digest.substr(0, 19),
                     img->layers.size(), img->layers.size() == 1 ? "" : "s", human_bytes(fetched));
}

} // namespace

expected<std::string> resolve_kernel_package(const std::string& package) {
  auto r = run_process({"apt-cache", "depends", package});
  if (r.exit_code != 0)
    return make_error(errc::not_found, fmt::format("apt-cache depends {}: {}; is the package name right, and has "
                                                   "`apt-get update` run?",
                                                   package, r.err.empty() ? r.out : r.err));
  // A package that ships a kernel image depends on no other linux-image-*; a metapackage does.
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) {
    auto at = line.find("Depends: linux-image-");
    if (at == std::string::npos)
      continue;
    std::string dep = line.substr(at + 9);
    while (!dep.empty() && (dep.back() == ' ' || dep.back() == '\r'))
      dep.pop_back();
    if (dep.find("-unsigned") == std::string::npos && dep.find('<') == std::string::npos)
      return resolve_kernel_package(dep);
  }
  return package;
}

expected<job_result> run_artifact_job(const artifact_store& store, artifact_kind k, const std::string& name,
                                      const artifact_source& source, const job_progress& progress) {
  if (auto v = validate_artifact_name(k, name); !v)
    return v.err();
  if (auto c = check_source(k, source); !c)
    return c.err();
  auto name_dir = store.name_dir(k, name);
  std::error_code ec;
  fs::create_directories(name_dir, ec);
  if (ec)
    return make_error(errc::operation_failed, fmt::format("mkdir {}: {}", name_dir.string(), ec.message()));
  // A first version that fails leaves no name directory either: declared before the staging
  // directory, this runs after it is gone, and remove() takes only an empty directory.
  struct remove_if_empty {
    fs::path dir;
    ~remove_if_empty() {
      std::error_code ignored;
      fs::remove(dir, ignored);
    }
  } name_guard{name_dir};
  staging stage{name_dir / (".staging-" + random_suffix())};
  fs::create_directory(stage.root, ec);
  if (ec)
    return make_error(errc::operation_failed, fmt::format("mkdir {}: {}", stage.root.string(), ec.message()));
  fs::path out = stage.root / "version";
  std::string summary;
  guestfs::guest_binaries bins{store.agent_bin, store.init_bin};
  guestfs::progress_fn image_progress = progress;

  switch (source.kind) {
  case artifact_source::type::deb:
  case artifact_source::type::apt: {
    fs::path deb = source.path;
    if (source.kind == artifact_source::type::apt) {
      progress("resolve", 0, 0);
      auto pkg = resolve_kernel_package(source.package);
      if (!pkg)
        return std::move(pkg).err();
      progress("download", 0, 0);
      fs::path dl = stage.root / "download";
      fs::create_directory(dl, ec);
      process_options o;
      o.cwd = dl;
      o.timeout = std::chrono::minutes(15);
      auto r = run_process({"apt-get", "download", "-q", *pkg}, o);
      if (r.exit_code != 0)
        return make_error(errc::unavailable,
                          fmt::format("apt-get download {} failed: {}", *pkg, r.err.empty() ? r.out : r.err));
      for (const auto& e : fs::directory_iterator(dl))
        if (e.path().extension() == ".deb")
          deb = e.path();
      if (deb.empty())
        return make_error(errc::operation_failed, fmt::format("apt-get download {} left no .deb", *pkg));
    }
    progress("extract", 0, 0);
    guestfs::kernel_dir_spec spec;
    spec.name = name;
    spec.source = source.key();
    auto m = guestfs::import_kernel_deb(deb, spec, out);
    if (!m)
      return std::move(m).err();
    summary = fmt::format("{} {}", m->kernel_version, guestfs::to_string(m->format));
    break;
  }
  case artifact_source::type::catalog: {
    progress("catalog", 0, 0);
    auto cat = fetch::fetch_catalog(source.url);
    if (!cat)
      return std::move(cat).err();
    auto entry = cat->find(name);
    if (!entry)
      return std::move(entry).err();
    fetch::pull_options opts;
    opts.progress = [&progress](std::uint64_t done, std::uint64_t total) { progress("download", done, total); };
    auto pulled = fetch::pull_bundle(*entry, out, opts);
    if (!pulled)
      return std::move(pulled).err();
    progress("verify", 0, 0);
    auto m = guestfs::verify_kernel_dir(out);
    if (!m)
      return std::move(m).err();
    summary = fmt::format("{} {} from {}", m->kernel_version, guestfs::to_string(m->format), entry->url);
    break;
  }
  case artifact_source::type::vmlinux: {
    auto s = import_vmlinux(name, source, out, progress);
    if (!s)
      return std::move(s).err();
    summary = *s;
    break;
  }
  case artifact_source::type::busybox: {
    auto m = guestfs::build_busybox_image(name, bins, out, image_progress);
    if (!m)
      return std::move(m).err();
    summary = "busybox";
    break;
  }
  case artifact_source::type::debootstrap: {
    guestfs::debootstrap_spec spec;
    spec.suite = source.suite;
    spec.packages = source.packages;
    if (!store.cache.empty())
      spec.cache_dir = store.cache / "debootstrap";
    auto m = guestfs::build_debootstrap_image(name, spec, bins, out, image_progress);
    if (!m)
      return std::move(m).err();
    summary = fmt::format("debootstrap {} ({} packages)", source.suite, m->packages.size());
    break;
  }
  case artifact_source::type::registry: {
    auto s = pull_image(store, name, source, out, progress);
    if (!s)
      return std::move(s).err();
    summary = *s;
    break;
  }
  case artifact_source::type::dir:
  case artifact_source::type::tar: {
    auto m = source.kind == artifact_source::type::dir
               ? guestfs::import_dir_image(name, source.path, bins, out, image_progress)
               : guestfs::import_tar_image(name, source.path, bins, out, image_progress);
    if (!m)
      return std::move(m).err();
    summary = source.key();
    break;
  }
  }

  progress("install", 0, 0);
  auto sha = sha256_file(out / "manifest.json");
  if (!sha)
    return std::move(sha).err();
  auto bytes = manifest_bytes(out / "manifest.json");
  if (!bytes)
    return std::move(bytes).err();
  job_result res{sha->substr(0, 16), *sha, *bytes, {}};
  res.summary = fmt::format("{}, {}", summary, human_bytes(*bytes));
  auto final_dir = store.version_dir(k, name, res.version_id);
  if (!fs::exists(final_dir)) {
    fs::rename(out, final_dir, ec);
    if (ec)
      return make_error(errc::operation_failed,
                        fmt::format("rename {} to {}: {}", out.string(), final_dir.string(), ec.message()));
  }
  return res;
}

expected<export_result> export_kernel_bundle(const artifact_store& store, const std::string& name,
                                             const std::string& id, const fs::path& out) {
  if (!out.is_absolute())
    return make_error(errc::bad_request, fmt::format("bundle path {} must be absolute", out.string()));
  auto dir = store.version_dir(artifact_kind::kernel, name, id);
  auto m = guestfs::verify_kernel_dir(dir);
  if (!m)
    return std::move(m).err();
  auto files = fetch::list_bundle_files(dir);
  if (!files)
    return std::move(files).err();
  auto written = fetch::write_bundle(dir, *files, out);
  if (!written)
    return std::move(written).err();
  fetch::catalog_entry entry;
  entry.name = name;
  entry.version = m->kernel_version.empty() ? id : m->kernel_version;
  entry.url = out.filename().string();
  entry.sha256 = written->sha256;
  entry.size = written->size;
  auto entry_json = fetch::catalog_entry_json(entry);
  if (!entry_json) {
    std::error_code ec;
    fs::remove(out, ec);
    return std::move(entry_json).err();
  }
  // Merge into catalog.json beside the bundle: same name and arch replaced, others kept.
  fs::path cat_path = out.parent_path() / "catalog.json";
  std::vector<fetch::catalog_entry> entries;
  if (auto existing = read_file(cat_path)) {
    auto parsed = fetch::parse_catalog(*existing, "http://localhost/catalog.json");
    if (!parsed)
      return make_error(errc::bad_request, fmt::format("{} exists but is not a catalog: {}; move it away",
                                                       cat_path.string(), parsed.err().message));
    for (auto& e : parsed->kernels) {
      if (e.name == entry.name && e.arch == entry.arch)
        continue;
      // Parsing resolved relative urls against the placeholder: make them relative again.
      if (e.url.rfind("http://localhost/", 0) == 0)
        e.url = e.url.substr(17);
      entries.push_back(e);
    }
  }
  entries.push_back(entry);
  auto cat = fetch::catalog_json(entries);
  if (!cat)
    return std::move(cat).err();
  fs::path tmp = cat_path;
  tmp += ".tmp";
  {
    std::ofstream f(tmp);
    f << *cat;
    if (!f)
      return make_error(errc::operation_failed, fmt::format("write {}", tmp.string()));
  }
  std::error_code ec;
  fs::rename(tmp, cat_path, ec);
  if (ec)
    return make_error(errc::operation_failed, fmt::format("rename {}: {}", cat_path.string(), ec.message()));
  return export_result{*entry_json, cat_path.string()};
}

expected<void> remove_artifact_files(const artifact_store& store, artifact_kind k, const std::string& name) {
  if (auto v = validate_artifact_name(k, name); !v)
    return v;
  std::error_code ec;
  fs::remove_all(store.name_dir(k, name), ec);
  if (ec)
    return make_error(errc::operation_failed,
                      fmt::format("remove {}: {}", store.name_dir(k, name).string(), ec.message()));
  return {};
}

} // namespace banger::actors
