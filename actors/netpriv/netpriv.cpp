// See netpriv.hpp. Detached: every handler may block (helper calls, journal appends).
#include "actors/netpriv/netpriv.hpp"

#include <optional>

#include <caf/all.hpp>
#include <fmt/core.h>

#include "actors/failure.hpp"
#include "actors/journaled.hpp"
#include "actors/messages.hpp"
#include "journal/journal.hpp"

namespace banger::actors {

namespace {

using namespace std::chrono_literals;

struct netpriv_state {
  net_config cfg;
  journal::journal* journal = nullptr;
  caf::actor writer;
  lease_state leases;
  std::optional<helper::client> helper;
  bool bridge_ready = false;
  std::string current_op; ///< of the request being served
};

using self_ptr = caf::stateful_actor<netpriv_state>*;

/// Appends to the lease stream through the writer and applies it (blocking; this actor is
/// detached).
expected<void> record(self_ptr self, journal::payload p, const std::string& op) {
  auto& s = self->state;
  return append_and_apply_blocking(self->system(), s.writer, net_stream(s.cfg.bridge), s.leases.stream_version, {p}, op,
                                   s.leases);
}

/// The helper, started (again) when needed, with the bridge ensured.
expected<helper::client*> helper_of(self_ptr self, const std::string& op) {
  auto& s = self->state;
  if (!s.helper) {
    auto c = helper::client::launch(s.cfg.helper);
    if (!c)
      return c.err();
    s.helper.emplace(std::move(*c));
    s.bridge_ready = false;
  }
  if (!s.bridge_ready) {
    if (auto ok = s.helper->ensure_bridge(s.cfg.bridge, s.cfg.net.gateway_cidr(), op); !ok) {
      if (ok.err().code == errc::unavailable)
        s.helper.reset();
      return ok.err();
    }
    s.bridge_ready = true;
  }
  return &*s.helper;
}

net_reply from(expected<void> r, self_ptr self) {
  if (r)
    return {};
  if (r.err().code == errc::unavailable)
    self->state.helper.reset(); // dead helper: the next request starts a new one
  return net_reply{false, r.err(), {}};
}

net_reply handle(self_ptr self, const net_request& rq) {
  auto& s = self->state;
  using op = net_request::op;
  switch (rq.what) {
  case op::lease: {
    auto ip = pick_address(s.leases, s.cfg.net, rq.vm);
    if (!ip)
      return {false, ip.err(), {}};
    if (!s.leases.lease_of(rq.vm))
      if (auto ok = record(self, journal::resource_acquired{std::string(lease_kind), *ip, rq.vm}, rq.op_id); !ok)
        return {false, ok.err(), {}};
    return {true, {}, *ip};
  }
  case op::release_lease: {
    std::string ip = rq.ip.empty() ? s.leases.lease_of(rq.vm).value_or("") : rq.ip;
    auto v = parse_ipv4(ip);
    if (!v || !s.leases.by_ip.count(*v))
      return {}; // absent: released already
    if (auto ok = record(self, journal::resource_released{std::string(lease_kind), ip}, rq.op_id); !ok)
      return {false, ok.err(), {}};
    return {};
  }
  case op::create_tap: {
    auto h = helper_of(self, rq.op_id);
    if (!h)
      return {false, h.err(), {}};
    return from((*h)->create_tap(rq.tap, s.cfg.bridge, s.cfg.owner_uid, rq.op_id), self);
  }
  case op::delete_tap: {
    auto h = helper_of(self, rq.op_id);
    if (!h)
      return {false, h.err(), {}};
    return from((*h)->delete_tap(rq.tap, rq.op_id), self);
  }
  case op::add_nat:
  case op::clear_nat: {
    auto h = helper_of(self, rq.op_id);
    if (!h)
      return {false, h.err(), {}};
    auto cidr = rq.ip + "/32";
    return from(rq.what == op::add_nat ? (*h)->ensure_nat(s.cfg.bridge, cidr, rq.op_id)
                                       : (*h)->clear_nat(s.cfg.bridge, cidr, rq.op_id),
                self);
  }
  case op::signal_vmm: {
    auto h = helper_of(self, rq.op_id);
    if (!h)
      return {false, h.err(), {}};
    return from((*h)->signal_vmm(rq.pid, rq.signo, rq.op_id), self);
  }
  }
  return {false, make_error(errc::internal, "netpriv: unknown request"), {}};
}

caf::behavior netpriv_actor(self_ptr self, net_config cfg, journal::journal* j, caf::actor writer) {
  auto& s = self->state;
  s.cfg = std::move(cfg);
  s.journal = j;
  s.writer = std::move(writer);
  s.leases = journal::fold_stream(*j, net_stream(s.cfg.bridge), std::move(s.leases));
  install_exception_handler(self, {"the network actor", [self] { return self->state.current_op; }, {}});
  // The helper (and its KJ loop) must be destroyed on this thread.
  self->attach_functor([self] { self->state.helper.reset(); });
  return {
    [self](const net_request& rq) {
      self->state.current_op = rq.op_id;
      return handle(self, rq);
    },
  };
}

} // namespace

std::string net_stream(const std::string& bridge) { return "net/" + bridge; }

caf::actor spawn_netpriv(caf::actor_system& sys, net_config cfg, journal::journal* journal, caf::actor writer) {
  return sys.spawn<caf::detached>(netpriv_actor, std::move(cfg), journal, std::move(writer));
}

} // namespace banger::actors
