// Kernel directory assembly, manifest writing and verification. See kernel_dir.hpp for the
// layout. nlohmann json stays in this file.
#include "guestfs/kernel_dir.hpp"

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <fmt/format.h>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <unistd.h>

#include "common/process.hpp"
#include "common/sha256.hpp"
#include "common/text.hpp"
#include "guestfs/bzimage.hpp"
#include "guestfs/deb.hpp"

namespace banger::guestfs {

namespace {

namespace fs = std::filesystem;

expected<void> write_file(const fs::path& path, std::string_view bytes) {
  unique_fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd)
    return make_error(errc::operation_failed, fmt::format("create {}: {}", path.string(), errno_text(errno)));
  for (std::size_t done = 0; done < bytes.size();) {
    ssize_t n = ::write(fd.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0)
      return make_error(errc::operation_failed, fmt::format("write {}: {}", path.string(), errno_text(errno)));
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd.get()) != 0)
    return make_error(errc::operation_failed, fmt::format("fsync {}: {}", path.string(), errno_text(errno)));
  return {};
}

/// Removes a scratch directory unless committed.
struct scratch {
  fs::path path;
  bool committed = false;
  ~scratch() {
    std::error_code ec;
    if (!path.empty() && !committed)
      fs::remove_all(path, ec);
  }
};

expected<fs::path> make_scratch_beside(const fs::path& dest, std::string_view tag) {
  fs::path parent = dest.parent_path().empty() ? fs::path(".") : dest.parent_path();
  std::string tmpl = (parent / fmt::format("{}.{}-XXXXXX", dest.filename().string(), tag)).string();
  if (!::mkdtemp(tmpl.data()))
    return make_error(errc::operation_failed, fmt::format("mkdtemp {}: {}", tmpl, errno_text(errno)));
  return fs::path(tmpl);
}

/// The one boot/vmlinuz-VER in the tree, and VER.
expected<std::pair<fs::path, std::string>> find_vmlinuz(const fs::path& root) {
  std::vector<fs::path> found;
  std::error_code ec;
  for (auto* boot : {"boot", "usr/boot"})
    for (auto it = fs::directory_iterator(root / boot, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
      if (it->path().filename().string().starts_with("vmlinuz-") && it->is_regular_file())
        found.push_back(it->path());
  if (found.size() != 1)
    return make_error(errc::bad_request,
                      fmt::format("expected exactly one boot/vmlinuz-* in {}, found {}: is this a linux-image package?",
                                  root.string(), found.size()));
  auto version = found[0].filename().string().substr(8);
  return std::pair{found[0], version};
}

} // namespace

std::string_view to_string(kernel_format f) { return f == kernel_format::pvh_elf ? "pvh-elf" : "bzimage"; }

expected<kernel_manifest> assemble_kernel_dir(const kernel_dir_spec& spec, const fs::path& dest) {
  std::error_code ec;
  if (fs::symlink_status(dest, ec).type() != fs::file_type::not_found)
    return make_error(errc::already_exists, fmt::format("kernel directory {} already exists", dest.string()));
  auto vmlinuz = find_vmlinuz(spec.extracted);
  if (!vmlinuz)
    return std::move(vmlinuz).err();
  auto& [vmlinuz_path, version] = *vmlinuz;
  auto modules_dir = find_modules_dir(spec.extracted, version);
  if (!modules_dir)
    return std::move(modules_dir).err();
  auto modules = resolve_modules(*modules_dir, spec.modules);
  if (!modules)
    return make_error(modules.err().code, fmt::format("kernel {}: {}", version, modules.err().message));

  auto tmp = make_scratch_beside(dest, "partial");
  if (!tmp)
    return std::move(tmp).err();
  scratch stage{*tmp};

  kernel_manifest m{spec.name, version, spec.source, kernel_format::bzimage, {}, {}};
  auto image = read_file(vmlinuz_path);
  if (!image)
    return std::move(image).err();
  auto pvh = convert_to_pvh(*image);
  if (!pvh)
    return make_error(pvh.err().code, fmt::format("{}: {}", vmlinuz_path.string(), pvh.err().message));
  if (pvh->vmlinux) {
    m.format = kernel_format::pvh_elf;
    if (auto r = write_file(*tmp / "vmlinux", *pvh->vmlinux); !r)
      return std::move(r).err();
  } else {
    m.why_not_pvh = pvh->why_not;
    if (auto r = write_file(*tmp / "bzImage", *image); !r)
      return std::move(r).err();
  }
  image = std::string(); // release the memory before building the initramfs

  auto config = vmlinuz_path.parent_path() / ("config-" + version);
  if (fs::exists(config, ec)) {
    auto text = read_file(config);
    if (!text)
      return std::move(text).err();
    if (auto r = write_file(*tmp / "config", *text); !r)
      return std::move(r).err();
  }
  if (auto r = build_initramfs(initramfs_spec{spec.busybox, *modules}, *tmp / "initrd.img"); !r)
    return std::move(r).err();

  std::vector<std::string> names;
  for (auto& entry : fs::directory_iterator(*tmp))
    names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  nlohmann::ordered_json files = nlohmann::ordered_json::array();
  for (auto& n : names) {
    auto sum = sha256_file(*tmp / n);
    if (!sum)
      return std::move(sum).err();
    kernel_file f{n, *sum, static_cast<std::uint64_t>(fs::file_size(*tmp / n))};
    files.push_back({{"name", f.name}, {"sha256", f.sha256}, {"size", f.size}});
    m.files.push_back(std::move(f));
  }
  nlohmann::ordered_json j{{"name", m.name},
                           {"kernel_version", m.kernel_version},
                           {"source", m.source},
                           {"format", to_string(m.format)},
                           {"files", files}};
  if (auto r = write_file(*tmp / "manifest.json", j.dump(2) + "\n"); !r)
    return std::move(r).err();
  if (::rename(tmp->c_str(), dest.c_str()) != 0)
    return make_error(errc::operation_failed,
                      fmt::format("rename {} to {}: {}", tmp->string(), dest.string(), errno_text(errno)));
  stage.committed = true;
  return m;
}

expected<kernel_manifest> import_kernel_deb(const fs::path& deb, kernel_dir_spec spec, const fs::path& dest) {
  auto work = make_scratch_beside(dest, "import");
  if (!work)
    return std::move(work).err();
  scratch cleanup{*work};
  auto extracted = *work / "tree";
  auto r = extract_deb(deb, extracted, extract_options{is_kernel_member});
  if (!r)
    return std::move(r).err();
  spec.extracted = extracted;
  return assemble_kernel_dir(spec, dest);
}

expected<kernel_manifest> verify_kernel_dir(const fs::path& dir) {
  auto text = read_file(dir / "manifest.json");
  if (!text)
    return std::move(text).err();
  auto j = nlohmann::json::parse(*text, nullptr, false);
  auto bad = [&](std::string why) {
    return make_error(errc::bad_request, fmt::format("kernel directory {}: {}", dir.string(), why));
  };
  if (j.is_discarded() || !j.is_object() || !j.contains("files") || !j["files"].is_array())
    return bad("manifest.json is not a kernel manifest");
  // Every field is checked for its type before it is read: a manifest is outside input (a
  // catalog bundle carries one), and a wrong type must be an error, not an exception.
  auto text_of = [](const nlohmann::json& o, const char* key) -> std::optional<std::string> {
    if (!o.contains(key))
      return std::string();
    if (!o[key].is_string())
      return std::nullopt;
    return o[key].get<std::string>();
  };
  kernel_manifest m;
  auto name = text_of(j, "name"), version = text_of(j, "kernel_version"), source = text_of(j, "source"),
       format = text_of(j, "format");
  if (!name || !version || !source || !format)
    return bad("manifest.json has a non-text name, kernel_version, source or format");
  m.name = *name;
  m.kernel_version = *version;
  m.source = *source;
  m.format = *format == "pvh-elf" ? kernel_format::pvh_elf : kernel_format::bzimage;
  for (auto& f : j["files"]) {
    if (!f.is_object() || !f.contains("name") || !f["name"].is_string())
      return bad("manifest.json has a file entry without a name");
    auto sum = text_of(f, "sha256");
    if (!sum || !f.contains("size") || !f["size"].is_number_unsigned())
      return bad(fmt::format("manifest.json's entry for {} needs a text sha256 and a whole-number size",
                             quoted(f["name"].get<std::string>())));
    kernel_file want{f["name"].get<std::string>(), *sum, f["size"].get<std::uint64_t>()};
    if (want.name.empty() || want.name.find('/') != std::string::npos || want.name == "." || want.name == "..")
      return bad(fmt::format("manifest.json names an unsafe file {}", quoted(want.name)));
    m.files.push_back(want);
  }
  for (auto& f : m.files) {
    std::error_code ec;
    auto size = fs::file_size(dir / f.name, ec);
    if (ec)
      return bad(fmt::format("{} is missing: {}", f.name, ec.message()));
    if (size != f.size)
      return bad(fmt::format("{} is {} bytes, the manifest says {}", f.name, size, f.size));
    auto sum = sha256_file(dir / f.name);
    if (!sum)
      return std::move(sum).err();
    if (*sum != f.sha256)
      return bad(fmt::format("{} has sha256 {}, the manifest says {}: the kernel is corrupt, re-import it", f.name,
                             *sum, f.sha256));
  }
  return m;
}

} // namespace banger::guestfs
