// Registry documents as the client reads them: manifests (OCI and Docker schema 2), indexes and
// manifest lists, platforms and layer media types, with schema 1, foreign layers and malformed
// descriptors refused.
#include <boost/test/unit_test.hpp>

#include <string>

#include <fmt/format.h>

#include "fetch/registry.hpp"

namespace banger::fetch {

namespace {

const std::string hex_a(64, 'a');
const std::string hex_b(64, 'b');

std::string manifest_with(std::string_view config_type, std::string_view layer) {
  return fmt::format(R"({{"schemaVersion":2,"config":{{"mediaType":"{}","digest":"sha256:{}","size":120}},)"
                     R"("layers":[{}]}})",
                     config_type, hex_a, layer);
}

std::string layer_of(std::string_view type, std::string_view digest = hex_b, long long size = 4096) {
  return fmt::format(R"({{"mediaType":"{}","digest":"sha256:{}","size":{}}})", type, digest, size);
}

} // namespace

BOOST_AUTO_TEST_SUITE(registry_documents)

BOOST_AUTO_TEST_CASE(oci_and_docker_manifests_parse) {
  registry_limits lim;
  auto oci =
    parse_image_manifest(manifest_with(media_type::oci_config, layer_of("application/vnd.oci.image.layer.v1.tar+gzip")),
                         media_type::oci_manifest, lim, "manifest");
  BOOST_TEST_REQUIRE(oci.has_value(), (oci ? "" : oci.err().message));
  BOOST_TEST(oci->config.digest == "sha256:" + hex_a);
  BOOST_TEST(oci->config.size == 120u);
  BOOST_TEST_REQUIRE(oci->layers.size() == 1u);
  BOOST_TEST(oci->layers[0].size == 4096u);
  BOOST_TEST((*compression_of(oci->layers[0]) == layer_compression::gzip));

  auto docker = parse_image_manifest(
    manifest_with(media_type::docker_config, layer_of("application/vnd.docker.image.rootfs.diff.tar.gzip")),
    media_type::docker_manifest, lim, "manifest");
  BOOST_TEST_REQUIRE(docker.has_value(), (docker ? "" : docker.err().message));
  BOOST_TEST(docker->media_type == media_type::docker_manifest);
}

BOOST_AUTO_TEST_CASE(layer_media_types_give_their_compression) {
  auto comp = [](std::string type) { return compression_of(blob_descriptor{std::move(type), "sha256:" + hex_b, 1}); };
  BOOST_TEST((*comp("application/vnd.oci.image.layer.v1.tar") == layer_compression::none));
  BOOST_TEST((*comp("application/vnd.oci.image.layer.v1.tar+zstd") == layer_compression::zstd));
  BOOST_TEST((*comp("application/vnd.oci.image.layer.v1.tar+gzip") == layer_compression::gzip));
  for (const char* bad : {"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                          "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", "text/plain", ""}) {
    BOOST_TEST_CONTEXT(bad) {
      auto r = comp(bad);
      BOOST_TEST_REQUIRE(!r.has_value());
      BOOST_TEST((r.err().code == errc::bad_request));
    }
  }
}

BOOST_AUTO_TEST_CASE(schema1_artifacts_and_malformed_manifests_are_refused) {
  registry_limits lim;
  auto s1 = parse_image_manifest(R"({"schemaVersion":1,"name":"x","fsLayers":[]})",
                                 "application/vnd.docker.distribution.manifest.v1+prettyjws", lim, "manifest");
  BOOST_TEST_REQUIRE(!s1.has_value());
  BOOST_TEST(s1.err().message.find("schema 1") != std::string::npos, s1.err().message);

  const std::string gz = "application/vnd.oci.image.layer.v1.tar+gzip";
  const std::string cases[] = {
    "",
    "[]",
    "{not json",
    manifest_with("application/vnd.example.artifact+json", layer_of(gz)),      // an artifact, not an image
    manifest_with(media_type::oci_config, layer_of(gz, "xyz")),                // digest not 64 hex
    manifest_with(media_type::oci_config, layer_of(gz, std::string(64, 'A'))), // upper-case hex
    manifest_with(media_type::oci_config, layer_of(gz, hex_b, -1)),            // negative size
    manifest_with(media_type::oci_config, layer_of(gz, hex_b, 1LL << 40)),     // over max_layer_bytes
    manifest_with(media_type::oci_config, layer_of("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip")),
    R"({"schemaVersion":2,"layers":[]})", // no config
    fmt::format(R"({{"schemaVersion":3,"config":{{"mediaType":"{}","digest":"sha256:{}","size":1}},"layers":[]}})",
                media_type::oci_config, hex_a),
  };
  for (const auto& body : cases) {
    BOOST_TEST_CONTEXT(body) {
      auto r = parse_image_manifest(body, media_type::oci_manifest, lim, "manifest");
      BOOST_TEST(!r.has_value());
    }
  }
  registry_limits few;
  few.max_layers = 1;
  auto many = parse_image_manifest(manifest_with(media_type::oci_config, layer_of(gz) + "," + layer_of(gz)),
                                   media_type::oci_manifest, few, "manifest");
  BOOST_TEST_REQUIRE(!many.has_value());
  BOOST_TEST(many.err().message.find("cap") != std::string::npos, many.err().message);
}

BOOST_AUTO_TEST_CASE(an_index_gives_the_entry_for_the_platform) {
  auto entry = [](std::string_view digest_hex, std::string_view arch, std::string_view variant = "",
                  std::string_view type = media_type::oci_manifest) {
    std::string v = variant.empty() ? "" : fmt::format(R"(,"variant":"{}")", variant);
    return fmt::format(R"({{"mediaType":"{}","digest":"sha256:{}","size":500,)"
                       R"("platform":{{"os":"linux","architecture":"{}"{}}}}})",
                       type, digest_hex, arch, v);
  };
  const std::string c(64, 'c'), d(64, 'd'), e(64, 'e');
  std::string index = fmt::format(R"({{"schemaVersion":2,"manifests":[{},{},{}]}})",
                                  entry(c, "amd64", "", "application/vnd.oci.image.index.v1+json"), // nested: skipped
                                  entry(d, "arm64", "v8"), entry(e, "amd64"));
  registry_limits lim;
  std::string picked;
  auto amd = pick_platform(index, *parse_platform("linux/amd64"), lim, "index", &picked);
  BOOST_TEST_REQUIRE(amd.has_value(), (amd ? "" : amd.err().message));
  BOOST_TEST(*amd == "sha256:" + e);
  BOOST_TEST(picked == "linux/amd64");
  auto arm = pick_platform(index, *parse_platform("linux/arm64/v8"), lim, "index");
  BOOST_TEST_REQUIRE(arm.has_value());
  BOOST_TEST(*arm == "sha256:" + d);
  auto missing = pick_platform(index, *parse_platform("linux/riscv64"), lim, "index");
  BOOST_TEST_REQUIRE(!missing.has_value());
  BOOST_TEST((missing.err().code == errc::not_found));
  BOOST_TEST(missing.err().message.find("linux/arm64/v8") != std::string::npos, missing.err().message);
}

BOOST_AUTO_TEST_CASE(platforms_parse_and_bad_ones_are_refused) {
  auto p = parse_platform("linux/arm64/v8");
  BOOST_TEST_REQUIRE(p.has_value());
  BOOST_TEST(p->os == "linux");
  BOOST_TEST(p->architecture == "arm64");
  BOOST_TEST(p->variant == "v8");
  BOOST_TEST(p->str() == "linux/arm64/v8");
  for (const char* bad : {"", "linux", "linux/", "/amd64", "linux/amd64/v8/x", "li nux/amd64",
                          "linux/am\x01"
                          "d64"}) {
    BOOST_TEST_CONTEXT(bad) { BOOST_TEST(!parse_platform(bad).has_value()); }
  }
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace banger::fetch
