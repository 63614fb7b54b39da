// x86 bzImage inspection and conversion to a PVH ELF `vmlinux`, plus the payload codecs
// (LZ4 legacy, XZ, gzip, zstd) the kernel and module builders share. Pure functions over
// bytes held in memory; any thread.
//
// A bzImage as the x86 boot protocol (Documentation/x86/boot.rst) lays it out:
//
//   0x000  real-mode setup: (setup_sects + 1) * 512 bytes (setup_sects 0 means 4)
//   0x1F1    u8   setup_sects
//   0x202    u32  "HdrS"                      boot protocol magic
//   0x206    u16  version                     >= 0x0208 carries the payload fields
//   0x248    u32  payload_offset              from the start of the protected-mode code
//   0x24C    u32  payload_length              includes the 4-byte size trailer below
//   ....   protected-mode code (the decompressor), then the payload:
//          [compressed vmlinux ELF][u32 LE uncompressed size]
//
// Invariants: every offset read from the image is bounds-checked; decompression never writes
// past the size the trailer announces nor past `max_output`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace banger::guestfs {

enum class compression { none, gzip, xz, lz4_legacy, zstd, bzip2, lzma, lzo, unknown };

std::string_view to_string(compression c);

/// The compression a buffer starts with, by magic number (lzma, bzip2 and lzo are recognised
/// only so errors can name them; they cannot be decompressed here).
compression sniff_compression(std::string_view bytes);

/// Decompresses one gzip / xz / LZ4-legacy / zstd stream (bytes after the stream are
/// ignored). Fails with errc::bad_request on corrupt input, an unsupported codec, or output
/// larger than `max_output`.
expected<std::string> decompress(compression c, std::string_view in, std::size_t max_output);

struct bzimage_header {
  std::uint8_t setup_sects = 0;    ///< as stored (0 means 4)
  std::uint16_t boot_protocol = 0; ///< e.g. 0x020f
  std::uint32_t payload_offset = 0;
  std::uint32_t payload_length = 0;
  std::size_t payload_start = 0;       ///< absolute offset of the payload in the file
  std::uint32_t uncompressed_size = 0; ///< from the payload's trailer
  compression payload_compression = compression::unknown;
};

/// Parses the boot setup header. Fails with errc::bad_request when `image` is not a bzImage
/// (no "HdrS", protocol < 2.08, or payload fields pointing outside the file).
expected<bzimage_header> parse_bzimage(std::string_view image);

/// Whether an ELF image carries the PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY, owner "Xen"),
/// searched in PT_NOTE segments. False for anything that is not a well-formed ELF64.
bool has_pvh_note(std::string_view elf);

struct pvh_conversion {
  std::optional<std::string> vmlinux; ///< the PVH ELF, when the bzImage was convertible
  std::string why_not;                ///< when it was not: which step refused, for the user
  compression payload = compression::unknown;
};

/// Extracts the vmlinux ELF from a bzImage's payload. "Not convertible" is not an error: a
/// payload codec we lack or an ELF without a PVH note yields `vmlinux` empty and `why_not`
/// set, and the caller keeps the bzImage. Errors (errc::bad_request) are for input that is not
/// a bzImage at all or whose payload is corrupt.
expected<pvh_conversion> convert_to_pvh(std::string_view bzimage);

} // namespace banger::guestfs
