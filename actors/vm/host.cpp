// See host.hpp. The real vm_host: its dispatch of resource kinds to their handlers (one per
// kind, host_internal.hpp), the agent and ssh waits after a launch, shutdown, liveness and
// adoption checks, and the crash points of the crash tests. Blocking; VM worker threads.
#include "actors/vm/host.hpp"

#include <array>
#include <csignal>
#include <utility>

#include <fmt/core.h>

#include "actors/vm/crash_point.hpp"
#include "actors/vm/host_internal.hpp"
#include "actors/vm/known_hosts.hpp"
#include "actors/vm/ssh_ready.hpp"

namespace banger::actors {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

/// For the crash tests: a feed whose receiver hits crash_point("during:", "workspace") at the
/// second shipped entry, once the repository's files and the first shipped file are written.
class midway_feed final : public workspace_feed {
public:
  explicit midway_feed(workspace_feed& in) : in_(in) {}
  expected<workspace::landed> pump(workspace::receiver& to) override {
    struct midway final : workspace::receiver {
      workspace::receiver& to;
      int shipped = 0;
      explicit midway(workspace::receiver& r) : to(r) {}
      expected<void> begin(const workspace::stream_begin& b) override { return to.begin(b); }
      expected<void> entry(const workspace::stream_entry& e) override {
        if (!e.git && ++shipped == 2)
          crash_point("during:", "workspace");
        return to.entry(e);
      }
      expected<void> data(std::string_view bytes) override { return to.data(bytes); }
      expected<workspace::landed> finish(const std::vector<workspace::index_record>& index) override {
        return to.finish(index);
      }
      void abort() override { to.abort(); }
    } m(to);
    return in_.pump(m);
  }

private:
  workspace_feed& in_;
};

} // namespace

vm_paths paths_of(const host_config& c, const std::string& vm) {
  return {c.state / "vms" / vm, c.runtime / "vms" / vm};
}

std::string tap_of(const vm_state& s) { return "bgt" + s.id; }

std::optional<vmm::vmm_process> vmm_of(const host_config& c, const vm_state& s) {
  const auto* r = s.find(resource_kind::vmm);
  if (!r || !r->acquired)
    return std::nullopt;
  vmm::vmm_process p;
  try {
    p.pid = std::stoi(r->id);
  } catch (...) {
    return std::nullopt;
  }
  auto d = parse_vmm_detail(r->detail);
  p.start_time = d.start_time;
  p.cmdline_sha256 = d.cmdline_sha256;
  auto vp = paths_of(c, s.name);
  p.qmp_socket = vp.qmp_socket();
  p.agent_socket = vp.agent_socket();
  return p;
}

namespace {

/// One row per resource kind, in enum order, from the kinds' handlers: a kind without a
/// resource_handler specialisation does not compile.
struct handler_row {
  bool (*wants)(const host_env&);
  std::string (*planned_id)(const host_env&, const vm_state&);
  expected<step_result> (*make)(const host_env&, const vm_state&, const std::string&);
  expected<void> (*release)(const host_env&, const vm_state&, const vm_resource&, const std::string&);
};

template <std::size_t... I>
constexpr std::array<handler_row, resource_kind_count> handler_rows(std::index_sequence<I...>) {
  return {{{&resource_handler<static_cast<resource_kind>(I)>::wants,
            &resource_handler<static_cast<resource_kind>(I)>::planned_id,
            &resource_handler<static_cast<resource_kind>(I)>::make,
            &resource_handler<static_cast<resource_kind>(I)>::release}...}};
}

constexpr auto handlers = handler_rows(std::make_index_sequence<resource_kind_count>{});

const handler_row& handler_of(resource_kind k) { return handlers[static_cast<std::size_t>(k)]; }

class real_host final : public vm_host {
public:
  explicit real_host(host_env env) : h_(std::move(env)) {}

  bool wants(const vm_state&, resource_kind kind) override { return handler_of(kind).wants(h_); }

  std::string planned_id(const vm_state& s, resource_kind kind) override { return handler_of(kind).planned_id(h_, s); }

  expected<step_result> acquire(const vm_state& s, resource_kind kind, const std::string& op) override {
    crash_point("before:", to_string(kind));
    auto r = handler_of(kind).make(h_, s, op);
    if (r)
      crash_point("after:", to_string(kind));
    return r;
  }

  expected<void> release(const vm_state& s, const vm_resource& r, const std::string& op) override {
    crash_point("release:", to_string(r.kind));
    return handler_of(r.kind).release(h_, s, r, op);
  }

  expected<void> wait_agent(const vm_state& s, const std::string&) override {
    auto p = h_.paths(s);
    auto proc = vmm_of(h_.cfg, s);
    auto r = h_.agent.wait_ready(s.name, p.agent_socket(), h_.cfg.agent_timeout);
    if (!r) {
      error e = r.err();
      if (proc && !h_.driver->matches(*proc))
        e.message += "; the VMM exited (see `banger vm logs " + s.name + "`)";
      else
        e.message += "; the guest's console is in `banger vm logs " + s.name + "`";
      return e;
    }
    crash_point("after:", "agent");
    return {};
  }

  expected<void> post_start(const vm_state& s, const std::string&) override {
    auto p = h_.paths(s);
    auto r =
      wait_ssh_ready(h_.agent, {h_.cfg.known_hosts, h_.cfg.agent_timeout}, s.name, p.host_key_pub(), p.agent_socket());
    crash_point("after:", "post_start");
    return r;
  }

  expected<void> pause(const vm_state& s, const std::string&) override {
    auto r = run_state(s, true);
    if (r)
      crash_point("after:", "pause");
    return r;
  }
  expected<void> resume(const vm_state& s, const std::string&) override { return run_state(s, false); }
  expected<bool> is_paused(const vm_state& s) override {
    auto proc = vmm_of(h_.cfg, s);
    if (!proc)
      return make_error(errc::not_running, fmt::format("VM {} has no VMM on record", s.name));
    auto st = h_.driver->status(*proc);
    if (!st)
      return st.err();
    return *st == "paused";
  }

  std::string shutdown(const vm_state& s, bool kill, const std::string&) override {
    auto proc = vmm_of(h_.cfg, s);
    auto done = [&](std::string how) {
      h_.forget_agent(s.name);
      return how;
    };
    if (!proc || !h_.driver->matches(*proc))
      return done(fmt::format("the VMM exited unexpectedly (see `banger vm logs {}`)", s.name));
    if (kill) {
      kill_vmm(h_, *proc);
      return done("killed");
    }
    // A paused guest cannot power itself off: it runs again first (a failure here only means
    // the harder rungs below do the work).
    if (auto st = h_.driver->status(*proc); st && *st == "paused")
      (void)h_.driver->resume(*proc);
    if (h_.agent.poweroff && h_.agent.poweroff(s.name, h_.paths(s).agent_socket()) &&
        h_.driver->wait_exit(*proc, h_.cfg.stop_timeout))
      return done("stopped");
    if (h_.driver->powerdown(*proc) && h_.driver->wait_exit(*proc, h_.cfg.stop_timeout))
      return done("stopped (ACPI power button)");
    if (h_.driver->quit(*proc) && h_.driver->wait_exit(*proc, 5s))
      return done("stopped (QMP quit after the guest did not power off)");
    kill_vmm(h_, *proc);
    return done("killed (did not stop in time)");
  }

  std::string adoption_refused(const vm_state& s) override {
    const auto* r = s.find(resource_kind::vmm);
    if (!r || !r->acquired)
      return "no VMM is on record";
    auto recorded = recorded_boot_id(*r);
    if (!recorded.empty() && !h_.cfg.boot_id.empty() && recorded != h_.cfg.boot_id)
      return fmt::format("the host rebooted since it started (boot id {} then, {} now)", recorded, h_.cfg.boot_id);
    if (!vmm_alive(s))
      return fmt::format("its VMM (pid {}) was gone when bangerd started", r->id);
    return {};
  }

  bool vmm_alive(const vm_state& s) override {
    auto proc = vmm_of(h_.cfg, s);
    return !proc || h_.driver->matches(*proc);
  }

  expected<workspace::landed> land_workspace(const vm_state& s, const std::string& guest_path, workspace_feed& in,
                                             const std::string&) override {
    crash_point("before:", "workspace");
    midway_feed midway(in);
    workspace_feed& feed = crash_point_named("during:workspace") ? midway : in;
    bool in_guest = s.phase == vm_phase::running && !s.workspace_disk_released;
    auto r =
      in_guest ? land_workspace_in_guest(h_, s, guest_path, feed) : land_workspace_on_disk(h_, s, guest_path, feed);
    if (r)
      crash_point("after:", "workspace");
    return r;
  }

  expected<void> release_work_disk(const vm_state& s, const std::string&) override {
    if (!h_.agent.release_work_disk)
      return make_error(errc::unavailable, "no guest agent access (a bug in bangerd)");
    return h_.agent.release_work_disk(s.name, h_.paths(s).agent_socket());
  }

  expected<void> attach_work_disk(const vm_state& s, const std::string&) override {
    if (!h_.agent.attach_work_disk)
      return make_error(errc::unavailable, "no guest agent access (a bug in bangerd)");
    return h_.agent.attach_work_disk(s.name, h_.paths(s).agent_socket());
  }

  expected<void> repair_work_disk(const vm_state& s, const std::string&) override {
    return actors::repair_work_disk(h_, s);
  }

  void remove_dirs(const vm_state& s) override {
    auto p = h_.paths(s);
    std::error_code ec;
    fs::remove_all(p.state_dir, ec);
    fs::remove_all(p.runtime_dir, ec);
    if (!h_.cfg.known_hosts.empty() && fs::exists(h_.cfg.known_hosts, ec))
      (void)update_known_hosts(h_.cfg.known_hosts, s.name + ".vm", "");
  }

private:
  expected<void> run_state(const vm_state& s, bool pause) {
    auto proc = vmm_of(h_.cfg, s);
    if (!proc || !h_.driver->matches(*proc))
      return make_error(errc::not_running,
                        fmt::format("VM {}'s VMM is not running (see `banger vm logs {}`)", s.name, s.name));
    return pause ? h_.driver->pause(*proc) : h_.driver->resume(*proc);
  }

  host_env h_;
};

} // namespace

std::unique_ptr<vm_host> make_host(host_config cfg, std::shared_ptr<vmm::driver> driver, net_call net,
                                   agent_access agent) {
  return std::make_unique<real_host>(host_env{std::move(cfg), std::move(driver), std::move(net), std::move(agent)});
}

} // namespace banger::actors
