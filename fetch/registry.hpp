// A client for the OCI distribution API v2 (issue #13): resolves a reference to one image
// manifest and fetches its blobs, verifying everything before it is used.
//
//   - Every manifest request sends the OCI and Docker Accept types (without an OCI Accept a
//     registry answers an index with 404, and converts a Docker manifest to schema 1).
//   - An OCI index or Docker manifest list is resolved to the entry for the platform asked for;
//     OCI and Docker schema 2 manifests are read; schema 1 is refused with a message.
//   - A manifest's digest is checked against the reference's digest or, for a tag, the
//     registry's Docker-Content-Digest; a blob against its descriptor's digest and size while
//     it streams. A body over its cap or of the wrong size is stopped as it arrives.
//   - Authentication: anonymous first; on a 401, HTTP Basic with the credentials given, or the
//     Bearer token flow (the challenge's realm, service and scope), the token cached per scope
//     for the client's life. Credentials go in clear only to a registry named insecure.
//   - TLS is verified (libcurl's defaults); plain HTTP only with registry_options::plain_http.
// Blocking; one client per pull, used from one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "fetch/http.hpp"
#include "fetch/oci_reference.hpp"
#include "fetch/registry_auth.hpp"

namespace banger::fetch {

namespace media_type {
inline constexpr std::string_view oci_index = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view oci_manifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view docker_list = "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view docker_manifest = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view oci_config = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view docker_config = "application/vnd.docker.container.image.v1+json";
} // namespace media_type

/// How a layer's bytes are compressed, from its media type.
enum class layer_compression { none, gzip, zstd };

struct blob_descriptor {
  std::string media_type;
  std::string digest; ///< "sha256:<64 hex>"
  std::uint64_t size = 0;
};

struct platform_spec {
  std::string os = "linux";
  std::string architecture = "amd64";
  std::string variant; ///< empty: any
  std::string str() const;
};

/// "linux/amd64", "linux/arm64/v8"; errc::bad_request otherwise.
expected<platform_spec> parse_platform(std::string_view text);

struct registry_limits {
  std::uint64_t max_manifest_bytes = 4 << 20;
  std::uint64_t max_config_bytes = 8 << 20;
  std::size_t max_layers = 128;
  std::size_t max_index_entries = 1024;
  std::uint64_t max_layer_bytes = 16ull << 30; ///< a descriptor declaring more is refused
};

struct registry_options {
  bool plain_http = false; ///< the registry was named insecure: http://, not https://
  std::optional<credentials> creds;
  std::chrono::seconds timeout{30};
  registry_limits limits;
};

struct resolved_image {
  std::string manifest_digest; ///< of the image manifest used
  std::string media_type;      ///< of that manifest
  std::string index_digest;    ///< of the index it was picked from; empty when the reference named a manifest
  std::string platform;        ///< "linux/amd64" as the index listed it; empty without an index
  blob_descriptor config;
  std::vector<blob_descriptor> layers; ///< in order, lowest first
};

/// A layer descriptor's compression; errc::bad_request for a foreign or non-distributable layer
/// (it would have to come from elsewhere than the registry) or a media type that is not a layer.
expected<layer_compression> compression_of(const blob_descriptor& d);

/// Parses an image manifest (OCI or Docker schema 2) or an index / manifest list body. Exposed
/// for tests: outside input, every field checked. `what` names the document in messages.
expected<resolved_image> parse_image_manifest(std::string_view body, std::string_view media_type,
                                              const registry_limits& limits, std::string_view what);
/// The digest of the index entry for `want`: an exact os/architecture match, the variant too
/// when given. errc::not_found listing the platforms the index has.
expected<std::string> pick_platform(std::string_view index_body, const platform_spec& want,
                                    const registry_limits& limits, std::string_view what,
                                    std::string* picked = nullptr);

class registry_client {
public:
  registry_client(oci_reference ref, registry_options opts);

  const oci_reference& reference() const { return ref_; }

  /// The image manifest for `platform`: fetched, digest-checked, parsed.
  expected<resolved_image> resolve(const platform_spec& platform);

  /// A small verified blob (the image config) in memory, at most limits.max_config_bytes.
  expected<std::string> fetch_small_blob(const blob_descriptor& d);

  /// Appends blob `d` to `fd`, which already holds its first `have` bytes (a partial download
  /// to resume; 0 for a fresh one), then checks the whole file's size and digest. A server that
  /// ignores the Range request restarts the file. errc::operation_failed for a mismatch (the
  /// file is then not the blob: the caller discards it).
  expected<void> fetch_blob(const blob_descriptor& d, int fd, std::uint64_t have, const progress_fn& progress);

private:
  std::string base() const;
  expected<http_reply> get(const std::string& path, std::vector<std::string> headers, http_request rq);
  expected<void> authenticate(const http_reply& challenge_reply);
  expected<std::pair<std::string, std::string>> fetch_manifest(const std::string& ref_part,
                                                               std::string_view expect_digest);
  error http_error(const http_reply& r, const std::string& what) const;
  error blob_mismatch(const blob_descriptor& d, std::uint64_t got_size, const std::string& got_digest,
                      std::string_view outcome) const;

  oci_reference ref_;
  registry_options opts_;
  std::optional<std::string> authorization_;  ///< the header to send, once a challenge was met
  std::map<std::string, std::string> tokens_; ///< scope -> bearer token fetched for it
};

} // namespace banger::fetch
