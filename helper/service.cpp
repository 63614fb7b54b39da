// See service.hpp. Each method: read the arguments, validate every one (the validators are the
// boundary; docs/SECURITY.md), run the operation from ops.hpp, log one line, answer a Failure.
// Bad arguments never reach a tool's command line.
#include "helper/service.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>

#include "common/log.hpp"
#include "helper/ops.hpp"
#include "helper/validate.hpp"
#include "schema/helper.capnp.h"

namespace banger::helper {

namespace {

/// One line per operation: {"time","level","op","msg"} like the daemon's log, msg holding the
/// operation, its arguments and the outcome.
void log_op(const std::string& op_id, const std::string& what, const expected<void>& outcome) {
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char ts[96];
  std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  std::string msg =
    "banger-helper " + what + ": " +
    (outcome ? std::string("ok") : std::string(to_string(outcome.err().code)) + ": " + outcome.err().message);
  std::fprintf(stderr, "{\"time\":\"%s\",\"level\":\"%s\",\"op\":\"%s\",\"msg\":\"%s\"}\n", ts,
               outcome ? "info" : "warn", json_escape(op_id).c_str(), json_escape(msg).c_str());
  std::fflush(stderr);
}

void set_failure(helper_rpc::Failure::Builder f, const expected<void>& outcome) {
  if (outcome) {
    f.setCode(0);
    return;
  }
  f.setCode(static_cast<std::uint8_t>(outcome.err().code));
  f.setMessage(outcome.err().message);
}

std::string text(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }

/// Runs `validate` then `op`; logs and fills the Failure.
template <class Results, class Validate, class Op>
void dispatch(Results results, const std::string& op_id, const std::string& what, Validate&& validate, Op&& op) {
  expected<void> outcome = validate();
  if (outcome)
    outcome = op();
  log_op(op_id, what, outcome);
  set_failure(results.initFailure(), outcome);
}

class helper_impl final : public helper_rpc::Helper::Server {
public:
  explicit helper_impl(helper_config cfg) : cfg_(std::move(cfg)) {}

protected:
  // Safe: touches nothing; answers the version string.
  kj::Promise<void> ping(PingContext ctx) override {
    auto p = ctx.getParams();
    auto r = ctx.getResults();
    r.setVersion(BANGER_VERSION);
    dispatch(
      r, text(p.getOpId()), "ping", [] { return expected<void>{}; }, [] { return expected<void>{}; });
    return kj::READY_NOW;
  }

  // Safe: only a bridge named br-fc or br-fc-[a-z0-9]{1,9} is created or configured, so no
  // existing host interface (eth0, lo, docker0, another bridge) can be touched; the address is a
  // strict dotted quad with a /8../32 prefix, added (never removed); an existing non-bridge of
  // that name is refused.
  kj::Promise<void> ensureBridge(EnsureBridgeContext ctx) override {
    auto p = ctx.getParams();
    auto name = text(p.getName()), cidr = text(p.getCidr());
    dispatch(
      ctx.getResults(), text(p.getOpId()), "ensureBridge name=" + name + " cidr=" + cidr,
      [&]() -> expected<void> {
        if (auto ok = validate_bridge_name(name); !ok)
          return ok;
        return validate_cidr(cidr);
      },
      [&] { return ensure_bridge(name, cidr); });
    return kj::READY_NOW;
  }

  // Safe: the tap name carries banger's bgt prefix, so no other interface is created or moved;
  // it is attached only to a banger bridge; ownerUid only decides which user may open the tap
  // (the daemon's VMM), never (uid_t)-1. An existing tap with another owner or bridge is
  // refused, not adopted.
  kj::Promise<void> createTap(CreateTapContext ctx) override {
    auto p = ctx.getParams();
    auto name = text(p.getName()), bridge = text(p.getBridge());
    unsigned uid = p.getOwnerUid();
    dispatch(
      ctx.getResults(), text(p.getOpId()),
      "createTap name=" + name + " bridge=" + bridge + " owner_uid=" + std::to_string(uid),
      [&]() -> expected<void> {
        if (auto ok = validate_tap_name(name); !ok)
          return ok;
        if (auto ok = validate_bridge_name(bridge); !ok)
          return ok;
        return validate_uid(uid);
      },
      [&] { return create_tap(name, bridge, uid); });
    return kj::READY_NOW;
  }

  // Safe: only a link named bgt[a-z0-9]{1,12} that is a tap is deleted (never eth0, lo or a
  // bridge); absent is success, so a retry after a crash is harmless.
  kj::Promise<void> deleteTap(DeleteTapContext ctx) override {
    auto p = ctx.getParams();
    auto name = text(p.getName());
    dispatch(
      ctx.getResults(), text(p.getOpId()), "deleteTap name=" + name, [&] { return validate_tap_name(name); },
      [&] { return delete_tap(name); });
    return kj::READY_NOW;
  }

  // Safe: rules go only into banger's own table `ip banger` (never another table, never a
  // flush); their text is built from a validated bridge name and a validated, normalised
  // network, so nothing the daemon sends is parsed by nft as syntax; masquerading applies to
  // that bridge's subnet only. ip_forward=1 is the one sysctl written, with a fixed value.
  kj::Promise<void> ensureNat(EnsureNatContext ctx) override {
    auto p = ctx.getParams();
    auto bridge = text(p.getBridge()), cidr = text(p.getCidr());
    dispatch(
      ctx.getResults(), text(p.getOpId()), "ensureNat bridge=" + bridge + " cidr=" + cidr,
      [&]() -> expected<void> {
        if (auto ok = validate_bridge_name(bridge); !ok)
          return ok;
        return validate_cidr(cidr);
      },
      [&] { return ensure_nat(bridge, cidr); });
    return kj::READY_NOW;
  }

  // Safe: deletes only rules of table `ip banger` whose comment names this bridge and network,
  // and the table only when no rule remains; other tables are never touched.
  kj::Promise<void> clearNat(ClearNatContext ctx) override {
    auto p = ctx.getParams();
    auto bridge = text(p.getBridge()), cidr = text(p.getCidr());
    dispatch(
      ctx.getResults(), text(p.getOpId()), "clearNat bridge=" + bridge + " cidr=" + cidr,
      [&]() -> expected<void> {
        if (auto ok = validate_bridge_name(bridge); !ok)
          return ok;
        return validate_cidr(cidr);
      },
      [&] { return clear_nat(bridge, cidr); });
    return kj::READY_NOW;
  }

  // Safe: the signal is one of TERM, KILL, INT, HUP, QUIT (no STOP, no 0-probe); the target is
  // a single pid > 1 (no groups, not init) proven through /proc to run qemu-system-x86_64 or
  // firecracker as the dirs' owner or root with a command line naming banger's own dirs, and
  // the signal goes through a pidfd opened before the proof, so a recycled pid is never hit.
  kj::Promise<void> signalVmm(SignalVmmContext ctx) override {
    auto p = ctx.getParams();
    int pid = p.getPid(), signo = p.getSignal();
    dispatch(
      ctx.getResults(), text(p.getOpId()), "signalVmm pid=" + std::to_string(pid) + " signal=" + std::to_string(signo),
      [&]() -> expected<void> {
        if (auto ok = validate_pid(pid); !ok)
          return ok;
        return validate_signal(signo);
      },
      [&] { return signal_vmm(pid, signo, cfg_); });
    return kj::READY_NOW;
  }

private:
  helper_config cfg_;
};

} // namespace

capnp::Capability::Client make_service(const helper_config& cfg) {
  return helper_rpc::Helper::Client(kj::heap<helper_impl>(cfg));
}

} // namespace banger::helper
