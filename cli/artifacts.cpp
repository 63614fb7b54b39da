// Kernel and image commands; see artifacts.hpp. Progress (progress_printer): on a TTY one line
// rewritten in place ("[image pull] download 1/3 (28.1 MiB) [####......] 6.0/40.2 MiB 9.8 MiB/s
// ETA 3s"), elsewhere one line per stage, with --json JSON lines on stderr; then
// "[image build] ready in 3.2s: ...".
#include "cli/artifacts.hpp"

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "cli/client.hpp"
#include "cli/connection.hpp"
#include "cli/output.hpp"
#include "common/config.hpp"
#include "common/process.hpp"
#include "common/text.hpp"
#include "fetch/oci_reference.hpp"
#include "fetch/registry_auth.hpp"
#include "journal/render.hpp"

namespace banger::cli {

using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

rpc::ArtifactKind rpc_kind(bool kernel) { return kernel ? rpc::ArtifactKind::KERNEL : rpc::ArtifactKind::IMAGE; }
const char* kind_name(bool kernel) { return kernel ? "kernel" : "image"; }

std::string mib(std::uint64_t b) { return fmt::format("{:.1f} MiB", static_cast<double>(b) / (1 << 20)); }

/// Progress of a build or pull. On a terminal, one line rewritten in place: the stage, a bar
/// and done/total when the total is known, the rate and an ETA. Elsewhere, one plain line per
/// stage as it ends (its bytes and rate). With --json, JSON lines on stderr for scripts:
/// {"stage", "done", "total", "rate", "eta_s"}, at most four a second and at every new stage.
class progress_printer final : public rpc::Progress::Server {
public:
  progress_printer(std::string label, bool json) : label_(std::move(label)), tty_(use_colour(2)), json_(json) {}
  ~progress_printer() {
    if (tty_ && drawn_)
      std::cerr << "\r\x1b[K" << std::flush;
  }

  kj::Promise<void> update(UpdateContext c) override {
    auto p = c.getParams();
    std::string stage = p.getStage();
    std::uint64_t done = p.getDone(), total = p.getTotal();
    auto now = std::chrono::steady_clock::now();
    bool new_stage = stage != stage_;
    if (new_stage) {
      if (!json_ && !tty_)
        finish_stage(now);
      stage_ = stage;
      stage_start_ = now;
      start_done_ = done;
    }
    done_ = done;
    double secs = std::chrono::duration<double>(now - stage_start_).count();
    double rate = secs > 0.2 && done > start_done_ ? static_cast<double>(done - start_done_) / secs : 0;
    double eta = rate > 0 && total > done ? static_cast<double>(total - done) / rate : -1;
    if (json_) {
      if (!new_stage && now - last_json_ < std::chrono::milliseconds(250))
        return kj::READY_NOW;
      last_json_ = now;
      json j = {{"event", "progress"}, {"label", label_}, {"stage", stage}, {"done", done}, {"total", total}};
      if (rate > 0)
        j["rate"] = static_cast<std::uint64_t>(rate);
      if (eta >= 0)
        j["eta_s"] = static_cast<std::uint64_t>(eta + 0.5);
      std::cerr << j.dump() << "\n" << std::flush;
    } else if (tty_) {
      std::string line = fmt::format("[{}] {}", label_, stage);
      if (total > 0) {
        constexpr int width = 20;
        auto filled = static_cast<int>(width * std::min(1.0, static_cast<double>(done) / static_cast<double>(total)));
        line += fmt::format(" [{}{}] {}/{}", std::string(filled, '#'), std::string(width - filled, '.'), mib(done),
                            mib(total));
      } else if (done > 0) {
        line += " " + mib(done);
      }
      if (rate > 0)
        line += fmt::format(" {}/s", mib(static_cast<std::uint64_t>(rate)));
      if (eta >= 0)
        line += fmt::format(" ETA {:.0f}s", eta);
      std::cerr << "\r\x1b[K" << line << std::flush;
      drawn_ = true;
    }
    return kj::READY_NOW;
  }

private:
  /// The plain line for the stage that just ended.
  void finish_stage(std::chrono::steady_clock::time_point now) {
    if (stage_.empty() || stage_ == "done")
      return;
    double secs = std::chrono::duration<double>(now - stage_start_).count();
    std::string bytes;
    if (done_ > start_done_) {
      auto moved = done_ - start_done_;
      bytes = fmt::format(" ({}", mib(moved));
      if (secs > 0.05)
        bytes += fmt::format(", {}/s", mib(static_cast<std::uint64_t>(static_cast<double>(moved) / secs)));
      bytes += ")";
    }
    std::cerr << fmt::format("[{}] {} done in {:.1f}s{}\n", label_, stage_, secs, bytes);
    stage_.clear();
  }

  std::string label_;
  bool tty_;
  bool json_;
  bool drawn_ = false;
  std::string stage_;
  std::uint64_t start_done_ = 0, done_ = 0;
  std::chrono::steady_clock::time_point stage_start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_json_{};
};

json version_json(rpc::ArtifactVersion::Reader v) {
  return {{"id", std::string(v.getId())},
          {"manifest_sha256", std::string(v.getManifestSha256())},
          {"bytes", v.getBytes()},
          {"summary", std::string(v.getSummary())},
          {"source", std::string(v.getSource())},
          {"created", journal::format_time(v.getCreatedNs())}};
}

json info_json(rpc::ArtifactInfo::Reader i) {
  json versions = json::array();
  for (auto v : i.getVersions())
    versions.push_back(version_json(v));
  json j = {{"kind", i.getKind() == rpc::ArtifactKind::KERNEL ? "kernel" : "image"},
            {"name", std::string(i.getName())},
            {"current", std::string(i.getCurrent())},
            {"path", std::string(i.getPath())},
            {"versions", versions}};
  if (i.getBuilding().size() > 0)
    j["building"] = {{"source", std::string(i.getBuilding())}, {"stage", std::string(i.getStage())}};
  if (i.getLastFailure().size() > 0)
    j["last_failure"] = std::string(i.getLastFailure());
  return j;
}

const rpc::ArtifactVersion::Reader* find_current(rpc::ArtifactInfo::Reader i, rpc::ArtifactVersion::Reader& out) {
  for (auto v : i.getVersions())
    if (v.getId() == i.getCurrent()) {
      out = v;
      return &out;
    }
  return nullptr;
}

std::string absolute(const std::string& p) {
  if (p.empty())
    return p;
  std::error_code ec;
  auto a = fs::absolute(p, ec);
  return ec ? p : a.lexically_normal().string();
}

/// Whether config.toml's [images] insecure_registries names the registry of `reference`.
expected<bool> insecure_registry(const dirs& d, const std::string& reference) {
  auto ref = fetch::parse_oci_reference(reference);
  if (!ref)
    return false; // set_source reports the reference
  auto cfg = load_config(d.config / "config.toml");
  if (!cfg)
    return cfg.err();
  return cfg->images.insecure(ref->registry);
}

/// Credentials for `registry`: --username with the password on stdin, else the user's docker
/// config.json ($DOCKER_CONFIG/config.json or ~/.docker/config.json), else none (anonymous).
expected<std::optional<fetch::credentials>> registry_credentials(const artifact_opts& a, const std::string& registry) {
  if (!a.username.empty()) {
    if (!a.password_stdin)
      return make_error(errc::bad_request, "--username needs --password-stdin (the password is read from standard "
                                           "input, never taken on the command line)");
    std::string password;
    std::getline(std::cin, password);
    if (!password.empty() && password.back() == '\r')
      password.pop_back();
    if (password.empty())
      return make_error(errc::bad_request, "--password-stdin: standard input held no password");
    return std::optional<fetch::credentials>(fetch::credentials{a.username, password});
  }
  if (a.password_stdin)
    return make_error(errc::bad_request, "--password-stdin needs --username");
  fs::path file;
  if (const char* d = std::getenv("DOCKER_CONFIG"); d != nullptr && *d != '\0')
    file = fs::path(d) / "config.json";
  else if (const char* h = std::getenv("HOME"); h != nullptr && *h != '\0')
    file = fs::path(h) / ".docker" / "config.json";
  std::error_code ec;
  if (file.empty() || !fs::exists(file, ec))
    return std::optional<fetch::credentials>();
  auto text = read_file(file);
  if (!text)
    return std::move(text).err();
  auto c = fetch::docker_config_credentials(*text, registry);
  if (!c)
    return make_error(c.err().code, fmt::format("{}: {}", file.string(), c.err().message));
  return std::move(*c);
}

/// Fills the request's source from the options; an error names the flags when not exactly one.
expected<void> set_source(rpc::ArtifactSource::Builder s, const artifact_opts& a) {
  int n = !a.deb.empty() + !a.apt.empty() + !a.vmlinux.empty() + !a.catalog.empty() + a.busybox + a.debootstrap +
          !a.dir.empty() + !a.tar.empty() + !a.reference.empty();
  if (n != 1)
    return make_error(errc::bad_request,
                      a.kernel
                        ? "give exactly one of --deb FILE, --apt PACKAGE or --vmlinux PATH (or pull --catalog URL)"
                        : "give exactly one of --busybox, --debootstrap, --dir DIR or --tar FILE");
  for (const auto* p : {&a.deb, &a.vmlinux, &a.dir, &a.tar, &a.initrd, &a.modules})
    if (!p->empty() && !fs::exists(*p))
      return make_error(errc::not_found, fmt::format("{} does not exist", *p));
  if (!a.reference.empty()) {
    auto ref = fetch::parse_oci_reference(a.reference);
    if (!ref)
      return std::move(ref).err();
    auto g = s.initRegistry();
    g.setReference(ref->str());
    g.setPlatform(a.platform);
    g.setPlainHttp(a.insecure);
    auto creds = registry_credentials(a, ref->registry);
    if (!creds)
      return std::move(creds).err();
    if (*creds) {
      g.setUsername((*creds)->username);
      g.setPassword((*creds)->password);
    }
    return {};
  }
  if (!a.deb.empty())
    s.setDeb(absolute(a.deb));
  else if (!a.apt.empty())
    s.setApt(a.apt);
  else if (!a.catalog.empty())
    s.setCatalog(a.catalog);
  else if (!a.vmlinux.empty()) {
    auto v = s.initVmlinux();
    v.setPath(absolute(a.vmlinux));
    v.setInitrd(absolute(a.initrd));
    v.setModules(absolute(a.modules));
  } else if (a.busybox)
    s.setBusybox();
  else if (a.debootstrap) {
    auto b = s.initDebootstrap();
    b.setSuite(a.suite);
    auto l = b.initPackages(static_cast<unsigned>(a.packages.size()));
    for (unsigned i = 0; i < a.packages.size(); ++i)
      l.set(i, a.packages[i]);
  } else if (!a.dir.empty())
    s.setDir(absolute(a.dir));
  else
    s.setTar(absolute(a.tar));
  return {};
}

/// One build over an open connection; prints the outcome (on stderr with `summary_to_stderr`,
/// for a pull made on the way to a VM whose stdout is the command's). Returns the exit code.
int build_on(client& c, const output_opts& o, const artifact_opts& a, const std::string& verb,
             bool summary_to_stderr = false) {
  auto req = c.conn().daemon.artifactBuildRequest();
  req.setKind(rpc_kind(a.kernel));
  req.setName(a.name);
  if (auto s = set_source(req.initSource(), a); !s)
    return report(s.err(), o);
  std::string label = fmt::format("{} {}", kind_name(a.kernel), verb);
  req.setProgress(kj::heap<progress_printer>(label, o.json));
  auto t0 = std::chrono::steady_clock::now();
  auto r = req.send().wait(c.conn().io.waitScope);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (use_colour(2) && !o.json)
    std::cerr << "\r\x1b[K" << std::flush;
  if (failed(r.getError()))
    return report(from_rpc(r.getError()), o);
  if (o.json) {
    auto j = info_json(r.getInfo());
    j["seconds"] = secs;
    j["joined"] = r.getJoined();
    std::cout << j.dump() << "\n";
  } else {
    auto v = r.getVersion();
    fmt::print(summary_to_stderr ? stderr : stdout, "[{}] ready in {:.1f}s: {} {} version {} ({}){}\n", label, secs,
               kind_name(a.kernel), a.name, v.getId().cStr(), v.getSummary().cStr(),
               r.getJoined() ? " — joined a build already running" : "");
  }
  return 0;
}

} // namespace

std::string default_image_name(const std::string& reference) {
  std::string repo = reference, tag;
  if (auto ref = fetch::parse_oci_reference(reference)) {
    repo = ref->repository;
    tag = ref->tag;
  }
  std::string name = repo.substr(repo.rfind('/') + 1);
  if (!tag.empty() && tag != "latest")
    name += "-" + tag;
  for (auto& c : name) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_')
      c = '-';
  }
  while (!name.empty() && !std::isalnum(static_cast<unsigned char>(name.front())))
    name.erase(0, 1);
  if (name.size() > 63)
    name.resize(63);
  return name.empty() ? "image" : name;
}

std::string default_catalog() {
  const char* c = std::getenv("BANGER_CATALOG");
  return c ? c : "";
}

int cmd_kernel_export(const dirs& d, const output_opts& o, const std::string& name, const std::string& file) {
  return with_daemon(d, o, [&](client& c) {
    auto req = c.conn().daemon.kernelExportRequest();
    req.setName(name);
    req.setPath(absolute(file));
    auto r = req.send().wait(c.conn().io.waitScope);
    if (failed(r.getError()))
      return report(from_rpc(r.getError()), o);
    if (o.json) {
      json j = {{"bundle", absolute(file)}, {"catalog", std::string(r.getCatalog())}};
      j["entry"] = json::parse(std::string(r.getEntry()), nullptr, false);
      std::cout << j.dump() << "\n";
    } else {
      fmt::print("wrote {}\nadded to {}:\n{}\nServe that directory over HTTP and pull with\n"
                 "  banger kernel pull {} --catalog http://HOST/catalog.json\n",
                 absolute(file), r.getCatalog().cStr(), r.getEntry().cStr(), name);
    }
    return 0;
  });
}

int cmd_artifact_build(const dirs& d, const output_opts& o, const artifact_opts& opts) {
  auto a = opts;
  if (!a.reference.empty()) {
    auto insecure = insecure_registry(d, a.reference);
    if (!insecure)
      return report(insecure.err(), o);
    a.insecure = a.insecure || *insecure;
  }
  std::string verb = a.kernel ? (a.catalog.empty() ? "import" : "pull")
                              : (!a.reference.empty()         ? "pull"
                                 : a.busybox || a.debootstrap ? "build"
                                                              : "import");
  return with_daemon(d, o, [&](client& c) { return build_on(c, o, a, verb); });
}

bool is_image_reference(const std::string& image) { return image.find_first_of("/:@") != std::string::npos; }

expected<std::string> image_for_vm(client& c, const dirs& d, const std::string& image, const std::string& label,
                                   bool quiet) {
  if (!is_image_reference(image))
    return image;
  auto ref = fetch::parse_oci_reference(image);
  if (!ref)
    return make_error(ref.err().code, fmt::format("--image {}: {}", quoted(image), ref.err().message));
  std::string source = "registry:" + ref->str();
  auto req = c.conn().daemon.artifactListRequest();
  req.setKind(rpc::ArtifactKind::IMAGE);
  auto r = req.send().wait(c.conn().io.waitScope);
  if (failed(r.getError()))
    return from_rpc(r.getError());
  std::string name = default_image_name(ref->str());
  for (auto i : r.getItems()) {
    rpc::ArtifactVersion::Reader v;
    if (find_current(i, v) && v.getSource() == source)
      return std::string(i.getName());
  }
  for (auto i : r.getItems()) {
    rpc::ArtifactVersion::Reader v;
    if (i.getName() == name && find_current(i, v))
      return make_error(errc::conflict,
                        fmt::format("--image {}: the local image \"{}\" comes from {}, not from that reference; pull "
                                    "it under another name (`banger image pull {} --name NAME`) and use --image NAME",
                                    ref->str(), name, v.getSource().cStr(), ref->str()));
  }
  // Pull on first use, with the same progress as `image pull`.
  auto insecure = insecure_registry(d, ref->str());
  if (!insecure)
    return insecure.err();
  artifact_opts a;
  a.kernel = false;
  a.name = name;
  a.reference = ref->str();
  a.insecure = *insecure;
  output_opts o;
  if (!quiet)
    std::cerr << fmt::format("[{}] no local image from {} yet: pulling it as \"{}\"\n", label, ref->str(), name);
  if (build_on(c, o, a, "pull", true) != 0)
    return make_error(errc::operation_failed, fmt::format("pulling {} failed (above); no VM was made", ref->str()));
  return name;
}

int cmd_artifact_list(const dirs& d, const output_opts& o, bool kernel) {
  return with_daemon(d, o, [&](client& c) {
    auto req = c.conn().daemon.artifactListRequest();
    req.setKind(rpc_kind(kernel));
    auto r = req.send().wait(c.conn().io.waitScope);
    if (failed(r.getError()))
      return report(from_rpc(r.getError()), o);
    if (o.json) {
      json all = json::array();
      for (auto i : r.getItems())
        all.push_back(info_json(i));
      std::cout << all.dump() << "\n";
      return 0;
    }
    if (r.getItems().size() == 0) {
      fmt::print("no {}s yet; {}\n", kind_name(kernel),
                 kernel ? "import one with `banger kernel import NAME --apt linux-image-cloud-amd64`"
                        : "build one with `banger image build NAME --busybox`");
      return 0;
    }
    fmt::print("{:<20} {:<17} {:<10} {:<24} {}\n", "NAME", "VERSION", "SIZE", "CREATED", "SUMMARY");
    for (auto i : r.getItems()) {
      rpc::ArtifactVersion::Reader v;
      if (find_current(i, v))
        fmt::print("{:<20} {:<17} {:<10} {:<24} {}\n", i.getName().cStr(), v.getId().cStr(), mib(v.getBytes()),
                   journal::format_time(v.getCreatedNs()), v.getSummary().cStr());
      else
        fmt::print("{:<20} {:<17} {:<10} {:<24} building ({}: {})\n", i.getName().cStr(), "-", "-", "-",
                   i.getBuilding().cStr(), i.getStage().cStr());
    }
    return 0;
  });
}

int cmd_artifact_show(const dirs& d, const output_opts& o, bool kernel, const std::string& name) {
  return with_daemon(d, o, [&](client& c) {
    auto req = c.conn().daemon.artifactShowRequest();
    req.setKind(rpc_kind(kernel));
    req.setName(name);
    auto r = req.send().wait(c.conn().io.waitScope);
    if (failed(r.getError()))
      return report(from_rpc(r.getError()), o);
    auto i = r.getInfo();
    json manifest = json::parse(std::string(r.getManifest()), nullptr, false);
    if (o.json) {
      auto j = info_json(i);
      if (!manifest.is_discarded())
        j["manifest"] = manifest;
      std::cout << j.dump() << "\n";
      return 0;
    }
    fmt::print("{} {}\n", kind_name(kernel), name);
    fmt::print("  current   {}\n", i.getCurrent().size() ? i.getCurrent().cStr() : "-");
    fmt::print("  path      {}\n", i.getPath().cStr());
    if (i.getBuilding().size())
      fmt::print("  building  {} ({})\n", i.getBuilding().cStr(), i.getStage().cStr());
    if (i.getLastFailure().size())
      fmt::print("  last failure  {}\n", i.getLastFailure().cStr());
    for (auto v : i.getVersions())
      fmt::print("  {} {}  {}  {}  {}\n", v.getId() == i.getCurrent() ? "*" : " ", v.getId().cStr(),
                 journal::format_time(v.getCreatedNs()), mib(v.getBytes()), v.getSummary().cStr());
    if (!manifest.is_discarded() && manifest.contains("oci") && manifest["oci"].is_object()) {
      const auto& oci = manifest["oci"];
      fmt::print("  pulled from  {}\n", oci.value("reference", ""));
      fmt::print("  digest       {}\n", oci.value("manifest_digest", ""));
      if (!oci.value("index_digest", "").empty())
        fmt::print("  index        {}\n", oci.value("index_digest", ""));
      fmt::print("  platform     {}\n", oci.value("platform", "").empty() ? "-" : oci.value("platform", ""));
      if (oci.contains("layers") && oci["layers"].is_array()) {
        std::uint64_t total = 0;
        for (const auto& l : oci["layers"])
          total += l.value("size", std::uint64_t{0});
        fmt::print("  layers       {} ({} compressed)\n", oci["layers"].size(), human_bytes(total));
        for (const auto& l : oci["layers"])
          fmt::print("    {}  {:>10}\n", l.value("digest", ""), human_bytes(l.value("size", std::uint64_t{0})));
      }
    }
    if (!manifest.is_discarded() && manifest.contains("config") && manifest["config"].is_object()) {
      const auto& cfg = manifest["config"];
      auto words = [](const json& a) {
        std::string out;
        if (a.is_array())
          for (const auto& w : a)
            if (w.is_string())
              out += (out.empty() ? "" : " ") + quoted(w.get<std::string>());
        return out.empty() ? std::string("-") : out;
      };
      fmt::print("  entrypoint   {}\n  cmd          {}\n", words(cfg.value("entrypoint", json::array())),
                 words(cfg.value("cmd", json::array())));
      fmt::print("  working dir  {}\n", cfg.value("working_dir", "").empty() ? "-" : cfg.value("working_dir", ""));
      if (!cfg.value("user", "").empty())
        fmt::print("  user         {}\n", cfg.value("user", ""));
      if (cfg.contains("env") && cfg["env"].is_array())
        for (const auto& e : cfg["env"])
          if (e.is_string())
            fmt::print("  env          {}\n", quoted(e.get<std::string>()));
    }
    if (!manifest.is_discarded() && manifest.contains("files")) {
      fmt::print("  files\n");
      for (const auto& f : manifest["files"])
        fmt::print("    {:<16} {:>12}  sha256 {}\n", f.value("name", ""), f.value("size", std::uint64_t{0}),
                   f.value("sha256", ""));
    }
    return 0;
  });
}

int cmd_artifact_remove(const dirs& d, const output_opts& o, bool kernel, const std::string& name) {
  return with_daemon(d, o, [&](client& c) {
    auto req = c.conn().daemon.artifactRemoveRequest();
    req.setKind(rpc_kind(kernel));
    req.setName(name);
    auto r = req.send().wait(c.conn().io.waitScope);
    if (failed(r.getError()))
      return report(from_rpc(r.getError()), o);
    if (o.json)
      std::cout << json{{"removed", name}, {"version", std::string(r.getRemoved())}}.dump() << "\n";
    else
      fmt::print("removed {} {} (version {})\n", kind_name(kernel), name, r.getRemoved().cStr());
    return 0;
  });
}

int cmd_image_cache_prune(const dirs& d, const output_opts& o, bool dry_run) {
  return with_daemon(d, o, [&](client& c) {
    auto req = c.conn().daemon.imageCachePruneRequest();
    req.setDryRun(dry_run);
    auto t0 = std::chrono::steady_clock::now();
    auto r = req.send().wait(c.conn().io.waitScope);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (failed(r.getError()))
      return report(from_rpc(r.getError()), o);
    if (o.json) {
      std::cout << json{{"dry_run", dry_run},    {"blobs", r.getBlobs()}, {"partials", r.getPartials()},
                        {"bytes", r.getBytes()}, {"busy", r.getBusy()},   {"seconds", secs}}
                     .dump()
                << "\n";
      return 0;
    }
    auto n = r.getBlobs() + r.getPartials();
    std::string what = fmt::format("{} across {} blob{}", human_bytes(r.getBytes()), n, n == 1 ? "" : "s");
    if (r.getPartials() > 0)
      what += fmt::format(" ({} of them broken-off downloads)", r.getPartials());
    if (dry_run)
      fmt::print("would free {}\n", what);
    else
      fmt::print("freed {} in {:.1f}s\n", what, secs);
    if (r.getBusy() > 0)
      fmt::print("kept {} blob{} a running pull is using\n", r.getBusy(), r.getBusy() == 1 ? "" : "s");
    return 0;
  });
}

int cmd_setup(const dirs& d, const output_opts& o) {
  return with_daemon(d, o, [&](client& c) {
    struct step {
      bool kernel;
      artifact_opts opts;
    };
    artifact_opts k;
    k.kernel = true;
    k.name = "default";
    k.apt = "linux-image-cloud-amd64";
    artifact_opts i;
    i.kernel = false;
    i.name = "default";
    i.debootstrap = true;
    for (const auto& a : {k, i}) {
      auto show = c.conn().daemon.artifactShowRequest();
      show.setKind(rpc_kind(a.kernel));
      show.setName(a.name);
      auto r = show.send().wait(c.conn().io.waitScope);
      if (!failed(r.getError()) && r.getInfo().getCurrent().size() > 0) {
        if (!o.json)
          fmt::print("[setup] {} {} is ready (version {})\n", kind_name(a.kernel), a.name,
                     r.getInfo().getCurrent().cStr());
        continue;
      }
      if (int rc = build_on(c, o, a, a.kernel ? "import" : "build"); rc != 0)
        return rc;
    }
    return 0;
  });
}

} // namespace banger::cli
