// The kinds of host resource a VM holds, in one table: each kind's journaled name, its lifetime,
// where a start makes it and where a release undoes it. The pipeline (order, groups, release
// ranks), the VM's state (apply, lifetimes) and the host (one resource_handler per kind,
// host_internal.hpp) all read this table; nothing else knows the kinds. Pure; any thread.
//
// Adding a kind: an enumerator before `count`, its row here (the static_asserts below fail
// until the table has one row per kind, in enum order), and its handler on the host (which does
// not compile without one). Journals hold the names, so a name never changes.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace banger::actors {

enum class resource_kind : std::uint8_t { overlay, work_disk, ip, tap, sockets, nat, vmm, count };
inline constexpr std::size_t resource_kind_count = static_cast<std::size_t>(resource_kind::count);

/// How long a resource lives: per VM (made by its first start, released at delete) or per run
/// (made by each start, released at the stop).
enum class resource_lifetime : std::uint8_t { per_vm, per_run };

/// Where a start makes a kind: the concurrent group first, all at once (its kinds depend on nothing
/// but the VM), then the sequential kinds one at a time. Either way in enum order, which is the
/// start's order.
enum class start_group : std::uint8_t { concurrent, sequential };

/// Release classes (DESIGN §4), in release order: the process, then the network, then the disks,
/// then files. Within a class, resources go in the reverse of their acquisition.
enum class release_class : std::uint8_t { process, network, disks, files };

struct resource_traits {
  resource_kind kind;
  std::string_view name; ///< as journaled (resource_intended/acquired/released `kind`)
  resource_lifetime lifetime;
  start_group group;
  release_class release;
  const char* what; ///< for people: what the resource is
};

inline constexpr std::array<resource_traits, resource_kind_count> resource_table = {{
  {resource_kind::overlay, "overlay", resource_lifetime::per_vm, start_group::concurrent, release_class::disks,
   "the qcow2 overlay on the image's rootfs"},
  {resource_kind::work_disk, "work_disk", resource_lifetime::per_vm, start_group::concurrent, release_class::disks,
   "the work disk mounted at /root"},
  {resource_kind::ip, "ip", resource_lifetime::per_vm, start_group::concurrent, release_class::network,
   "the address leased on the bridge"},
  {resource_kind::tap, "tap", resource_lifetime::per_run, start_group::concurrent, release_class::network,
   "the tap device on the bridge"},
  {resource_kind::sockets, "sockets", resource_lifetime::per_run, start_group::concurrent, release_class::files,
   "the runtime dir with the VMM's sockets"},
  {resource_kind::nat, "nat", resource_lifetime::per_run, start_group::sequential, release_class::network,
   "the NAT rule for the address"},
  {resource_kind::vmm, "vmm", resource_lifetime::per_run, start_group::sequential, release_class::process,
   "the VMM process"},
}};

constexpr bool resource_table_is_complete() {
  for (std::size_t i = 0; i < resource_table.size(); ++i) {
    if (static_cast<std::size_t>(resource_table[i].kind) != i)
      return false;
    // The concurrent group comes first: a sequential kind may need any of it.
    if (i > 0 && resource_table[i].group == start_group::concurrent &&
        resource_table[i - 1].group == start_group::sequential)
      return false;
    for (std::size_t j = 0; j < i; ++j)
      if (resource_table[j].name == resource_table[i].name)
        return false;
  }
  return true;
}
static_assert(resource_table_is_complete(),
              "resource_table needs one row per resource_kind, in enum (= start) order, concurrent group first");

constexpr const resource_traits& traits_of(resource_kind k) { return resource_table[static_cast<std::size_t>(k)]; }
constexpr std::string_view to_string(resource_kind k) { return traits_of(k).name; }
constexpr bool per_vm(resource_kind k) { return traits_of(k).lifetime == resource_lifetime::per_vm; }

/// The kind journaled as `name`; nullopt for a name this build does not know.
constexpr std::optional<resource_kind> resource_kind_named(std::string_view name) {
  for (const auto& t : resource_table)
    if (t.name == name)
      return t.kind;
  return std::nullopt;
}

} // namespace banger::actors
