// Tests of bzImage parsing and PVH conversion on synthetic images: every payload codec, images
// that are not convertible (no PVH note, a codec we lack), and garbage or lying headers.
#include <boost/test/unit_test.hpp>

#include "guestfs/bzimage.hpp"
#include "guestfs/kernel_fixtures.test.hpp"

namespace banger::guestfs {

using namespace fixtures;

BOOST_AUTO_TEST_SUITE(bzimage_tests)

BOOST_AUTO_TEST_CASE(converts_every_supported_codec) {
  auto elf = elf_with_note();
  for (auto c : {compression::gzip, compression::xz, compression::lz4_legacy, compression::zstd}) {
    BOOST_TEST_CONTEXT("codec " << to_string(c)) {
      auto image = bzimage(compress(c, elf), static_cast<std::uint32_t>(elf.size()));
      auto hdr = parse_bzimage(image);
      BOOST_TEST_REQUIRE(hdr.has_value(), why(hdr));
      BOOST_TEST(hdr->setup_sects == 2);
      BOOST_TEST(hdr->boot_protocol == 0x020f);
      BOOST_TEST(hdr->payload_start == 3u * 512 + 1000);
      BOOST_TEST(hdr->uncompressed_size == elf.size());
      BOOST_TEST((hdr->payload_compression == c));

      auto r = convert_to_pvh(image);
      BOOST_TEST_REQUIRE(r.has_value(), why(r));
      BOOST_TEST_REQUIRE(r->vmlinux.has_value(), r->why_not);
      BOOST_TEST((*r->vmlinux == elf));
    }
  }
}

BOOST_AUTO_TEST_CASE(lz4_spanning_several_legacy_blocks) {
  auto elf = elf_with_note() + std::string(20u << 20, 'x'); // > two 8 MiB blocks
  auto image = bzimage(compress(compression::lz4_legacy, elf), static_cast<std::uint32_t>(elf.size()));
  auto r = convert_to_pvh(image);
  BOOST_TEST_REQUIRE(r.has_value(), why(r));
  BOOST_TEST_REQUIRE(r->vmlinux.has_value(), r->why_not);
  BOOST_TEST(r->vmlinux->size() == elf.size());
}

BOOST_AUTO_TEST_CASE(elf_without_pvh_note_is_not_convertible) {
  for (auto elf : {elf_with_note(17), elf_with_note(18, "Linux"), elf_header()}) {
    auto r = convert_to_pvh(bzimage(compress(compression::gzip, elf), static_cast<std::uint32_t>(elf.size())));
    BOOST_TEST_REQUIRE(r.has_value(), why(r));
    BOOST_TEST(!r->vmlinux.has_value());
    BOOST_TEST(r->why_not.find("PVH") != std::string::npos, r->why_not);
  }
}

BOOST_AUTO_TEST_CASE(unsupported_codec_is_not_convertible) {
  auto r = convert_to_pvh(bzimage("BZh91AY&SY" + std::string(100, 'b'), 4096));
  BOOST_TEST_REQUIRE(r.has_value(), why(r));
  BOOST_TEST(!r->vmlinux.has_value());
  BOOST_TEST((r->payload == compression::bzip2));
  BOOST_TEST(r->why_not.find("bzip2") != std::string::npos, r->why_not);
}

BOOST_AUTO_TEST_CASE(payload_that_is_not_an_elf_is_not_convertible) {
  std::string text(5000, 't');
  auto r = convert_to_pvh(bzimage(compress(compression::gzip, text), 5000));
  BOOST_TEST_REQUIRE(r.has_value(), why(r));
  BOOST_TEST(!r->vmlinux.has_value());
  BOOST_TEST(r->why_not.find("not an ELF") != std::string::npos, r->why_not);
}

BOOST_AUTO_TEST_CASE(garbage_is_not_a_bzimage) {
  for (std::string junk : {std::string(), std::string(100, 'g'), std::string(1 << 16, '\xff')}) {
    auto hdr = parse_bzimage(junk);
    BOOST_TEST_REQUIRE(!hdr.has_value());
    BOOST_TEST((hdr.err().code == errc::bad_request));
    BOOST_TEST(hdr.err().message.find("not a bzImage") != std::string::npos, hdr.err().message);
    BOOST_TEST(!convert_to_pvh(junk).has_value());
  }
}

BOOST_AUTO_TEST_CASE(lying_headers_fail_cleanly) {
  auto image = pvh_bzimage();
  auto past_end = image;
  put(past_end, 0x24C, 0x7fffffff, 4);
  BOOST_TEST(!parse_bzimage(past_end).has_value());
  auto old_protocol = image;
  put(old_protocol, 0x206, 0x0204, 2);
  BOOST_TEST(!parse_bzimage(old_protocol).has_value());

  // A corrupt stream, and a trailer that under-states the size: errors, not crashes.
  auto elf = elf_with_note();
  auto z = compress(compression::xz, elf);
  z[z.size() / 2] ^= 0x55;
  BOOST_TEST(!convert_to_pvh(bzimage(z, static_cast<std::uint32_t>(elf.size()))).has_value());
  for (auto c : {compression::gzip, compression::xz, compression::lz4_legacy, compression::zstd}) {
    auto r = convert_to_pvh(bzimage(compress(c, elf), 100));
    BOOST_TEST_REQUIRE(!r.has_value(), to_string(c));
    BOOST_TEST(r.err().message.find("limit") != std::string::npos, r.err().message);
  }
}

BOOST_AUTO_TEST_CASE(sniffs_magic_numbers) {
  using namespace std::string_view_literals;
  BOOST_TEST((sniff_compression("\x02\x21\x4c\x18...."sv) == compression::lz4_legacy));
  BOOST_TEST((sniff_compression("\xfd"
                                "7zXZ\x00..."sv) == compression::xz));
  BOOST_TEST((sniff_compression("\x1f\x8b\x08"sv) == compression::gzip));
  BOOST_TEST((sniff_compression("\x28\xb5\x2f\xfd"sv) == compression::zstd));
  BOOST_TEST((sniff_compression("\x7f"
                                "ELF"sv) == compression::none));
  BOOST_TEST((sniff_compression("hello"sv) == compression::unknown));
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace banger::guestfs
