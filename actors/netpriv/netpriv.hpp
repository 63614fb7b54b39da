// The netpriv actor (DESIGN §2): the only holder of the root helper's connection. It owns the
// bridge, the taps, the IP leases in the bridge subnet (journaled in stream "net/<bridge>") and
// the per-VM NAT rules. It runs detached (its own thread): helper calls block, and the helper
// client's private KJ loop must stay on one thread. Requests are served one at a time, so two
// VMs never get the same address.
//
// Messages:
//   (net_request) -> net_reply
// The helper is started on first use, and again after it died.
#pragma once

#include <string>

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

struct net_request {
  enum class op { lease, release_lease, create_tap, delete_tap, add_nat, clear_nat, signal_vmm };
  op what = op::lease;
  std::string vm;  ///< lease, release_lease
  std::string tap; ///< create_tap, delete_tap
  std::string ip;  ///< add_nat, clear_nat, release_lease (empty: the lease `vm` holds)
  int pid = 0, signo = 0;
  std::string op_id;
};

struct net_reply {
  bool ok = true;
  error err;
  std::string ip; ///< lease: the address
};

std::string net_stream(const std::string& bridge);

/// `journal` and `writer` outlive the actor.
caf::actor spawn_netpriv(caf::actor_system& sys, net_config cfg, journal::journal* journal, caf::actor writer);

} // namespace banger::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(banger::actors::net_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(banger::actors::net_reply)
