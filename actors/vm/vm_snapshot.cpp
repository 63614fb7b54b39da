// See vm_snapshot.hpp. The encoding (format 5; 1 had no workspace, 2 no include_untracked, 3 no
// pending_path, 4 no disk-released flag), every integer an unsigned
// LEB128 varint unless marked, every string a varint length then its bytes:
//
//   +--------+----------------+-------+------+----+-------+---------------+--------+----------------+
//   | format | stream_version | phase | name | id | image | image_version | kernel | kernel_version |
//   | u8 = 1 | varint         | u8    | str  | str| str   | str           | str    | str            |
//   +--------+----------------+-------+------+----+-------+---------------+--------+----------------+
//   +-------+------------+----------+--------------+--------------+------------+---------+
//   | vcpus | memory_mib | disk_mib | created_ns   | since_ns     | last_error | boot_ms |
//   | varint| varint     | varint   | zigzag varint| zigzag varint| str        | varint  |
//   +-------+------------+----------+--------------+--------------+------------+---------+
//   +-----------------+--------------------------------------------------+-------------------+
//   | resource count  | count x { kind str, id str, detail str, acquired u8 } |
//   | varint          |                                                  |
//   +-----------------+--------------------------------------------------+
//   (kind: the resource kind's journaled name, resources.hpp)
//   +-------------------------------------------------------------+-------------+---------+---------------+
//   | workspace: host_path, guest_path, head, branch, digest str  | files, bytes| prepared| flags u8      |
//   |                                                             | varint      | zigzag  |               |
//   +-------------------------------------------------------------+-------------+---------+---------------+
//   +-------------------------------+---------------+
//   | pending_path str              | crc32, u32 LE |
//   +-------------------------------+---------------+
//
// phase is vm_phase's value (absent = 0 ... deleted = 6, paused = 7); acquired is 0 or 1; the
// workspace flags are 1 (a preparation pending) | 2 (untracked files were shipped) | 4 (the
// pending one is written into the disk the running guest let go of). The decoder takes
// nothing on trust: any other value, a short or long buffer, or a bad checksum refuses the whole.
#include "actors/vm/vm_snapshot.hpp"

#include <array>
#include <limits>

namespace banger::actors {

namespace {

std::uint32_t crc32(std::string_view bytes) {
  static constexpr auto table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k)
        c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  std::uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : bytes)
    c = table[(c ^ b) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_signed(std::string& out, std::int64_t v) {
  put_varint(out, (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63));
}

void put_string(std::string& out, std::string_view s) {
  put_varint(out, s.size());
  out.append(s);
}

/// Reads from a buffer; the first failure sticks and every later read yields zero values.
struct reader {
  std::string_view in;
  bool ok = true;

  std::uint8_t byte() {
    if (in.empty())
      return fail<std::uint8_t>();
    auto b = static_cast<std::uint8_t>(in.front());
    in.remove_prefix(1);
    return b;
  }
  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (int shift = 0; ok && shift < 64; shift += 7) {
      auto b = byte();
      if (shift == 63 && (b & 0x7E)) // bits beyond 64
        return fail<std::uint64_t>();
      v |= static_cast<std::uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80))
        return v;
    }
    return fail<std::uint64_t>();
  }
  std::int64_t signed_varint() {
    auto u = varint();
    return static_cast<std::int64_t>((u >> 1) ^ (~(u & 1) + 1));
  }
  std::uint32_t u32() {
    auto v = varint();
    if (v > std::numeric_limits<std::uint32_t>::max())
      return fail<std::uint32_t>();
    return static_cast<std::uint32_t>(v);
  }
  std::string string() {
    auto n = varint();
    if (!ok || n > in.size())
      return fail<std::string>();
    std::string s(in.substr(0, n));
    in.remove_prefix(n);
    return s;
  }
  template <class T>
  T fail() {
    ok = false;
    in = {};
    return T{};
  }
};

} // namespace

// If this fires, vm_state gained or changed a field: encode it below, and bump vm_snapshot_format.
#if defined(__x86_64__) && defined(__GLIBCXX__)
static_assert(sizeof(vm_state) == 536 && sizeof(vm_resource) == 80,
              "vm_state changed: update snapshot_encode/snapshot_decode and bump vm_snapshot_format");
#endif

std::string snapshot_encode(const vm_state& s) {
  std::string out;
  out.reserve(96 + s.resources.size() * 48);
  out.push_back(static_cast<char>(vm_snapshot_format));
  put_varint(out, s.stream_version);
  out.push_back(static_cast<char>(s.phase));
  for (const auto* str : {&s.name, &s.id, &s.image, &s.image_version, &s.kernel, &s.kernel_version})
    put_string(out, *str);
  put_varint(out, s.vcpus);
  put_varint(out, s.memory_mib);
  put_varint(out, s.disk_mib);
  put_signed(out, s.created_ns);
  put_signed(out, s.since_ns);
  put_string(out, s.last_error);
  put_varint(out, s.boot_ms);
  put_varint(out, s.resources.size());
  for (const auto& r : s.resources) {
    put_string(out, to_string(r.kind));
    put_string(out, r.id);
    put_string(out, r.detail);
    out.push_back(r.acquired ? 1 : 0);
  }
  const auto& w = s.workspace;
  for (const auto* str : {&w.host_path, &w.guest_path, &w.head, &w.branch, &w.digest})
    put_string(out, *str);
  put_varint(out, w.files);
  put_varint(out, w.bytes);
  put_signed(out, w.prepared_ns);
  out.push_back(static_cast<char>((s.workspace_pending() ? 1 : 0) | (w.include_untracked ? 2 : 0) |
                                  (s.workspace_disk_released ? 4 : 0)));
  put_string(out, s.workspace_pending_path);
  auto crc = crc32(out);
  for (int i = 0; i < 4; ++i)
    out.push_back(static_cast<char>((crc >> (8 * i)) & 0xFF));
  return out;
}

std::optional<vm_state> snapshot_decode(const vm_state& seed, std::uint64_t version, std::string_view bytes) {
  if (bytes.size() < 5 || static_cast<std::uint8_t>(bytes.front()) != vm_snapshot_format)
    return std::nullopt;
  auto body = bytes.substr(0, bytes.size() - 4);
  std::uint32_t stored = 0;
  for (int i = 0; i < 4; ++i)
    stored |= static_cast<std::uint32_t>(static_cast<std::uint8_t>(bytes[body.size() + i])) << (8 * i);
  if (crc32(body) != stored)
    return std::nullopt;

  reader r{body.substr(1)};
  vm_state s;
  s.stream_version = r.varint();
  auto phase = r.byte();
  if (phase > static_cast<std::uint8_t>(vm_phase::paused))
    return std::nullopt;
  s.phase = static_cast<vm_phase>(phase);
  for (auto* str : {&s.name, &s.id, &s.image, &s.image_version, &s.kernel, &s.kernel_version})
    *str = r.string();
  s.vcpus = r.u32();
  s.memory_mib = r.u32();
  s.disk_mib = r.u32();
  s.created_ns = r.signed_varint();
  s.since_ns = r.signed_varint();
  s.last_error = r.string();
  s.boot_ms = r.varint();
  auto count = r.varint();
  if (count > r.in.size() / 4) // each resource takes at least 4 bytes
    return std::nullopt;
  s.resources.reserve(count);
  for (std::uint64_t i = 0; r.ok && i < count; ++i) {
    vm_resource res;
    auto kind = resource_kind_named(r.string());
    if (!kind) // a kind this build does not know: fold the stream instead
      return std::nullopt;
    res.kind = *kind;
    res.id = r.string();
    res.detail = r.string();
    auto acquired = r.byte();
    if (acquired > 1)
      return std::nullopt;
    res.acquired = acquired == 1;
    s.resources.push_back(std::move(res));
  }
  auto& w = s.workspace;
  for (auto* str : {&w.host_path, &w.guest_path, &w.head, &w.branch, &w.digest})
    *str = r.string();
  w.files = r.varint();
  w.bytes = r.varint();
  w.prepared_ns = r.signed_varint();
  auto flags = r.byte();
  if (flags > 7)
    return std::nullopt;
  w.include_untracked = (flags & 2) != 0;
  s.workspace_disk_released = (flags & 4) != 0;
  s.workspace_pending_path = r.string();
  if (((flags & 1) != 0) != s.workspace_pending()) // the flag says what the path does
    return std::nullopt;
  if (s.workspace_disk_released && !s.workspace_pending())
    return std::nullopt;
  if (!r.ok || !r.in.empty() || s.stream_version != version || version == 0)
    return std::nullopt;
  if (!seed.name.empty() && seed.name != s.name)
    return std::nullopt;
  return s;
}

} // namespace banger::actors
