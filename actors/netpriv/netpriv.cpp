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
    return std::string();
  if (r.err().code == errc::unavailable)
    self->state.helper.reset(); // dead helper: the next request starts a new one
  return r.err();
}

/// Runs `call` on the helper (started and its bridge ensured first).
template <class F>
net_reply with_helper(self_ptr self, const std::string& op, F call) {
  auto h = helper_of(self, op);
  if (!h)
    return h.err();
  return from(call(**h), self);
}

net_reply serve(self_ptr self, const net_cmd::lease& c, const std::string& op) {
  auto& s = self->state;
  auto ip = pick_address(s.leases, s.cfg.net, c.vm);
  if (!ip)
    return ip.err();
  if (!s.leases.lease_of(c.vm))
    if (auto ok = record(self, journal::resource_acquired{std::string(lease_kind), *ip, c.vm}, op); !ok)
      return ok.err();
  return *ip;
}

net_reply serve(self_ptr self, const net_cmd::release_lease& c, const std::string& op) {
  auto& s = self->state;
  std::string ip = c.ip.empty() ? s.leases.lease_of(c.vm).value_or("") : c.ip;
  auto v = parse_ipv4(ip);
  if (!v || !s.leases.by_ip.count(*v))
    return std::string(); // absent: released already
  if (auto ok = record(self, journal::resource_released{std::string(lease_kind), ip}, op); !ok)
    return ok.err();
  return std::string();
}

net_reply serve(self_ptr self, const net_cmd::create_tap& c, const std::string& op) {
  auto& cfg = self->state.cfg;
  return with_helper(self, op, [&](helper::client& h) { return h.create_tap(c.tap, cfg.bridge, cfg.owner_uid, op); });
}

net_reply serve(self_ptr self, const net_cmd::delete_tap& c, const std::string& op) {
  return with_helper(self, op, [&](helper::client& h) { return h.delete_tap(c.tap, op); });
}

net_reply serve(self_ptr self, const net_cmd::add_nat& c, const std::string& op) {
  auto& cfg = self->state.cfg;
  return with_helper(self, op, [&](helper::client& h) { return h.ensure_nat(cfg.bridge, c.ip + "/32", op); });
}

net_reply serve(self_ptr self, const net_cmd::clear_nat& c, const std::string& op) {
  auto& cfg = self->state.cfg;
  return with_helper(self, op, [&](helper::client& h) { return h.clear_nat(cfg.bridge, c.ip + "/32", op); });
}

net_reply serve(self_ptr self, const net_cmd::signal_vmm& c, const std::string& op) {
  return with_helper(self, op, [&](helper::client& h) { return h.signal_vmm(c.pid, c.signo, op); });
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
    [self](const net_request& rq) -> net_reply {
      self->state.current_op = rq.op_id;
      return std::visit([&](const auto& c) { return serve(self, c, rq.op_id); }, rq.command);
    },
  };
}

} // namespace

std::string net_stream(const std::string& bridge) { return "net/" + bridge; }

caf::actor spawn_netpriv(caf::actor_system& sys, net_config cfg, journal::journal* journal, caf::actor writer) {
  return sys.spawn<caf::detached>(netpriv_actor, std::move(cfg), journal, std::move(writer));
}

} // namespace banger::actors
