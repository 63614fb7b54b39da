// Registry pulls end to end (issue #13): a real registry (Debian's docker-registry) in the
// test's network namespace, images built from local trees with umoci and pushed with skopeo,
// pulled by the real CLI and daemon: tags and digests, plain HTTP only when named insecure,
// HTTP Basic (flags and docker's config.json), an index and --platform, two pulls sharing a
// layer, a resumed download, cache prune, and `vm run --image REF` pulling on first use and
// running the image's Entrypoint + Cmd in its WorkingDir with its Env.
//
// The registry's access log shows what each pull asked for.
#include <future>

#include "common/base64.hpp"
#include "common/text.hpp"
#include "tests/e2e/vm_world.hpp"
#include "tests/support/registry.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace banger;
using namespace banger::test;
using namespace std::chrono_literals;

namespace {

world& the_world() {
  static world w;
  return w;
}

/// The images every case pushes, built once:
///   base   busybox
///   app    base + /srv/app/greeting; Env PATH, GREETING=hi; WorkingDir /srv/app; Cmd sh -c ...
///   other  base + /etc/other
///   amd, arm  base + /etc/arch ("amd64" / "arm64"; arm's config says arm64); multi: their index
struct images {
  oci_layout layout;
  std::string index_digest;
  images() {
    layout.new_image("base");
    layout.add_layer("base", "base", [](const fs::path& root) { add_busybox(root); });
    layout.add_layer("base", "app", [](const fs::path& root) {
      fs::create_directories(root / "srv" / "app");
      std::ofstream(root / "srv" / "app" / "greeting") << "hello from the registry\n";
    });
    layout.configure("app", {"--config.env", "PATH=/bin:/usr/bin", "--config.env", "GREETING=hi", "--config.workingdir",
                             "/srv/app", "--config.cmd", "sh", "--config.cmd", "-c", "--config.cmd",
                             "echo from-cmd in $(pwd) with $GREETING"});
    layout.add_layer("base", "other", [](const fs::path& root) {
      fs::create_directories(root / "etc");
      std::ofstream(root / "etc" / "other") << "b\n";
    });
    for (const char* arch : {"amd64", "arm64"})
      layout.add_layer("base", arch, [&](const fs::path& root) {
        fs::create_directories(root / "etc");
        std::ofstream(root / "etc" / "arch") << arch;
      });
    layout.configure("arm64", {"--architecture", "arm64"});
    index_digest = layout.make_index("multi", {{"amd64", "amd64"}, {"arm64", "arm64"}});
  }
  std::string base_layer() const { return layout.layers_of("base").at(0)["digest"]; }
};

images& the_images() {
  static images i;
  return i;
}

fs::path blob_dir(world& w) { return fs::path(w.sb.env.at("XDG_CACHE_HOME")) / "banger" / "blobs"; }

/// Empties the blob cache (it lives in the test cache, which outlives runs).
void prune_cache(world& w) {
  auto p = w.cli({"image", "cache", "prune"});
  BOOST_TEST_REQUIRE(p.exit_code == 0, p.err);
}

json show(world& w, const std::string& name) {
  auto s = w.cli({"image", "show", name, "--json"});
  BOOST_TEST_REQUIRE(s.exit_code == 0, s.err);
  return json::parse(s.out);
}

/// A file of image `name`'s root filesystem, read with debugfs.
std::string image_file(world& w, const std::string& name, const std::string& path) {
  auto dir = show(w, name)["path"].get<std::string>();
  auto r = run({"/usr/bin/env", "debugfs", "-R", "cat " + path, dir + "/rootfs.ext4"});
  return r.out;
}

bool has_image(world& w, const std::string& name) {
  auto l = w.cli({"image", "list", "--json"});
  for (const auto& i : json::parse(l.out))
    if (i["name"] == name)
      return true;
  return false;
}

/// `image pull REF --insecure-registry --name NAME --username USER --password-stdin`, `password`
/// piped to it.
run_result pull_with_password(world& w, const std::string& ref, const std::string& name, const std::string& user,
                              const std::string& password) {
  std::string joined;
  for (const auto& a :
       w.command({"image", "pull", ref, "--insecure-registry", "--name", name, "--username", user, "--password-stdin"}))
    joined += "'" + a + "' ";
  return run({"/bin/sh", "-c", "printf '%s\\n' '" + password + "' | " + joined}, w.sb.env, 120s);
}

void remove_images(world& w, std::initializer_list<const char*> names) {
  for (const char* n : names)
    w.cli({"image", "rm", n});
}

} // namespace

BOOST_AUTO_TEST_SUITE(registry_pulls)

BOOST_AUTO_TEST_CASE(pull_a_tag_show_it_and_pull_it_again_by_digest) {
  auto& w = the_world();
  auto& im = the_images();
  test_registry reg(w.ns.exec(), 5000);
  reg.push(im.layout, "app", "team/app:v1");
  prune_cache(w);
  std::string ref = reg.host() + "/team/app:v1";

  // Plain HTTP only for a registry named insecure: without it banger speaks TLS and fails.
  auto tls = w.cli({"image", "pull", ref});
  BOOST_TEST(tls.exit_code == 1, tls.out + tls.err);
  BOOST_TEST(!has_image(w, "app-v1"));

  auto p = w.cli({"image", "pull", ref, "--insecure-registry"});
  BOOST_TEST_REQUIRE(p.exit_code == 0, p.err);
  BOOST_TEST(p.out.find("image app-v1 version") != std::string::npos, p.out);
  BOOST_TEST(p.out.find("2 layers") != std::string::npos, p.out);
  // Not on a terminal: a plain line per stage, the layer's size in the download's.
  BOOST_TEST(p.err.find("[image pull] download 1/2 (") != std::string::npos, p.err);
  BOOST_TEST(p.err.find("[image pull] layer 2/2 done in") != std::string::npos, p.err);
  auto s = show(w, "app-v1");
  auto oci = s["manifest"]["oci"];
  std::string digest = im.layout.digest_of("app");
  BOOST_TEST(oci["reference"] == ref);
  BOOST_TEST(oci["manifest_digest"] == digest); // skopeo pushed the layout's manifest unchanged
  BOOST_TEST(oci["platform"] == "linux/amd64");
  auto want = im.layout.layers_of("app");
  BOOST_TEST_REQUIRE(oci["layers"].size() == want.size());
  for (std::size_t i = 0; i < want.size(); ++i)
    BOOST_TEST(oci["layers"][i]["digest"] == want[i]["digest"]);
  auto cfg = s["manifest"]["config"];
  BOOST_TEST(cfg["working_dir"] == "/srv/app");
  BOOST_TEST((cfg["env"] == json::array({"PATH=/bin:/usr/bin", "GREETING=hi"})), cfg.dump());
  BOOST_TEST(cfg["cmd"].size() == 3u);
  BOOST_TEST(image_file(w, "app-v1", "/srv/app/greeting") == "hello from the registry\n");
  BOOST_TEST(image_file(w, "app-v1", "/bin/busybox").size() == fs::file_size("/usr/bin/busybox"));

  auto human = w.cli({"image", "show", "app-v1"});
  BOOST_TEST(human.out.find("pulled from  " + ref) != std::string::npos, human.out);
  BOOST_TEST(human.out.find("layers       2") != std::string::npos, human.out);
  BOOST_TEST(human.out.find("\"GREETING=hi\"") != std::string::npos, human.out);

  // By digest: the manifest is fetched again and checked; the layers come from the cache.
  auto before = reg.requests().size();
  auto pinned = reg.host() + "/team/app@" + digest;
  auto d = w.cli({"image", "pull", pinned, "--insecure-registry", "--name", "app-pinned", "--json"});
  BOOST_TEST_REQUIRE(d.exit_code == 0, d.err);
  auto dj = json::parse(d.out);
  // On a terminal (script(1) gives the CLI one): one line redrawn in place, with a bar.
  {
    std::string joined;
    for (const auto& a : w.command({"image", "pull", ref, "--insecure-registry", "--name", "app-tty"}))
      joined += "'" + a + "' ";
    auto env = w.sb.env;
    env["NO_COLOR"] = ""; // unset: progress on a terminal is drawn
    auto tty = run({"/usr/bin/script", "-qec", joined, "/dev/null"}, env, 120s);
    BOOST_TEST_REQUIRE(tty.exit_code == 0, tty.out + tty.err);
    BOOST_TEST(tty.out.find("\r\x1b[K[image pull] layer 1/2 [") != std::string::npos, tty.out);
    BOOST_TEST(tty.out.find("[image pull] layer 2/2 done") == std::string::npos, tty.out); // no plain lines
    BOOST_TEST(tty.out.find("####################] ") != std::string::npos, tty.out);      // a full bar
    remove_images(w, {"app-tty"});
  }
  // --json: progress events on stderr, one JSON object a line.
  bool flatten_seen = false;
  for (const auto& e : json_lines(d.err)) {
    BOOST_TEST(e["event"] == "progress");
    if (e["stage"].get<std::string>().rfind("layer ", 0) == 0 && e["total"].get<std::uint64_t>() > 0)
      flatten_seen = true;
  }
  BOOST_TEST(flatten_seen, d.err);
  BOOST_TEST(dj["name"] == "app-pinned");
  BOOST_TEST(dj["versions"][0]["summary"].get<std::string>().find("0 B downloaded") != std::string::npos, d.out);
  for (const auto& l : want)
    BOOST_TEST(reg.blob_gets(l["digest"], before).empty());
  BOOST_TEST(show(w, "app-pinned")["manifest"]["oci"]["manifest_digest"] == digest);

  // A digest the registry does not have fails and leaves nothing.
  auto bad = w.cli({"image", "pull", reg.host() + "/team/app@sha256:" + std::string(64, 'e'), "--insecure-registry",
                    "--name", "nothing"});
  BOOST_TEST(bad.exit_code == 1);
  BOOST_TEST(bad.err.find("404") != std::string::npos, bad.err);
  BOOST_TEST(!has_image(w, "nothing"));
  remove_images(w, {"app-v1", "app-pinned"});
}

// TLS is verified: a registry whose certificate nobody vouches for is refused, saying why.
BOOST_AUTO_TEST_CASE(a_registry_with_an_untrusted_certificate_is_refused) {
  auto& w = the_world();
  test_registry reg(w.ns.exec(), 5011, registry_auth::anonymous, {}, true);
  auto before = reg.requests().size(); // the fixture's own readiness probe
  auto p = w.cli({"image", "pull", reg.host() + "/team/app:1", "--name", "untrusted"});
  BOOST_TEST(p.exit_code == 1);
  BOOST_TEST(p.err.find("certificate") != std::string::npos, p.err);
  BOOST_TEST(!has_image(w, "untrusted"));
  BOOST_TEST(reg.requests().size() == before); // no request got through the handshake
}

BOOST_AUTO_TEST_CASE(http_basic_with_flags_and_with_dockers_config_json) {
  auto& w = the_world();
  auto& im = the_images();
  test_registry reg(w.ns.exec(), 5001, registry_auth::basic);
  reg.push(im.layout, "other", "team/private:1");
  std::string ref = reg.host() + "/team/private:1";

  auto anon = w.cli({"image", "pull", ref, "--insecure-registry"});
  BOOST_TEST(anon.exit_code == 1);
  BOOST_TEST(anon.err.find("needs a user name and password") != std::string::npos, anon.err);

  auto wrong = pull_with_password(w, ref, "priv-wrong", reg.user, "guess");
  BOOST_TEST(wrong.exit_code == 1);
  BOOST_TEST(wrong.err.find("refused") != std::string::npos, wrong.err);
  BOOST_TEST(!has_image(w, "priv-wrong"));
  auto right = pull_with_password(w, ref, "priv-flags", reg.user, reg.password);
  BOOST_TEST_REQUIRE(right.exit_code == 0, right.err);
  BOOST_TEST(image_file(w, "priv-flags", "/etc/other") == "b\n");

  // The credentials docker and skopeo already keep.
  temp_dir docker{"banger-docker"};
  std::ofstream(docker.path / "config.json")
    << json{{"auths", {{reg.host(), {{"auth", base64_encode("tester:s3cret")}}}}}}.dump();
  auto saved = w.sb.env;
  w.sb.env["DOCKER_CONFIG"] = docker.path.string();
  auto cfg = w.cli({"image", "pull", ref, "--insecure-registry", "--name", "priv-config"});
  w.sb.env = saved;
  BOOST_TEST_REQUIRE(cfg.exit_code == 0, cfg.err);
  BOOST_TEST(image_file(w, "priv-config", "/etc/other") == "b\n");
  remove_images(w, {"priv-flags", "priv-config"});
}

BOOST_AUTO_TEST_CASE(bearer_tokens_from_a_token_server) {
  auto& w = the_world();
  auto& im = the_images();
  test_registry reg(w.ns.exec(), 5008, registry_auth::bearer, BANGER_SOURCE_DIR);
  reg.push(im.layout, "other", "team/tokened:1");
  std::string ref = reg.host() + "/team/tokened:1";

  // Anonymous: the token server grants nothing, and the registry refuses.
  auto anon = w.cli({"image", "pull", ref, "--insecure-registry", "--name", "tok-anon"});
  BOOST_TEST(anon.exit_code == 1);
  BOOST_TEST(anon.err.find("refused access") != std::string::npos, anon.err);
  BOOST_TEST(!has_image(w, "tok-anon"));

  auto wrong = pull_with_password(w, ref, "tok-wrong", reg.user, "guess");
  BOOST_TEST(wrong.exit_code == 1);
  BOOST_TEST(wrong.err.find("the credentials were refused") != std::string::npos, wrong.err);
  BOOST_TEST(!has_image(w, "tok-wrong"));

  auto before = reg.token_log();
  auto right = pull_with_password(w, ref, "tok", reg.user, reg.password);
  BOOST_TEST_REQUIRE(right.exit_code == 0, right.err);
  BOOST_TEST(image_file(w, "tok", "/etc/other") == "b\n");
  // One token for the pull's scope, reused for the manifest and every blob.
  auto log = reg.token_log().substr(before.size());
  std::size_t asked = 0;
  for (std::size_t at = 0; (at = log.find("token tester repository:team/tokened:pull", at)) != std::string::npos; ++at)
    ++asked;
  BOOST_TEST(asked == 1u, log);
  remove_images(w, {"tok"});
}

BOOST_AUTO_TEST_CASE(docker_schema2_manifest_lists_and_zstd_layers) {
  auto& w = the_world();
  auto& im = the_images();
  test_registry reg(w.ns.exec(), 5009);
  reg.push(im.layout, "app", "team/docker:1", false, {"--format", "v2s2"});
  reg.push(im.layout, "multi", "team/dlist:1", true, {"--format", "v2s2"});
  reg.push(im.layout, "app", "team/zstd:1", false, {"--dest-compress-format", "zstd"});

  auto d = w.cli({"image", "pull", reg.host() + "/team/docker:1", "--insecure-registry", "--name", "dock"});
  BOOST_TEST_REQUIRE(d.exit_code == 0, d.err);
  BOOST_TEST(image_file(w, "dock", "/srv/app/greeting") == "hello from the registry\n");
  BOOST_TEST(show(w, "dock")["manifest"]["config"]["working_dir"] == "/srv/app");

  auto l = w.cli({"image", "pull", reg.host() + "/team/dlist:1", "--insecure-registry", "--name", "dlist", "--platform",
                  "linux/arm64"});
  BOOST_TEST_REQUIRE(l.exit_code == 0, l.err);
  BOOST_TEST(image_file(w, "dlist", "/etc/arch") == "arm64");

  auto z = w.cli({"image", "pull", reg.host() + "/team/zstd:1", "--insecure-registry", "--name", "zst"});
  BOOST_TEST_REQUIRE(z.exit_code == 0, z.err);
  BOOST_TEST(image_file(w, "zst", "/srv/app/greeting") == "hello from the registry\n");
  remove_images(w, {"dock", "dlist", "zst"});
}

// A registry that serves other bytes than the digests it names (a tampered store, a broken
// mirror): every blob is refused as it arrives, no image is made and the cache keeps nothing
// unverified.
BOOST_AUTO_TEST_CASE(a_registry_serving_wrong_bytes_is_refused_leaving_nothing) {
  auto& w = the_world();
  auto& im = the_images();
  test_registry reg(w.ns.exec(), 5010);
  reg.push(im.layout, "other", "team/tampered:1");
  std::string ref = reg.host() + "/team/tampered:1";
  auto stored = [&](const std::string& digest) {
    return reg.dir.path / "data/docker/registry/v2/blobs/sha256" / digest.substr(7, 2) / digest.substr(7) / "data";
  };
  auto manifest_digest = im.layout.digest_of("other");
  auto manifest = im.layout.blob(manifest_digest);
  struct tamper_case {
    std::string what, digest, expect;
  };
  std::vector<tamper_case> cases{
    {"a layer", manifest["layers"][1]["digest"], "hashing to"},
    {"the config", manifest["config"]["digest"], "hashing to"},
    {"the manifest", manifest_digest, "but the registry says"},
  };
  for (const auto& c : cases) {
    BOOST_TEST_CONTEXT(c.what) {
      prune_cache(w);
      auto path = stored(c.digest);
      auto original = slurp(path);
      BOOST_TEST_REQUIRE(!original.empty());
      auto bad = original;
      bad[bad.size() / 2] = static_cast<char>(bad[bad.size() / 2] ^ 0x20); // same size, other bytes
      std::ofstream(path, std::ios::binary | std::ios::trunc) << bad;
      auto p = w.cli({"image", "pull", ref, "--insecure-registry", "--name", "tampered"});
      std::ofstream(path, std::ios::binary | std::ios::trunc) << original;
      BOOST_TEST_MESSAGE(c.what << " tampered: " << p.err);
      BOOST_TEST(p.exit_code == 1);
      BOOST_TEST(p.err.find(c.expect) != std::string::npos, p.err);
      BOOST_TEST(!has_image(w, "tampered"));
      BOOST_TEST(!fs::exists(w.sb.state() / "images" / "tampered"));
      std::error_code ec;
      for (const auto& e : fs::directory_iterator(blob_dir(w) / "sha256", ec))
        BOOST_TEST(sha256_hex(slurp(e.path())) == e.path().filename().string());
      for (const auto& e : fs::directory_iterator(blob_dir(w) / "partial", ec))
        BOOST_TEST(e.path().extension() == ".lock", e.path());
    }
  }
  // Restored, the same pull succeeds.
  auto good = w.cli({"image", "pull", ref, "--insecure-registry", "--name", "tampered"});
  BOOST_TEST_REQUIRE(good.exit_code == 0, good.err);
  remove_images(w, {"tampered"});
}

BOOST_AUTO_TEST_CASE(an_index_gives_the_host_platform_or_the_one_asked_for) {
  auto& w = the_world();
  auto& im = the_images();
  test_registry reg(w.ns.exec(), 5002);
  reg.push(im.layout, "multi", "team/multi:1", true);
  reg.push(im.layout, "arm64", "team/armonly:1");
  std::string ref = reg.host() + "/team/multi:1";

  auto host = w.cli({"image", "pull", ref, "--insecure-registry", "--name", "m-amd"});
  BOOST_TEST_REQUIRE(host.exit_code == 0, host.err);
  BOOST_TEST(image_file(w, "m-amd", "/etc/arch") == "amd64");
  auto oci = show(w, "m-amd")["manifest"]["oci"];
  BOOST_TEST(oci["index_digest"] == im.index_digest);
  BOOST_TEST(oci["manifest_digest"] == im.layout.digest_of("amd64"));
  BOOST_TEST(oci["platform"] == "linux/amd64");

  auto arm = w.cli({"image", "pull", ref, "--insecure-registry", "--name", "m-arm", "--platform", "linux/arm64"});
  BOOST_TEST_REQUIRE(arm.exit_code == 0, arm.err);
  BOOST_TEST(image_file(w, "m-arm", "/etc/arch") == "arm64");
  BOOST_TEST(show(w, "m-arm")["manifest"]["oci"]["platform"] == "linux/arm64");

  auto none = w.cli({"image", "pull", ref, "--insecure-registry", "--name", "m-s390", "--platform", "linux/s390x"});
  BOOST_TEST(none.exit_code == 1);
  BOOST_TEST(none.err.find("linux/amd64") != std::string::npos, none.err);
  BOOST_TEST(none.err.find("linux/arm64") != std::string::npos, none.err);
  BOOST_TEST(!has_image(w, "m-s390"));

  // A lone manifest for another architecture is refused unless asked for.
  auto lone = w.cli({"image", "pull", reg.host() + "/team/armonly:1", "--insecure-registry", "--name", "lone"});
  BOOST_TEST(lone.exit_code == 1);
  BOOST_TEST(lone.err.find("is an image for \"linux\"/\"arm64\"") != std::string::npos, lone.err);
  BOOST_TEST(!has_image(w, "lone"));
  remove_images(w, {"m-amd", "m-arm"});
}

BOOST_AUTO_TEST_CASE(two_pulls_sharing_a_layer_download_it_once) {
  auto& w = the_world();
  auto& im = the_images();
  test_registry reg(w.ns.exec(), 5003);
  reg.push(im.layout, "app", "team/a:1");
  reg.push(im.layout, "other", "team/b:1");
  prune_cache(w);
  auto before = reg.requests().size();
  auto a = std::async(std::launch::async, [&] {
    return w.cli({"image", "pull", reg.host() + "/team/a:1", "--insecure-registry"});
  });
  auto b = std::async(std::launch::async, [&] {
    return w.cli({"image", "pull", reg.host() + "/team/b:1", "--insecure-registry"});
  });
  auto ra = a.get(), rb = b.get();
  BOOST_TEST_REQUIRE(ra.exit_code == 0, ra.err);
  BOOST_TEST_REQUIRE(rb.exit_code == 0, rb.err);
  auto gets = reg.blob_gets(im.base_layer(), before);
  BOOST_TEST(gets.size() == 1u, "the shared layer was fetched " << gets.size() << " times");
  BOOST_TEST(image_file(w, "a-1", "/srv/app/greeting") == "hello from the registry\n");
  BOOST_TEST(image_file(w, "b-1", "/etc/other") == "b\n");
  remove_images(w, {"a-1", "b-1"});
}

BOOST_AUTO_TEST_CASE(a_broken_off_download_resumes_with_a_range_request) {
  auto& w = the_world();
  auto& im = the_images();
  test_registry reg(w.ns.exec(), 5004);
  reg.push(im.layout, "base", "team/base:1");
  prune_cache(w);
  // What a pull cut off halfway leaves: the first half of the layer, under partial/.
  std::string layer = im.base_layer();
  auto bytes = slurp(im.layout.blob_path(layer));
  BOOST_TEST_REQUIRE(bytes.size() > 100000u);
  std::size_t half = bytes.size() / 2;
  fs::create_directories(blob_dir(w) / "partial");
  std::ofstream(blob_dir(w) / "partial" / layer.substr(7), std::ios::binary) << bytes.substr(0, half);
  auto before = reg.requests().size();
  auto p = w.cli({"image", "pull", reg.host() + "/team/base:1", "--insecure-registry"});
  BOOST_TEST_REQUIRE(p.exit_code == 0, p.err);
  auto gets = reg.blob_gets(layer, before);
  BOOST_TEST_REQUIRE(gets.size() == 1u);
  BOOST_TEST(gets[0].status == 206);
  BOOST_TEST(gets[0].bytes == bytes.size() - half);
  BOOST_TEST(!fs::exists(blob_dir(w) / "partial" / layer.substr(7)));
  BOOST_TEST(slurp(blob_dir(w) / "sha256" / layer.substr(7)) == bytes);
  BOOST_TEST(image_file(w, "base-1", "/bin/busybox").size() == fs::file_size("/usr/bin/busybox"));
  remove_images(w, {"base-1"});
}

BOOST_AUTO_TEST_CASE(cache_prune_frees_blobs_and_a_pull_during_prunes_completes) {
  auto& w = the_world();
  auto& im = the_images();
  test_registry reg(w.ns.exec(), 5005);
  reg.push(im.layout, "app", "team/app:1");
  prune_cache(w);
  BOOST_TEST_REQUIRE(w.cli({"image", "pull", reg.host() + "/team/app:1", "--insecure-registry"}).exit_code == 0);
  std::uint64_t on_disk = 0, files = 0;
  for (const auto& e : fs::directory_iterator(blob_dir(w) / "sha256")) {
    on_disk += fs::file_size(e.path());
    ++files;
  }
  BOOST_TEST(files == 2u); // the two layers (the config is read in memory)

  auto dry = w.cli({"image", "cache", "prune", "--dry-run", "--json"});
  BOOST_TEST_REQUIRE(dry.exit_code == 0, dry.err);
  auto dj = json::parse(dry.out);
  BOOST_TEST(dj["blobs"] == files);
  BOOST_TEST(dj["bytes"] == on_disk);
  BOOST_TEST(fs::file_size(blob_dir(w) / "sha256" / im.base_layer().substr(7)) > 0u);
  auto human = w.cli({"image", "cache", "prune", "--dry-run"});
  BOOST_TEST(human.out.find("would free " + human_bytes(on_disk) + " across 2 blobs") != std::string::npos, human.out);
  auto done = w.cli({"image", "cache", "prune"});
  BOOST_TEST_REQUIRE(done.exit_code == 0, done.err);
  BOOST_TEST(done.out.find("freed " + human_bytes(on_disk) + " across 2 blobs in ") != std::string::npos, done.out);
  BOOST_TEST(fs::is_empty(blob_dir(w) / "sha256"));
  BOOST_TEST(image_file(w, "app-1", "/srv/app/greeting") == "hello from the registry\n"); // images keep working

  // Prunes racing a pull: the pull still completes with a correct image.
  auto pull = std::async(std::launch::async, [&] {
    return w.cli({"image", "pull", reg.host() + "/team/app:1", "--insecure-registry", "--name", "raced"});
  });
  int prunes = 0;
  while (pull.wait_for(50ms) != std::future_status::ready) {
    auto r = w.cli({"image", "cache", "prune"});
    BOOST_TEST(r.exit_code == 0, r.err);
    ++prunes;
  }
  auto rp = pull.get();
  BOOST_TEST_REQUIRE(rp.exit_code == 0, rp.err);
  BOOST_TEST_MESSAGE("prunes during the pull: " << prunes);
  BOOST_TEST(image_file(w, "raced", "/srv/app/greeting") == "hello from the registry\n");
  remove_images(w, {"app-1", "raced"});
}

BOOST_AUTO_TEST_CASE(a_cap_in_config_toml_refuses_a_pull_naming_itself_and_leaves_nothing) {
  auto& w = the_world();
  auto& im = the_images();
  test_registry reg(w.ns.exec(), 5007);
  reg.push(im.layout, "app", "team/app:capped");
  // The daemon reads the caps when it starts.
  BOOST_TEST_REQUIRE(w.cli({"daemon", "stop"}).exit_code == 0);
  fs::create_directories(w.config_file().parent_path());
  std::ofstream(w.config_file()) << "[images]\nmax_layer_entries = 5\n";
  auto p = w.cli({"image", "pull", reg.host() + "/team/app:capped", "--insecure-registry"});
  fs::remove(w.config_file());
  BOOST_TEST(w.cli({"daemon", "stop"}).exit_code == 0);
  BOOST_TEST(p.exit_code == 1);
  BOOST_TEST(p.err.find("more than 5 entries") != std::string::npos, p.err);
  BOOST_TEST(p.err.find("max_layer_entries in config.toml's [images]") != std::string::npos, p.err);
  BOOST_TEST(!has_image(w, "app-capped"));
  BOOST_TEST(!fs::exists(w.sb.state() / "images" / "app-capped"), "a staging directory was left");
  // The cache holds verified blobs only, each under its own digest.
  for (const auto& e : fs::directory_iterator(blob_dir(w) / "sha256"))
    BOOST_TEST(sha256_hex(slurp(e.path())) == e.path().filename().string());
  for (const auto& e : fs::directory_iterator(blob_dir(w) / "partial"))
    BOOST_TEST(e.path().extension() == ".lock", e.path());
}

BOOST_AUTO_TEST_CASE(vm_run_pulls_on_first_use_and_runs_entrypoint_and_cmd) {
  auto& w = the_world();
  auto& im = the_images();
  test_registry reg(w.ns.exec(), 5006);
  reg.push(im.layout, "app", "team/app:run");
  std::string ref = reg.host() + "/team/app:run";
  // The registry is named insecure in config.toml (vm run has no flag for it).
  fs::create_directories(w.config_file().parent_path());
  std::ofstream(w.config_file()) << "[images]\ninsecure_registries = [\"" << reg.host() << "\"]\n";

  auto first = w.cli({"vm", "run", "--rm", "--image", ref});
  BOOST_TEST_REQUIRE(first.exit_code == 0, first.err);
  BOOST_TEST(first.out == "from-cmd in /srv/app with hi\n", first.out);
  BOOST_TEST(first.err.find("pulling it as \"app-run\"") != std::string::npos, first.err);
  BOOST_TEST(has_image(w, "app-run"));

  // Once pulled, the reference names that image: no second pull, and a command of our own
  // runs in the image's WorkingDir with its Env.
  auto second = w.cli({"vm", "run", "--rm", "--image", ref, "--", "sh", "-c", "pwd; echo $GREETING; cat greeting"});
  BOOST_TEST_REQUIRE(second.exit_code == 0, second.err);
  BOOST_TEST(second.out == "/srv/app\nhi\nhello from the registry\n", second.out);
  BOOST_TEST(second.err.find("pulling") == std::string::npos, second.err);

  // A name already taken by an image from elsewhere is not overwritten.
  auto taken = w.cli({"vm", "run", "--rm", "--image", reg.host() + "/team/default", "--", "true"});
  BOOST_TEST(taken.exit_code == 1);
  BOOST_TEST(taken.err.find("comes from busybox") != std::string::npos, taken.err);
  fs::remove(w.config_file());
  BOOST_TEST(w.vms().empty());
  BOOST_TEST(w.leaks() == "");
  remove_images(w, {"app-run"});
}

BOOST_AUTO_TEST_SUITE_END()
