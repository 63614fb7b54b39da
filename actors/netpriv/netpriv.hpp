// The netpriv actor (DESIGN §2): the only holder of the root helper's connection. It owns the
// bridge, the taps, the IP leases in the bridge subnet (journaled in stream "net/<bridge>") and
// the per-VM NAT rules. It runs detached (its own thread): helper calls block, and the helper
// client's private KJ loop must stay on one thread. Requests are served one at a time, so two
// VMs never get the same address.
//
// Messages:
//   (net_request) -> net_reply (expected<std::string>: the address for a lease, empty otherwise)
// The helper is started on first use, and again after it died.
#pragma once

#include <string>
#include <variant>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/fwd.hpp>

#include "actors/netpriv/leases.hpp"
#include "common/error.hpp"
#include "helper/client.hpp"

namespace banger::journal {
class journal;
}

namespace banger::actors {

struct net_config {
  std::string bridge = "br-fc";
  subnet net;             ///< default 172.30.0.0/24
  bool nat = false;       ///< masquerade guest traffic leaving the host
  unsigned owner_uid = 0; ///< taps are created for this user (the one running QEMU)
  helper::launch_options helper;
};

/// The network's commands as typed values (the netpriv actor dispatches on them).
namespace net_cmd {
/// An address for `vm` (the one it holds already, if any); the answer is the address.
struct lease {
  std::string vm;
};
/// The lease `ip` (empty: whatever `vm` holds); absent is success.
struct release_lease {
  std::string vm, ip;
};
struct create_tap {
  std::string tap;
};
struct delete_tap {
  std::string tap;
};
/// Masquerade `ip`'s traffic leaving the host.
struct add_nat {
  std::string ip;
};
struct clear_nat {
  std::string ip;
};
/// A signal to a VMM process, through the helper (which checks it is banger's VMM).
struct signal_vmm {
  int pid = 0, signo = 0;
};
} // namespace net_cmd

using net_command = std::variant<net_cmd::lease, net_cmd::release_lease, net_cmd::create_tap, net_cmd::delete_tap,
                                 net_cmd::add_nat, net_cmd::clear_nat, net_cmd::signal_vmm>;

struct net_request {
  net_command command;
  std::string op_id;
};

/// The answer: lease's address; empty for the others.
using net_reply = expected<std::string>;

std::string net_stream(const std::string& bridge);

/// `journal` and `writer` outlive the actor.
caf::actor spawn_netpriv(caf::actor_system& sys, net_config cfg, journal::journal* journal, caf::actor writer);

} // namespace banger::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(banger::actors::net_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(banger::expected<std::string>)
