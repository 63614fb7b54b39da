// Image references as registries and their clients write them (the OCI distribution spec's
// names; the grammar of distribution's reference package): [REGISTRY/]REPOSITORY[:TAG][@DIGEST].
// Docker Hub's short forms are read the usual way: a first component without '.' or ':' that
// is not "localhost" is a repository on docker.io, and a one-component repository there is in
// "library/" (so "busybox" is docker.io/library/busybox:latest). Only sha256 digests are taken:
// they are what banger verifies blobs with.
#pragma once

#include <string>
#include <string_view>

#include "common/error.hpp"

namespace banger::fetch {

struct oci_reference {
  std::string registry;   ///< "docker.io", "registry.example:5000", "127.0.0.1:5000", "[::1]:5000"
  std::string repository; ///< "library/python", "team/python": lowercase components joined by '/'
  std::string tag;        ///< "3.12"; "latest" when neither tag nor digest was given; may be empty with a digest
  std::string digest;     ///< "sha256:<64 lowercase hex>" or empty

  /// The host the distribution API is served on: registry-1.docker.io for docker.io, else
  /// the registry as written.
  std::string api_host() const;
  /// The canonical form: "docker.io/library/busybox:latest", "reg:5000/a/b@sha256:...",
  /// "reg/a:tag@sha256:..." (the digest is what is pulled then; the tag is kept for the record).
  std::string str() const;
};

/// Parses `text`; errc::bad_request naming what is wrong (an empty or over-long reference,
/// uppercase in the repository, an empty or malformed component, a bad tag, a digest that is
/// not sha256 with 64 lowercase hex digits).
expected<oci_reference> parse_oci_reference(std::string_view text);

} // namespace banger::fetch
