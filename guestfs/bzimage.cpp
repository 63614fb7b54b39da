// bzImage header parsing, payload decompression and the PVH note check. See bzimage.hpp for
// the layout. Pure functions; any thread.
#include "guestfs/bzimage.hpp"

#include <cstring>
#include <fmt/format.h>
#include <memory>

#include <lz4.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

namespace banger::guestfs {

namespace {

constexpr std::uint32_t lz4_legacy_magic = 0x184C2102;
constexpr std::size_t lz4_legacy_block = 8u << 20; // the legacy format's fixed chunk size
constexpr std::size_t chunk = 1u << 20;
constexpr std::uint32_t elf_note_pvh_entry = 18; // XEN_ELFNOTE_PHYS32_ENTRY
constexpr std::uint32_t pt_note = 4;
constexpr std::uint32_t max_vmlinux = 512u << 20;

std::uint32_t le32(std::string_view b, std::size_t at) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i)
    v = (v << 8) | static_cast<unsigned char>(b[at + static_cast<std::size_t>(i)]);
  return v;
}
std::uint16_t le16(std::string_view b, std::size_t at) {
  return static_cast<std::uint16_t>(static_cast<unsigned char>(b[at]) | static_cast<unsigned char>(b[at + 1]) << 8);
}
std::uint64_t le64(std::string_view b, std::size_t at) {
  return static_cast<std::uint64_t>(le32(b, at)) | static_cast<std::uint64_t>(le32(b, at + 4)) << 32;
}

error corrupt(compression c, std::string_view what) {
  return make_error(errc::bad_request, fmt::format("{} stream is corrupt: {}", to_string(c), what));
}
error too_big(compression c, std::size_t max_output) {
  return make_error(errc::bad_request,
                    fmt::format("{} stream decompresses to more than the {} byte limit", to_string(c), max_output));
}

expected<std::string> inflate_gzip(std::string_view in, std::size_t max_output) {
  z_stream z{};
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
    return make_error(errc::internal, "zlib inflateInit2 failed");
  std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&z, inflateEnd);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  std::string out;
  for (;;) {
    std::size_t had = out.size();
    out.resize(had + chunk);
    z.next_out = reinterpret_cast<Bytef*>(out.data() + had);
    z.avail_out = static_cast<uInt>(chunk);
    int rc = inflate(&z, Z_NO_FLUSH);
    out.resize(out.size() - z.avail_out);
    if (out.size() > max_output)
      return too_big(compression::gzip, max_output);
    if (rc == Z_STREAM_END)
      return out;
    if (rc != Z_OK)
      return corrupt(compression::gzip, z.msg ? z.msg : fmt::format("inflate returned {}", rc));
    if (z.avail_in == 0 && z.avail_out != 0)
      return corrupt(compression::gzip, "truncated");
  }
}

expected<std::string> unxz(std::string_view in, std::size_t max_output) {
  lzma_stream s = LZMA_STREAM_INIT;
  if (lzma_stream_decoder(&s, UINT64_MAX, 0) != LZMA_OK)
    return make_error(errc::internal, "lzma_stream_decoder failed");
  std::unique_ptr<lzma_stream, void (*)(lzma_stream*)> guard(&s, lzma_end);
  s.next_in = reinterpret_cast<const std::uint8_t*>(in.data());
  s.avail_in = in.size();
  std::string out;
  for (;;) {
    std::size_t had = out.size();
    out.resize(had + chunk);
    s.next_out = reinterpret_cast<std::uint8_t*>(out.data() + had);
    s.avail_out = chunk;
    lzma_ret rc = lzma_code(&s, LZMA_FINISH);
    out.resize(out.size() - s.avail_out);
    if (out.size() > max_output)
      return too_big(compression::xz, max_output);
    if (rc == LZMA_STREAM_END)
      return out;
    if (rc != LZMA_OK)
      return corrupt(compression::xz, fmt::format("lzma_code returned {}", static_cast<int>(rc)));
  }
}

expected<std::string> unzstd(std::string_view in, std::size_t max_output) {
  std::unique_ptr<ZSTD_DStream, std::size_t (*)(ZSTD_DStream*)> d(ZSTD_createDStream(), ZSTD_freeDStream);
  if (!d)
    return make_error(errc::internal, "ZSTD_createDStream failed");
  ZSTD_inBuffer ib{in.data(), in.size(), 0};
  std::string out;
  for (;;) {
    std::size_t had = out.size();
    out.resize(had + chunk);
    ZSTD_outBuffer ob{out.data() + had, chunk, 0};
    std::size_t rc = ZSTD_decompressStream(d.get(), &ob, &ib);
    out.resize(had + ob.pos);
    if (ZSTD_isError(rc))
      return corrupt(compression::zstd, ZSTD_getErrorName(rc));
    if (out.size() > max_output)
      return too_big(compression::zstd, max_output);
    if (rc == 0)
      return out; // end of the first frame
    if (ib.pos == ib.size && ob.pos < ob.size)
      return corrupt(compression::zstd, "truncated");
  }
}

// The legacy LZ4 format has no end marker: it ends where the input ends.
expected<std::string> unlz4_legacy(std::string_view in, std::size_t max_output) {
  if (in.size() < 4 || le32(in, 0) != lz4_legacy_magic)
    return corrupt(compression::lz4_legacy, "missing magic");
  std::string out;
  std::size_t at = 4;
  while (in.size() - at >= 4) {
    std::uint32_t n = le32(in, at);
    at += 4;
    if (n == lz4_legacy_magic)
      continue; // a concatenated frame
    if (n == 0)
      break;
    if (n > in.size() - at || n > static_cast<std::uint32_t>(LZ4_compressBound(static_cast<int>(lz4_legacy_block))))
      return corrupt(compression::lz4_legacy, fmt::format("block of {} bytes at offset {} overruns the input", n, at));
    std::size_t had = out.size();
    std::size_t room = std::min(lz4_legacy_block, max_output - std::min(max_output, had));
    if (room == 0)
      return too_big(compression::lz4_legacy, max_output);
    out.resize(had + room);
    int got = LZ4_decompress_safe(in.data() + at, out.data() + had, static_cast<int>(n), static_cast<int>(room));
    if (got < 0) {
      if (room < lz4_legacy_block)
        return too_big(compression::lz4_legacy, max_output);
      return corrupt(compression::lz4_legacy, fmt::format("block at offset {} does not decode", at));
    }
    out.resize(had + static_cast<std::size_t>(got));
    at += n;
  }
  return out;
}

} // namespace

std::string_view to_string(compression c) {
  switch (c) {
  case compression::none: return "none";
  case compression::gzip: return "gzip";
  case compression::xz: return "xz";
  case compression::lz4_legacy: return "lz4";
  case compression::zstd: return "zstd";
  case compression::bzip2: return "bzip2";
  case compression::lzma: return "lzma";
  case compression::lzo: return "lzo";
  case compression::unknown: return "unknown";
  }
  return "unknown";
}

compression sniff_compression(std::string_view b) {
  auto starts = [&](std::string_view magic) { return b.substr(0, magic.size()) == magic; };
  using namespace std::string_view_literals;
  if (starts("\x1f\x8b"sv))
    return compression::gzip;
  if (starts("\xfd"
             "7zXZ\x00"sv))
    return compression::xz;
  if (starts("\x02\x21\x4c\x18"sv))
    return compression::lz4_legacy;
  if (starts("\x28\xb5\x2f\xfd"sv))
    return compression::zstd;
  if (starts("BZh"sv))
    return compression::bzip2;
  if (starts("\x5d\x00\x00"sv))
    return compression::lzma;
  if (starts("\x89LZO"sv))
    return compression::lzo;
  if (starts("\x7f"
             "ELF"sv))
    return compression::none;
  return compression::unknown;
}

expected<std::string> decompress(compression c, std::string_view in, std::size_t max_output) {
  switch (c) {
  case compression::gzip: return inflate_gzip(in, max_output);
  case compression::xz: return unxz(in, max_output);
  case compression::lz4_legacy: return unlz4_legacy(in, max_output);
  case compression::zstd: return unzstd(in, max_output);
  case compression::none:
    if (in.size() > max_output)
      return too_big(c, max_output);
    return std::string(in);
  default: return make_error(errc::bad_request, fmt::format("{} decompression is not supported", to_string(c)));
  }
}

expected<bzimage_header> parse_bzimage(std::string_view image) {
  auto bad = [](std::string what) { return make_error(errc::bad_request, "not a bzImage: " + what); };
  if (image.size() < 0x250)
    return bad(fmt::format("{} bytes is too small for the boot setup header", image.size()));
  if (image.substr(0x202, 4) != "HdrS")
    return bad("no \"HdrS\" boot protocol magic at 0x202");
  bzimage_header h;
  h.setup_sects = static_cast<std::uint8_t>(image[0x1F1]);
  h.boot_protocol = le16(image, 0x206);
  if (h.boot_protocol < 0x0208)
    return bad(fmt::format("boot protocol {}.{:02} predates payload fields (2.08)", h.boot_protocol >> 8,
                           h.boot_protocol & 0xff));
  h.payload_offset = le32(image, 0x248);
  h.payload_length = le32(image, 0x24C);
  std::size_t setup = (static_cast<std::size_t>(h.setup_sects == 0 ? 4 : h.setup_sects) + 1) * 512;
  h.payload_start = setup + h.payload_offset;
  if (h.payload_length < 8 || h.payload_start > image.size() || h.payload_length > image.size() - h.payload_start)
    return bad(
      fmt::format("payload [{}, +{}) lies outside the {} byte file", h.payload_start, h.payload_length, image.size()));
  auto payload = image.substr(h.payload_start, h.payload_length);
  h.uncompressed_size = le32(payload, payload.size() - 4);
  h.payload_compression = sniff_compression(payload);
  return h;
}

bool has_pvh_note(std::string_view elf) {
  if (elf.size() < 64 ||
      elf.substr(0, 4) != "\x7f"
                          "ELF" ||
      elf[4] != 2 /* ELFCLASS64 */ || elf[5] != 1 /* little-endian */)
    return false;
  std::uint64_t phoff = le64(elf, 0x20);
  std::uint16_t phentsize = le16(elf, 0x36);
  std::uint16_t phnum = le16(elf, 0x38);
  if (phentsize < 56 || phoff > elf.size() || std::uint64_t{phentsize} * phnum > elf.size() - phoff)
    return false;
  for (std::uint16_t i = 0; i < phnum; ++i) {
    std::size_t ph = phoff + std::size_t{i} * phentsize;
    if (le32(elf, ph) != pt_note)
      continue;
    std::uint64_t off = le64(elf, ph + 8);
    std::uint64_t len = le64(elf, ph + 32);
    if (off > elf.size() || len > elf.size() - off)
      continue;
    auto notes = elf.substr(off, len);
    std::size_t at = 0;
    auto align4 = [](std::uint64_t v) { return (v + 3) & ~std::uint64_t{3}; };
    while (notes.size() - at >= 12) {
      std::uint32_t namesz = le32(notes, at), descsz = le32(notes, at + 4), type = le32(notes, at + 8);
      std::uint64_t name_at = at + 12;
      std::uint64_t desc_at = name_at + align4(namesz);
      std::uint64_t next = desc_at + align4(descsz);
      if (next > notes.size())
        break;
      if (type == elf_note_pvh_entry && namesz == 4 && notes.substr(name_at, 4) == std::string_view("Xen\0", 4))
        return true;
      at = next;
    }
  }
  return false;
}

expected<pvh_conversion> convert_to_pvh(std::string_view bzimage) {
  auto hdr = parse_bzimage(bzimage);
  if (!hdr)
    return std::move(hdr).err();
  pvh_conversion r;
  r.payload = hdr->payload_compression;
  switch (hdr->payload_compression) {
  case compression::gzip:
  case compression::xz:
  case compression::lz4_legacy:
  case compression::zstd: break;
  default:
    r.why_not = fmt::format("the payload is {}-compressed; only lz4, xz, gzip and zstd can be decompressed",
                            to_string(hdr->payload_compression));
    return r;
  }
  if (hdr->uncompressed_size > max_vmlinux)
    return make_error(errc::bad_request, fmt::format("bzImage payload announces {} bytes, above the {} byte limit",
                                                     hdr->uncompressed_size, max_vmlinux));
  // The stream is the payload minus its 4-byte size trailer.
  auto stream = bzimage.substr(hdr->payload_start, hdr->payload_length - 4);
  auto elf = decompress(hdr->payload_compression, stream, hdr->uncompressed_size);
  if (!elf)
    return make_error(errc::bad_request, "bzImage payload: " + elf.err().message);
  if (elf->size() != hdr->uncompressed_size)
    return make_error(errc::bad_request, fmt::format("bzImage payload decompressed to {} bytes, the trailer says {}",
                                                     elf->size(), hdr->uncompressed_size));
  if (sniff_compression(*elf) != compression::none) {
    r.why_not = "the decompressed payload is not an ELF image";
    return r;
  }
  if (!has_pvh_note(*elf)) {
    r.why_not = "the kernel has no PVH entry note (built without CONFIG_PVH)";
    return r;
  }
  r.vmlinux = std::move(*elf);
  return r;
}

} // namespace banger::guestfs
