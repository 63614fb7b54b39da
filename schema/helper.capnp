# The daemon <-> banger-helper interface (DESIGN §1, §5; docs/SECURITY.md states the boundary).
# bangerd starts one banger-helper (root) per connection and serves nothing: it is the client.
# The transport is a unix socketpair carried on the helper's stdin, plain two-party RPC with no
# file-descriptor passing: the helper never receives an fd from the daemon.
#
# Every method takes the op id of the daemon request it serves (logged on the helper's stderr)
# and returns a Failure whose code is 0 on success. Codes are banger::errc numbers
# (common/error.hpp); they never change. Cap'n Proto exceptions mean logistics only.
#
# Every argument is re-validated inside the helper at the time of use (helper/validate.hpp);
# a refused argument answers code 3 (bad_request) naming the argument and the rule.
@0x9f16ca076620a365;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("banger::helper_rpc");

struct Failure {
  code @0 :UInt8;    # banger::errc; 0 = ok
  message @1 :Text;  # what failed and what to do next; empty on success
}

interface Helper {
  # Liveness and version ("0.1.0"). Touches nothing.
  ping @0 (opId :Text) -> (version :Text, failure :Failure);

  # Creates the Linux bridge `name` if absent, adds the address `cidr` (the gateway address with
  # its prefix, "172.30.0.1/24") if not present, and sets the bridge up. Idempotent.
  # Validation: name is "br-fc" or "br-fc-" + 1..9 of [a-z0-9]; cidr is a strict dotted quad
  # with prefix 8..32. An existing link of that name that is not a bridge is a conflict.
  ensureBridge @1 (opId :Text, name :Text, cidr :Text) -> (failure :Failure);

  # `ip tuntap add dev NAME mode tap user OWNERUID`, master `bridge`, up. Idempotent when the
  # tap exists already, owned by ownerUid and attached to `bridge` (or to nothing yet).
  # Validation: name is "bgt" + 1..12 of [a-z0-9]; bridge as above; ownerUid a number.
  createTap @2 (opId :Text, name :Text, bridge :Text, ownerUid :UInt32) -> (failure :Failure);

  # Deletes the tap `name`; absent is success. Validation: tap name as above, and the link
  # must be a tap (never a bridge or a physical interface).
  deleteTap @3 (opId :Text, name :Text) -> (failure :Failure);

  # nftables, table `ip banger`: a postrouting nat chain masquerading `ip saddr CIDR oifname !=
  # BRIDGE`, and a forward chain accepting traffic from and to BRIDGE; each rule carries the
  # comment "banger BRIDGE NETWORK/N ROLE" (helper/ops.cpp nat_rule_tag; ROLE names the rule),
  # so a second call adds nothing. Also sets
  # net.ipv4.ip_forward=1. Validation: bridge and cidr as for ensureBridge.
  ensureNat @4 (opId :Text, bridge :Text, cidr :Text) -> (failure :Failure);

  # Removes the rules ensureNat added for (bridge, cidr), and the table once it holds no rule.
  # Absent is success.
  clearNat @5 (opId :Text, bridge :Text, cidr :Text) -> (failure :Failure);

  # Sends `signal` to `pid` once it is proven to be one of banger's VMMs: pid > 1, its
  # /proc/PID/exe is a file named qemu-system-x86_64 or firecracker, its command line names a
  # path under the helper's state or runtime dir, and it runs as the dirs' owner. Signals:
  # TERM, KILL, INT, HUP, QUIT only. Sent through a pidfd opened before the proof.
  signalVmm @6 (opId :Text, pid :Int32, signal :Int32) -> (failure :Failure);
}
