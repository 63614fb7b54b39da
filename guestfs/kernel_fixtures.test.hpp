// Test fixtures for the kernel modules (header-only, tests only): minimal ELF64 images with a
// PVH note or a .modinfo section, synthetic bzImages around a compressed payload, packages
// written with libarchive (including hostile ones dpkg-deb would never build), and file helpers.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <lz4.h>
#include <lzma.h>
#include <sstream>
#include <stdexcept>
#include <string>
#include <sys/sysmacros.h>
#include <vector>
#include <zlib.h>
#include <zstd.h>

#include "guestfs/bzimage.hpp"

namespace banger::guestfs::fixtures {

/// An expected's error message, or "" (for BOOST_TEST messages, which are evaluated eagerly).
template <class T>
std::string why(const expected<T>& r) {
  return r ? std::string() : r.err().message;
}

inline void put(std::string& b, std::size_t at, std::uint64_t v, int bytes) {
  if (b.size() < at + static_cast<std::size_t>(bytes))
    b.resize(at + static_cast<std::size_t>(bytes));
  for (int i = 0; i < bytes; ++i)
    b[at + static_cast<std::size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xff);
}

inline std::string elf_header() {
  std::string b(64, '\0');
  b.replace(0, 4,
            "\x7f"
            "ELF");
  b[4] = 2;            // ELFCLASS64
  b[5] = 1;            // little-endian
  b[6] = 1;            // EV_CURRENT
  put(b, 0x10, 2, 2);  // ET_EXEC
  put(b, 0x12, 62, 2); // EM_X86_64
  put(b, 0x34, 64, 2); // e_ehsize
  return b;
}

/// An ELF64 with one PT_NOTE segment holding a note of `type` owned by `owner`.
inline std::string elf_with_note(std::uint32_t type = 18, std::string owner = "Xen") {
  std::string b = elf_header();
  put(b, 0x20, 64, 8); // e_phoff
  put(b, 0x36, 56, 2); // e_phentsize
  put(b, 0x38, 1, 2);  // e_phnum
  std::string note;
  owner.push_back('\0');
  put(note, 0, owner.size(), 4);
  put(note, 4, 4, 4);
  put(note, 8, type, 4);
  note += owner;
  note.resize((note.size() + 3) & ~std::size_t{3});
  put(note, note.size(), 0x1000000, 4); // the entry address
  std::size_t note_at = 64 + 56;
  std::string ph(56, '\0');
  put(ph, 0, 4, 4); // PT_NOTE
  put(ph, 8, note_at, 8);
  put(ph, 32, note.size(), 8);
  put(ph, 40, note.size(), 8);
  b += ph;
  b += note;
  b += std::string(4096, 'k'); // some "code"
  return b;
}

/// An ELF64 relocatable whose .modinfo section says `depends=<deps>`.
inline std::string module_elf(const std::string& name, const std::string& deps) {
  std::string b = elf_header();
  put(b, 0x10, 1, 2); // ET_REL
  std::string modinfo = "license=GPL" + std::string(1, '\0') + "depends=" + deps + std::string(1, '\0') +
                        "name=" + name + std::string(1, '\0');
  std::string shstrtab = std::string(1, '\0') + ".modinfo" + std::string(1, '\0') + ".shstrtab" + std::string(1, '\0');
  std::size_t modinfo_at = b.size();
  b += modinfo;
  std::size_t shstr_at = b.size();
  b += shstrtab;
  b.resize((b.size() + 7) & ~std::size_t{7});
  std::size_t shoff = b.size();
  std::string sh(64 * 3, '\0'); // null, .modinfo, .shstrtab
  put(sh, 64 + 0, 1, 4);
  put(sh, 64 + 4, 1, 4); // SHT_PROGBITS
  put(sh, 64 + 0x18, modinfo_at, 8);
  put(sh, 64 + 0x20, modinfo.size(), 8);
  put(sh, 128 + 0, 10, 4);
  put(sh, 128 + 4, 3, 4); // SHT_STRTAB
  put(sh, 128 + 0x18, shstr_at, 8);
  put(sh, 128 + 0x20, shstrtab.size(), 8);
  b += sh;
  put(b, 0x28, shoff, 8);
  put(b, 0x3A, 64, 2);
  put(b, 0x3C, 3, 2);
  put(b, 0x3E, 2, 2);
  return b;
}

inline std::string compress(compression c, const std::string& in) {
  std::string out;
  switch (c) {
  case compression::gzip: {
    z_stream z{};
    if (deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
      throw std::runtime_error("deflateInit2");
    out.resize(deflateBound(&z, in.size()) + 64);
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z.avail_in = static_cast<uInt>(in.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    if (deflate(&z, Z_FINISH) != Z_STREAM_END)
      throw std::runtime_error("deflate");
    out.resize(z.total_out);
    deflateEnd(&z);
    return out;
  }
  case compression::xz: {
    out.resize(lzma_stream_buffer_bound(in.size()));
    std::size_t pos = 0;
    if (lzma_easy_buffer_encode(6, LZMA_CHECK_CRC32, nullptr, reinterpret_cast<const std::uint8_t*>(in.data()),
                                in.size(), reinterpret_cast<std::uint8_t*>(out.data()), &pos, out.size()) != LZMA_OK)
      throw std::runtime_error("lzma_easy_buffer_encode");
    out.resize(pos);
    return out;
  }
  case compression::zstd: {
    out.resize(ZSTD_compressBound(in.size()));
    std::size_t n = ZSTD_compress(out.data(), out.size(), in.data(), in.size(), 3);
    if (ZSTD_isError(n))
      throw std::runtime_error("ZSTD_compress");
    out.resize(n);
    return out;
  }
  case compression::lz4_legacy: {
    put(out, 0, 0x184C2102, 4);
    for (std::size_t at = 0; at < in.size(); at += 8u << 20) {
      std::size_t n = std::min(in.size() - at, std::size_t{8} << 20);
      std::string block(static_cast<std::size_t>(LZ4_compressBound(static_cast<int>(n))), '\0');
      int got = LZ4_compress_default(in.data() + at, block.data(), static_cast<int>(n), static_cast<int>(block.size()));
      put(out, out.size(), static_cast<std::uint32_t>(got), 4);
      out.append(block.data(), static_cast<std::size_t>(got));
    }
    return out;
  }
  default: throw std::runtime_error("fixture cannot compress with that codec");
  }
}

/// A bzImage-shaped file: 2 setup sectors, a fake decompressor, then `stream` and the 4-byte
/// uncompressed size trailer.
inline std::string bzimage(const std::string& stream, std::uint32_t uncompressed_size) {
  std::string b(3 * 512, '\0');
  b[0x1F1] = 2;
  b.replace(0x202, 4, "HdrS");
  put(b, 0x206, 0x020f, 2);
  std::string pm(1000, '\x90'); // the "decompressor"
  put(b, 0x248, pm.size(), 4);
  put(b, 0x24C, stream.size() + 4, 4);
  b += pm;
  b += stream;
  put(b, b.size(), uncompressed_size, 4);
  b += std::string(100, '\0'); // trailing padding, as real images have
  return b;
}

inline std::string pvh_bzimage(compression c = compression::gzip) {
  auto elf = elf_with_note();
  return bzimage(compress(c, elf), static_cast<std::uint32_t>(elf.size()));
}

inline void write(const std::filesystem::path& p, const std::string& bytes) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << bytes;
  if (!out)
    throw std::runtime_error("write " + p.string());
}

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// One member of a hand-made package's data.tar.
struct member {
  std::string name;
  char type = 'f'; ///< 'f', 'd', 'l' symlink, 'h' hard link, 'c' character device
  std::string data;
  std::string link;
};

/// Writes a .deb (ar: debian-binary, control.tar, data.tar) around `members`, with libarchive,
/// so hostile names survive exactly as given.
inline void write_deb(const std::filesystem::path& path, const std::vector<member>& members) {
  auto tar = [](const std::vector<member>& ms) {
    std::string buf(16 << 20, '\0');
    std::size_t used = 0;
    archive* a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    archive_write_open_memory(a, buf.data(), buf.size(), &used);
    for (auto& m : ms) {
      archive_entry* e = archive_entry_new();
      archive_entry_set_pathname(e, m.name.c_str());
      archive_entry_set_perm(e, m.type == 'd' ? 0755 : 0644);
      archive_entry_set_mtime(e, 0, 0);
      switch (m.type) {
      case 'd': archive_entry_set_filetype(e, AE_IFDIR); break;
      case 'l':
        archive_entry_set_filetype(e, AE_IFLNK);
        archive_entry_set_symlink(e, m.link.c_str());
        break;
      case 'h':
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_hardlink(e, m.link.c_str());
        break;
      case 'c':
        archive_entry_set_filetype(e, AE_IFCHR);
        archive_entry_set_rdev(e, makedev(1, 3));
        break;
      default:
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_size(e, static_cast<la_int64_t>(m.data.size()));
      }
      archive_write_header(a, e);
      if (m.type == 'f')
        archive_write_data(a, m.data.data(), m.data.size());
      archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
    buf.resize(used);
    return buf;
  };
  std::vector<std::pair<std::string, std::string>> ar_members{
    {"debian-binary", "2.0\n"},
    {"control.tar", tar({{"./control", 'f', "Package: hostile\n", {}}})},
    {"data.tar", tar(members)}};
  archive* a = archive_write_new();
  archive_write_set_format_ar_svr4(a);
  if (archive_write_open_filename(a, path.c_str()) != ARCHIVE_OK)
    throw std::runtime_error("open " + path.string());
  for (auto& [name, data] : ar_members) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, static_cast<la_int64_t>(data.size()));
    archive_write_header(a, e);
    archive_write_data(a, data.data(), data.size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
}

} // namespace banger::guestfs::fixtures
