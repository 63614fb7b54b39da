// The network kinds on the host (host_internal.hpp): the address leased on the bridge, the tap
// and the NAT rule, each through the netpriv actor (the one holder of the root helper). Blocking
// (the netpriv actor answers); VM worker threads.
#include "actors/vm/host_internal.hpp"

namespace banger::actors {

namespace {

expected<void> from(const net_reply& r) {
  if (r)
    return {};
  return r.err();
}

} // namespace

bool resource_handler<resource_kind::ip>::wants(const host_env& h) { return h.cfg.network; }

std::string resource_handler<resource_kind::ip>::planned_id(const host_env&, const vm_state&) {
  return {}; // known once leased
}

expected<step_result> resource_handler<resource_kind::ip>::make(const host_env& h, const vm_state& s,
                                                                const std::string& op) {
  auto r = h.net({net_cmd::lease{s.name}, op});
  if (!r)
    return r.err();
  return step_result{*r, h.cfg.bridge};
}

expected<void> resource_handler<resource_kind::ip>::release(const host_env& h, const vm_state& s, const vm_resource& r,
                                                            const std::string& op) {
  // An intent without an id: the lease may have been made; release whatever the VM holds.
  return from(h.net({net_cmd::release_lease{s.name, r.id}, op}));
}

bool resource_handler<resource_kind::tap>::wants(const host_env& h) { return h.cfg.network; }

std::string resource_handler<resource_kind::tap>::planned_id(const host_env&, const vm_state& s) { return tap_of(s); }

expected<step_result> resource_handler<resource_kind::tap>::make(const host_env& h, const vm_state& s,
                                                                 const std::string& op) {
  auto r = h.net({net_cmd::create_tap{tap_of(s)}, op});
  if (!r)
    return r.err();
  return step_result{tap_of(s), h.cfg.bridge};
}

expected<void> resource_handler<resource_kind::tap>::release(const host_env& h, const vm_state& s, const vm_resource& r,
                                                             const std::string& op) {
  return from(h.net({net_cmd::delete_tap{r.id.empty() ? tap_of(s) : r.id}, op}));
}

bool resource_handler<resource_kind::nat>::wants(const host_env& h) { return h.cfg.network && h.cfg.nat; }

std::string resource_handler<resource_kind::nat>::planned_id(const host_env&, const vm_state& s) { return s.ip(); }

expected<step_result> resource_handler<resource_kind::nat>::make(const host_env& h, const vm_state& s,
                                                                 const std::string& op) {
  auto r = h.net({net_cmd::add_nat{s.ip()}, op});
  if (!r)
    return r.err();
  return step_result{s.ip(), h.cfg.bridge};
}

expected<void> resource_handler<resource_kind::nat>::release(const host_env& h, const vm_state&, const vm_resource& r,
                                                             const std::string& op) {
  if (r.id.empty())
    return {};
  return from(h.net({net_cmd::clear_nat{r.id}, op}));
}

} // namespace banger::actors
