// Network links read and changed in-process: rtnetlink (RTM_GETLINK, RTM_NEWLINK) for link
// state, the bridge port and the up flag, and /dev/net/tun ioctls for persistent taps, the same
// ioctls `ip tuntap add|del` issues. Every call opens its own socket or fd, so it acts in the
// network namespace of the calling process (never /sys, which shows the namespace of whoever
// mounted it). Blocking; called from the helper's only thread. Callers validate names first.
#pragma once

#include <optional>
#include <string>

#include "common/error.hpp"

namespace banger::helper {

/// One link as rtnetlink reports it. A value; `exists` false when no link has that name.
struct link_info {
  bool exists = false;
  int index = 0;
  std::string kind;              ///< IFLA_INFO_KIND: "bridge", "tun", "" for a physical device
  bool tap = false;              ///< kind "tun" in tap mode (IFLA_TUN_TYPE is IFF_TAP)
  int master = 0;                ///< ifindex of the bridge it is attached to, 0 when none
  std::optional<unsigned> owner; ///< the tun's owner uid (IFLA_TUN_OWNER); none when unset
  bool up = false;
};

/// Link `name` in this network namespace. Absent is `exists == false`, not an error.
expected<link_info> read_link(const std::string& name);

/// The name of link `index` (SIOCGIFNAME), or "ifindex N" when it has none any more.
std::string link_name(int index);

/// Creates persistent tap `name` owned by `owner_uid`, exactly as
/// `ip tuntap add dev NAME mode tap user UID`: IFF_TAP | IFF_NO_PI | IFF_TUN_EXCL, TUNSETOWNER,
/// TUNSETPERSIST 1. Fails (EBUSY) when a link of that name already exists.
expected<void> add_tap(const std::string& name, unsigned owner_uid);

/// Deletes persistent tap `name`, exactly as `ip tuntap del dev NAME mode tap`: attach with
/// TUNSETIFF, TUNSETPERSIST 0, close. Fails (EBUSY) while a process (the VMM) holds it open.
expected<void> delete_tap_device(const std::string& name);

/// Link `index` is a port of bridge `master_index` and up: one RTM_NEWLINK with IFLA_MASTER
/// and IFF_UP, acknowledged (already so is success). The names are for messages.
expected<void> set_master_and_up(int index, const std::string& name, int master_index, const std::string& master_name);

} // namespace banger::helper
