// Test support for registry pulls (issue #13): OCI image layouts built from local trees with
// umoci, and a real registry (Debian's docker-registry) serving plain HTTP on 127.0.0.1 inside
// a network namespace the test made, anonymous, with HTTP Basic (htpasswd) or with Bearer
// tokens from tests/support/token_server.py, images pushed to it with skopeo. Its access log (Apache style, one line
// per request) is how a test sees what a pull asked for. Header-only; tests include it.
#pragma once

#include <csignal>
#include <fstream>
#include <functional>
#include <sstream>
#include <sys/wait.h>

#include <stdexcept>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "common/sha256.hpp"
#include "tests/support/proc.hpp"
#include "tests/support/sandbox.hpp"

namespace banger::test {

inline void require_ok(const run_result& r, const std::string& what) {
  if (r.exit_code != 0)
    throw std::runtime_error(what + ": " + r.out + r.err);
}

/// An OCI image layout (umoci's) in a temp dir, images in it made tag by tag.
struct oci_layout {
  temp_dir dir{"banger-oci"};
  std::filesystem::path path = dir.path / "layout";

  oci_layout() { require_ok(run({"/usr/bin/umoci", "init", "--layout", path.string()}), "umoci init"); }

  std::string at(const std::string& tag) const { return path.string() + ":" + tag; }

  /// A new image `tag` with no layers.
  void new_image(const std::string& tag) {
    require_ok(run({"/usr/bin/umoci", "new", "--image", at(tag)}), "umoci new");
  }
  /// Image `to`: `from`'s layers plus one made by `edit` on an unpacked copy of its rootfs.
  void add_layer(const std::string& from, const std::string& to,
                 const std::function<void(const std::filesystem::path& rootfs)>& edit) {
    auto bundle = dir.path / ("bundle-" + to);
    std::filesystem::remove_all(bundle);
    require_ok(run({"/usr/bin/umoci", "unpack", "--image", at(from), bundle.string()}), "umoci unpack");
    edit(bundle / "rootfs");
    require_ok(run({"/usr/bin/umoci", "repack", "--image", at(to), bundle.string()}), "umoci repack");
    std::filesystem::remove_all(bundle);
  }
  /// `umoci config` on `tag` (e.g. {"--config.env", "A=b"}), in place.
  void configure(const std::string& tag, std::vector<std::string> args) {
    std::vector<std::string> argv = {"/usr/bin/umoci", "config", "--image", at(tag)};
    argv.insert(argv.end(), args.begin(), args.end());
    require_ok(run(argv), "umoci config");
  }

  nlohmann::json blob(const std::string& digest) const {
    return nlohmann::json::parse(slurp(path / "blobs" / "sha256" / digest.substr(7)));
  }
  std::filesystem::path blob_path(const std::string& digest) const {
    return path / "blobs" / "sha256" / digest.substr(7);
  }
  /// The digest index.json gives `tag`.
  std::string digest_of(const std::string& tag) const {
    auto index = nlohmann::json::parse(slurp(path / "index.json"));
    for (const auto& m : index["manifests"])
      if (m.value("annotations", nlohmann::json::object()).value("org.opencontainers.image.ref.name", "") == tag)
        return m["digest"];
    throw std::runtime_error("no tag " + tag + " in the layout");
  }
  /// The layer descriptors of image `tag`, lowest first.
  std::vector<nlohmann::json> layers_of(const std::string& tag) const {
    auto m = blob(digest_of(tag));
    return {m["layers"].begin(), m["layers"].end()};
  }
  /// Tag `tag` as an OCI index of the images `entries` (tag, architecture), linux each.
  std::string make_index(const std::string& tag, const std::vector<std::pair<std::string, std::string>>& entries) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& [t, arch] : entries) {
      auto d = digest_of(t);
      list.push_back({{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                      {"digest", d},
                      {"size", std::filesystem::file_size(blob_path(d))},
                      {"platform", {{"architecture", arch}, {"os", "linux"}}}});
    }
    std::string body = nlohmann::json{
      {"schemaVersion", 2},
      {"mediaType", "application/vnd.oci.image.index.v1+json"},
      {"manifests",
       list}}.dump();
    std::string digest = "sha256:" + sha256_hex(body);
    std::ofstream(blob_path(digest), std::ios::binary) << body;
    auto index = nlohmann::json::parse(slurp(path / "index.json"));
    index["manifests"].push_back({{"mediaType", "application/vnd.oci.image.index.v1+json"},
                                  {"digest", digest},
                                  {"size", body.size()},
                                  {"annotations", {{"org.opencontainers.image.ref.name", tag}}}});
    std::ofstream(path / "index.json") << index.dump();
    return digest;
  }
};

/// A minimal busybox userland in `rootfs`: /bin/busybox and the applets the tests call.
inline void add_busybox(const std::filesystem::path& rootfs) {
  namespace fs = std::filesystem;
  fs::create_directories(rootfs / "bin");
  fs::create_directories(rootfs / "usr" / "bin");
  fs::copy_file("/usr/bin/busybox", rootfs / "bin" / "busybox", fs::copy_options::overwrite_existing);
  for (const char* applet : {"sh", "echo", "cat", "pwd", "env", "ls", "id", "true", "sleep", "mount", "uname"})
    if (!fs::exists(rootfs / "bin" / applet))
      fs::create_symlink("busybox", rootfs / "bin" / applet);
}

/// How a test registry wants to be asked.
enum class registry_auth {
  anonymous,
  basic,  ///< HTTP Basic against an htpasswd file
  bearer, ///< the token flow: tests/support/token_server.py on port + 100 issues the tokens
};

/// docker-registry on 127.0.0.1:`port` in the namespace `exec` enters; stopped on destruction.
/// `source_dir`: the project's sources (for the token server).
struct test_registry {
  temp_dir dir{"banger-registry"};
  std::vector<std::string> exec;
  int port;
  registry_auth auth;
  std::string user = "tester", password = "s3cret"; ///< accepted with basic and bearer
  int pid = -1, token_pid = -1;

  bool tls = false; ///< HTTPS with a self-signed certificate no client trusts

  test_registry(std::vector<std::string> ns_exec, int port_, registry_auth auth_ = registry_auth::anonymous,
                const std::filesystem::path& source_dir = {}, bool tls_ = false)
    : exec(std::move(ns_exec)), port(port_), auth(auth_), tls(tls_) {
    std::string auth_yaml, tls_yaml;
    if (tls) {
      auto key = dir.path / "tls.key", cert = dir.path / "tls.crt";
      require_ok(
        run({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key.string(), "-out",
             cert.string(), "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"}),
        "openssl req (tls)");
      tls_yaml = fmt::format("  tls:\n    certificate: {}\n    key: {}\n", cert.string(), key.string());
    }
    if (auth == registry_auth::basic) {
      auto h = run({"/usr/bin/htpasswd", "-Bbn", user, password});
      require_ok(h, "htpasswd");
      std::ofstream(dir.path / "htpasswd") << h.out;
      auth_yaml =
        fmt::format("auth:\n  htpasswd:\n    realm: banger-test\n    path: {}\n", (dir.path / "htpasswd").string());
    } else if (auth == registry_auth::bearer) {
      auto key = dir.path / "token.key", cert = dir.path / "token.crt";
      require_ok(run({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key.string(),
                      "-out", cert.string(), "-days", "2", "-subj", "/CN=banger-test-token"}),
                 "openssl req");
      std::filesystem::create_directories(dir.path / "token");
      auto argv = exec;
      argv.insert(argv.end(), {"/usr/bin/python3", (source_dir / "tests/support/token_server.py").string(),
                               std::to_string(port + 100), key.string(), cert.string(), "banger-test",
                               "banger-test-issuer", user, password});
      token_pid = spawn(argv, {}, dir.path / "token");
      auth_yaml = fmt::format("auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: banger-test\n"
                              "    issuer: banger-test-issuer\n    rootcertbundle: {}\n",
                              port + 100, cert.string());
    }
    std::ofstream(dir.path / "config.yml")
      << fmt::format("version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n"
                     "    rootdirectory: {}\n  delete:\n    enabled: true\n{}http:\n  addr: 127.0.0.1:{}\n{}",
                     (dir.path / "data").string(), auth_yaml, port, tls_yaml);
    auto argv = exec;
    argv.insert(argv.end(), {"/usr/bin/docker-registry", "serve", (dir.path / "config.yml").string()});
    pid = spawn(argv, {}, dir.path);
    auto answers = [&](const std::string& url) {
      auto probe = exec;
      probe.insert(probe.end(), {"/usr/bin/curl", "-s", "-k", "-o", "/dev/null", "-w", "%{http_code}", url});
      auto r = run(probe, {}, std::chrono::seconds(5));
      return r.out == "200" || r.out == "401";
    };
    if (!eventually([&] { return answers(url() + "/v2/"); }, std::chrono::seconds(20)))
      throw std::runtime_error("docker-registry did not answer: " + slurp(dir.path / "spawn.err"));
    if (auth == registry_auth::bearer &&
        !eventually([&] { return answers(fmt::format("http://127.0.0.1:{}/token", port + 100)); },
                    std::chrono::seconds(20)))
      throw std::runtime_error("the token server did not answer: " + slurp(dir.path / "token" / "spawn.err"));
  }
  ~test_registry() {
    for (int p : {pid, token_pid})
      if (p > 0) {
        ::kill(p, SIGTERM);
        ::waitpid(p, nullptr, 0);
      }
  }
  test_registry(const test_registry&) = delete;
  test_registry& operator=(const test_registry&) = delete;

  std::string host() const { return fmt::format("127.0.0.1:{}", port); }
  std::string url() const { return (tls ? "https://" : "http://") + host(); }

  /// skopeo copy of the layout's `tag` to REPO:TAG here (`all`: an index with its images).
  void push(const oci_layout& l, const std::string& tag, const std::string& repo_tag, bool all = false,
            std::vector<std::string> extra = {}) {
    auto argv = exec;
    argv.insert(argv.end(), {"/usr/bin/skopeo", "copy", "-q", "--dest-tls-verify=false"});
    if (auth != registry_auth::anonymous)
      argv.insert(argv.end(), {"--dest-creds", user + ":" + password});
    if (all)
      argv.push_back("--all");
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.insert(argv.end(), {"oci:" + l.at(tag), "docker://" + host() + "/" + repo_tag});
    require_ok(run(argv, {}, std::chrono::seconds(120)), "skopeo copy to " + repo_tag);
  }

  struct request {
    std::string method, uri;
    int status = 0;
    std::uint64_t bytes = 0;
  };
  /// The access log so far: one entry per request.
  std::vector<request> requests() const {
    std::vector<request> out;
    std::istringstream in(slurp(dir.path / "spawn.out"));
    std::string line;
    while (std::getline(in, line)) {
      auto q = line.find('"');
      if (q == std::string::npos)
        continue;
      std::istringstream f(line.substr(q + 1));
      request r;
      std::string proto, rest;
      f >> r.method >> r.uri >> proto >> r.status >> rest;
      r.bytes = rest == "-" ? 0 : std::strtoull(rest.c_str(), nullptr, 10);
      out.push_back(r);
    }
    return out;
  }
  /// The token server's log: "token <user or -> <scope>" per scope asked for, "token refused".
  std::string token_log() const { return slurp(dir.path / "token" / "spawn.out"); }

  /// GET requests after the first `skip` log entries whose path ends in blobs/`digest`.
  std::vector<request> blob_gets(const std::string& digest, std::size_t skip = 0) const {
    std::vector<request> out;
    auto all = requests();
    for (std::size_t i = skip; i < all.size(); ++i)
      if (all[i].method == "GET" && all[i].uri.ends_with("/blobs/" + digest))
        out.push_back(all[i]);
    return out;
  }
};

} // namespace banger::test
