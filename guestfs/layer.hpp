// OCI image layers applied straight into an ext4 image (issue #13: no tree of host files in
// between). A layer is a tar stream, read by the caller with the decompression it trusts
// (libarchive, in-process); each entry is written through ext4_image's by-inode calls, so it
// works on the image's own namespace only and no entry can reach the host.
//
// The OCI image spec's changeset rules: entries add or replace what lower layers left (a type
// change replaces the old entry, a directory over a directory keeps its contents and takes the
// new attributes); `.wh.NAME` removes NAME of a lower layer; `.wh..wh..opq` in a directory
// removes what lower layers left in it. Whiteouts apply to lower layers only, whatever their
// position in the stream.
//
// Refused, errc::bad_request naming the entry (the caller discards the image): absolute names,
// "..", NUL or empty components, names over 255 bytes or paths over 4095; a parent that is a
// symlink or not a directory (no entry goes through a symlink an earlier entry or layer made);
// malformed whiteouts (`.wh.` alone, `.wh..`, other `.wh..wh.` names) and whiteouts with
// content; hard links to anything but a regular file already in the image (never through a
// symlink); symlink targets the image cannot hold; more entries or bytes than the limits;
// sockets; extended attributes outside user.*, security.* and trusted.* (system.* would be ACLs
// and other kernel-interpreted data), more than max_xattrs on an entry, or over 64 KiB.
//
// Device nodes and fifos become inodes of the image (the guest's; the host never opens them),
// and extended attributes, security.capability among them, are written as the layer has them.
// uid/gid are the layer's, whoever runs the pull.
#pragma once

#include <cstdint>
#include <string>

#include "common/error.hpp"
#include "guestfs/ext4.hpp"

struct archive; // libarchive's reader, opened by the caller

namespace banger::guestfs {

struct layer_limits {
  std::uint64_t max_entries = 1'000'000;
  std::uint64_t max_bytes = 64ull << 30; ///< file content, in all
  std::size_t max_depth = 256;           ///< path components
};

struct layer_stats {
  std::uint64_t entries = 0, files = 0, bytes = 0, whiteouts = 0, nodes = 0, xattrs = 0;
};

/// Extended attributes applied to one entry, at most.
inline constexpr std::size_t max_xattrs = 64;

/// Applies the layer `in` reads (positioned before its first header) onto the root of `img`.
/// `what` names the layer in messages ("layer 2 (sha256:...)"). On failure the image is in
/// between: the caller drops it.
expected<layer_stats> apply_layer(ext4_image& img, archive* in, const std::string& what,
                                  const layer_limits& limits = {});

} // namespace banger::guestfs
