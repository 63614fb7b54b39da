// See vm.hpp. Pure functions on values.
#include "actors/vm/vm.hpp"

#include <algorithm>
#include <sstream>

#include <fmt/core.h>

#include "common/text.hpp"
#include "workspace/git_index.hpp"
#include "workspace/git_meta.hpp"
#include "workspace/rules.hpp"

namespace banger::actors {

std::string_view to_string(vm_phase p) {
  switch (p) {
  case vm_phase::absent: return "absent";
  case vm_phase::stopped: return "stopped";
  case vm_phase::starting: return "starting";
  case vm_phase::running: return "running";
  case vm_phase::stopping: return "stopping";
  case vm_phase::deleting: return "deleting";
  case vm_phase::deleted: return "deleted";
  case vm_phase::paused: return "paused";
  }
  return "unknown";
}

bool vmm_expected(vm_phase p) { return p == vm_phase::running || p == vm_phase::paused; }

bool needs_reconcile(vm_phase p) {
  return vmm_expected(p) || p == vm_phase::starting || p == vm_phase::stopping || p == vm_phase::deleting;
}

bool needs_reconcile(const vm_state& s) { return needs_reconcile(s.phase) || s.workspace_pending(); }

std::string vm_stream(std::string_view name) { return "vm/" + std::string(name); }

expected<void> validate_vm_name(std::string_view name) {
  auto bad = [&](std::string_view why) {
    return make_error(errc::bad_request,
                      fmt::format("invalid VM name {}: {}; a name is a DNS label: 1-63 characters of a-z, 0-9 and "
                                  "'-', not starting or ending with '-' (e.g. web-1)",
                                  quoted(name, 80), why));
  };
  if (name.empty())
    return bad("it is empty");
  if (name.size() > 63)
    return bad(fmt::format("it is {} characters long", name.size()));
  for (char ch : name)
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-'))
      return bad(ch >= 'A' && ch <= 'Z' ? "upper-case letters are not allowed"
                                        : fmt::format("{} is not allowed", quoted(std::string_view(&ch, 1))));
  if (name.front() == '-' || name.back() == '-')
    return bad("it starts or ends with '-'");
  return {};
}

expected<void> validate_vm_shape(std::uint32_t vcpus, std::uint32_t memory_mib, std::uint32_t disk_mib) {
  if (vcpus < 1 || vcpus > vm_limits::max_vcpus)
    return make_error(errc::bad_request,
                      fmt::format("--vcpu {} is out of range: use 1 to {}", vcpus, vm_limits::max_vcpus));
  if (memory_mib < vm_limits::min_memory_mib || memory_mib > vm_limits::max_memory_mib)
    return make_error(errc::bad_request, fmt::format("--memory {} MiB is out of range: use {} to {} MiB", memory_mib,
                                                     vm_limits::min_memory_mib, vm_limits::max_memory_mib));
  if (disk_mib < vm_limits::min_disk_mib || disk_mib > vm_limits::max_disk_mib)
    return make_error(errc::bad_request, fmt::format("--disk-size {} MiB is out of range: use {} to {} MiB", disk_mib,
                                                     vm_limits::min_disk_mib, vm_limits::max_disk_mib));
  return {};
}

std::string format_vmm_detail(const vmm_detail& d) {
  return fmt::format("{} {} {}", d.start_time, d.cmdline_sha256, d.boot_id);
}

vmm_detail parse_vmm_detail(std::string_view detail) {
  std::istringstream in{std::string(detail)};
  vmm_detail d;
  in >> d.start_time >> d.cmdline_sha256 >> d.boot_id;
  return d;
}

std::string recorded_boot_id(const vm_resource& vmm) { return parse_vmm_detail(vmm.detail).boot_id; }

const vm_resource* vm_state::find(resource_kind kind) const {
  for (const auto& r : resources)
    if (r.kind == kind)
      return &r;
  return nullptr;
}

std::string vm_state::ip() const {
  const auto* r = find(resource_kind::ip);
  return r && r->acquired ? r->id : std::string{};
}

namespace {

std::vector<vm_resource>::iterator find_resource(vm_state& s, resource_kind kind, const std::string& id) {
  return std::find_if(s.resources.begin(), s.resources.end(),
                      [&](const vm_resource& r) { return r.kind == kind && r.id == id; });
}

template <class... Ts>
struct overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
overloaded(Ts...) -> overloaded<Ts...>;

} // namespace

vm_state apply(vm_state s, const journal::stored_event& e) {
  s.stream_version = e.version;
  if (s.name.empty() && e.stream.rfind("vm/", 0) == 0)
    s.name = e.stream.substr(3);
  using namespace journal;
  std::visit(overloaded{
               [&](const vm_created& v) {
                 auto name = s.name;
                 s = vm_state{};
                 s.stream_version = e.version;
                 s.name = name;
                 s.phase = vm_phase::stopped;
                 s.id = v.id;
                 s.image = v.image;
                 s.image_version = v.image_version;
                 s.kernel = v.kernel;
                 s.kernel_version = v.kernel_version;
                 s.vcpus = static_cast<std::uint32_t>(v.vcpus);
                 s.memory_mib = static_cast<std::uint32_t>(v.memory_mib);
                 s.disk_mib = static_cast<std::uint32_t>(v.disk_mib);
                 s.created_ns = s.since_ns = e.wall_time_ns;
               },
               [&](const vm_configured& v) {
                 s.vcpus = static_cast<std::uint32_t>(v.vcpus);
                 s.memory_mib = static_cast<std::uint32_t>(v.memory_mib);
               },
               [&](const vm_starting& v) {
                 s.phase = vm_phase::starting;
                 s.since_ns = e.wall_time_ns;
                 if (!v.kernel_version.empty())
                   s.kernel_version = v.kernel_version;
                 s.last_error.clear();
               },
               [&](const resource_intended& v) {
                 auto kind = resource_kind_named(v.resource);
                 if (kind && find_resource(s, *kind, v.id) == s.resources.end())
                   s.resources.push_back({*kind, v.id, {}, false});
               },
               [&](const resource_acquired& v) {
                 auto kind = resource_kind_named(v.resource);
                 if (!kind)
                   return;
                 auto it = find_resource(s, *kind, v.id);
                 if (it == s.resources.end()) // an intent whose id only making it told (ip, vmm)
                   it = std::find_if(s.resources.begin(), s.resources.end(), [&](const vm_resource& r) {
                     return r.kind == *kind && !r.acquired && r.id.empty();
                   });
                 if (it == s.resources.end())
                   s.resources.push_back({*kind, v.id, v.detail, true});
                 else {
                   it->id = v.id;
                   it->detail = v.detail;
                   it->acquired = true;
                 }
               },
               [&](const resource_released& v) {
                 auto kind = resource_kind_named(v.resource);
                 if (!kind)
                   return;
                 auto it = find_resource(s, *kind, v.id);
                 if (it != s.resources.end())
                   s.resources.erase(it);
               },
               [&](const vm_running& v) {
                 s.phase = vm_phase::running;
                 s.since_ns = e.wall_time_ns;
                 s.boot_ms = v.boot_ms;
               },
               [&](const vm_start_failed& v) {
                 s.phase = vm_phase::stopped;
                 s.since_ns = e.wall_time_ns;
                 s.last_error = fmt::format("start failed at {}: {}", v.stage, v.reason);
               },
               [&](const vm_stopping&) {
                 s.phase = vm_phase::stopping;
                 s.since_ns = e.wall_time_ns;
               },
               [&](const vm_stopped& v) {
                 s.phase = vm_phase::stopped;
                 s.since_ns = e.wall_time_ns;
                 if (v.reason != "stopped" && v.reason != "killed" && v.reason != "powered off")
                   s.last_error = v.reason;
               },
               [&](const vm_deleting&) {
                 s.phase = vm_phase::deleting;
                 s.since_ns = e.wall_time_ns;
               },
               [&](const vm_deleted&) {
                 s.phase = vm_phase::deleted;
                 s.since_ns = e.wall_time_ns;
               },
               [&](const vm_paused&) {
                 s.phase = vm_phase::paused;
                 s.since_ns = e.wall_time_ns;
               },
               [&](const vm_resumed&) {
                 s.phase = vm_phase::running;
                 s.since_ns = e.wall_time_ns;
               },
               [&](const workspace_preparing& v) { s.workspace_pending_path = v.guest_path; },
               [&](const workspace_disk_released&) { s.workspace_disk_released = true; },
               [&](const workspace_prepared& v) {
                 s.workspace_pending_path.clear();
                 s.workspace_disk_released = false;
                 s.workspace = {v.host_path, v.guest_path, v.head,         v.branch,           v.digest,
                                v.files,     v.bytes,      e.wall_time_ns, v.include_untracked};
               },
               [&](const workspace_prepare_failed&) {
                 s.workspace_pending_path.clear();
                 s.workspace_disk_released = false;
               },
               [](const auto&) {},
             },
             e.body);
  return s;
}

namespace {

error refused(errc code, const vm_state& s, std::string_view what, std::string_view remedy) {
  return make_error(code, fmt::format("VM {} is {}: cannot {}{}{}", s.name, to_string(s.phase), what,
                                      remedy.empty() ? "" : "; ", remedy));
}

} // namespace

decision decide_create(const vm_state& s, const vm_cmd::create& r) {
  if (auto ok = validate_vm_name(s.name); !ok)
    return ok.err();
  if (s.phase != vm_phase::absent && s.phase != vm_phase::deleted)
    return make_error(errc::already_exists,
                      fmt::format("VM {} already exists ({}); pick another --name or `banger vm delete {}`", s.name,
                                  to_string(s.phase), s.name));
  if (auto ok = validate_vm_shape(r.vcpus, r.memory_mib, r.disk_mib); !ok)
    return ok.err();
  if (r.image_version.empty() || r.kernel_version.empty())
    return make_error(errc::bad_request, "a VM needs a kernel and an image version");
  return std::vector<journal::payload>{
    journal::vm_created{r.id, r.image, r.image_version, r.kernel, r.kernel_version, r.vcpus, r.memory_mib, r.disk_mib}};
}

decision decide_configure(const vm_state& s, std::uint32_t vcpus, std::uint32_t memory_mib) {
  if (s.phase == vm_phase::absent || s.phase == vm_phase::deleted)
    return make_error(errc::not_found, fmt::format("no VM named {}", s.name));
  if (s.phase != vm_phase::stopped)
    return refused(errc::conflict, s, "change its vCPUs or memory", fmt::format("`banger vm stop {}` first", s.name));
  std::uint32_t v = vcpus ? vcpus : s.vcpus, m = memory_mib ? memory_mib : s.memory_mib;
  if (auto ok = validate_vm_shape(v, m, s.disk_mib); !ok)
    return ok.err();
  return std::vector<journal::payload>{journal::vm_configured{v, m}};
}

decision decide_start(const vm_state& s, const std::string& kernel_version) {
  switch (s.phase) {
  case vm_phase::absent:
  case vm_phase::deleted: return make_error(errc::not_found, fmt::format("no VM named {}", s.name));
  case vm_phase::running: return refused(errc::already_exists, s, "start it", "it is already running");
  case vm_phase::paused:
    return refused(errc::already_exists, s, "start it", fmt::format("resume it: `banger vm resume {}`", s.name));
  case vm_phase::starting:
  case vm_phase::stopping: return refused(errc::conflict, s, "start it", "wait for it to settle");
  case vm_phase::deleting: return refused(errc::conflict, s, "start it", "it is being deleted");
  case vm_phase::stopped: break;
  }
  return std::vector<journal::payload>{journal::vm_starting{kernel_version}};
}

decision decide_stop(const vm_state& s, std::string_view how) {
  switch (s.phase) {
  case vm_phase::absent:
  case vm_phase::deleted: return make_error(errc::not_found, fmt::format("no VM named {}", s.name));
  case vm_phase::stopped: return refused(errc::not_running, s, "stop it", "");
  case vm_phase::starting:
  case vm_phase::stopping: return refused(errc::conflict, s, "stop it", "wait for it to settle");
  case vm_phase::deleting: return refused(errc::not_running, s, "stop it", "it is being deleted");
  case vm_phase::running:
  case vm_phase::paused: break;
  }
  return std::vector<journal::payload>{journal::vm_stopping{std::string(how)}};
}

decision decide_pause(const vm_state& s) {
  switch (s.phase) {
  case vm_phase::absent:
  case vm_phase::deleted: return make_error(errc::not_found, fmt::format("no VM named {}", s.name));
  case vm_phase::stopped:
  case vm_phase::deleting: return refused(errc::not_running, s, "pause it", "");
  case vm_phase::starting:
  case vm_phase::stopping: return refused(errc::conflict, s, "pause it", "wait for it to settle");
  case vm_phase::paused: return refused(errc::conflict, s, "pause it", "it is paused already");
  case vm_phase::running: break;
  }
  return std::vector<journal::payload>{};
}

decision decide_resume(const vm_state& s) {
  switch (s.phase) {
  case vm_phase::absent:
  case vm_phase::deleted: return make_error(errc::not_found, fmt::format("no VM named {}", s.name));
  case vm_phase::stopped:
  case vm_phase::deleting:
    return refused(errc::not_running, s, "resume it", fmt::format("`banger vm start {}` starts it", s.name));
  case vm_phase::starting:
  case vm_phase::stopping: return refused(errc::conflict, s, "resume it", "wait for it to settle");
  case vm_phase::running: return refused(errc::conflict, s, "resume it", "it is not paused");
  case vm_phase::paused: break;
  }
  return std::vector<journal::payload>{};
}

expected<void> require_running(const vm_state& s) {
  switch (s.phase) {
  case vm_phase::absent:
  case vm_phase::deleted:
    return make_error(errc::not_found, fmt::format("no VM named {}; see `banger vm list`", s.name));
  case vm_phase::running: return {};
  case vm_phase::paused:
    return make_error(errc::conflict,
                      fmt::format("VM {} is paused: resume it first (`banger vm resume {}`)", s.name, s.name));
  default:
    return make_error(errc::not_running, fmt::format("VM {} is {}: start it first (`banger vm start {}`)", s.name,
                                                     to_string(s.phase), s.name));
  }
}

decision decide_delete(const vm_state& s) {
  switch (s.phase) {
  case vm_phase::absent:
  case vm_phase::deleted: return make_error(errc::not_found, fmt::format("no VM named {}", s.name));
  case vm_phase::running:
  case vm_phase::paused:
  case vm_phase::starting:
  case vm_phase::stopping:
    return refused(errc::conflict, s, "delete it",
                   fmt::format("stop it first, or `banger vm delete --force {}`", s.name));
  case vm_phase::deleting: return std::vector<journal::payload>{}; // a delete that failed: try again
  case vm_phase::stopped: break;
  }
  return std::vector<journal::payload>{journal::vm_deleting{}};
}

decision decide_prepare_workspace(const vm_state& s, const vm_cmd::prepare_workspace& c) {
  if (s.phase == vm_phase::absent || s.phase == vm_phase::deleted)
    return make_error(errc::not_found, fmt::format("no VM named {}", s.name));
  if (auto ok = workspace::validate_guest_path(c.guest_path); !ok)
    return ok.err();
  if (c.host_path.empty() || c.host_path.front() != '/' || c.host_path.size() > 4096 ||
      c.host_path.find('\0') != std::string::npos)
    return make_error(errc::bad_request,
                      fmt::format("workspace host path {} is not an absolute path", quoted(c.host_path)));
  if (!c.head.empty() && !workspace::parse_oid(c.head))
    return make_error(errc::bad_request, fmt::format("workspace HEAD {} is not a commit id", quoted(c.head)));
  if (!c.branch.empty() && !workspace::plain_branch_name(c.branch))
    return make_error(errc::bad_request, fmt::format("workspace branch {} is not a branch name", quoted(c.branch)));
  switch (s.phase) {
  case vm_phase::stopped:
  case vm_phase::running: break; // on the work disk, or through the guest agent
  case vm_phase::paused:
    return refused(errc::conflict, s, "prepare a workspace", fmt::format("`banger vm resume {}` first", s.name));
  default: return refused(errc::conflict, s, "prepare a workspace", "wait until it is running or stopped");
  }
  return std::vector<journal::payload>{journal::workspace_preparing{c.host_path, c.guest_path}};
}

namespace {

decision decide_one(const vm_state& s, const vm_cmd::create& c) {
  auto d = decide_create(s, c);
  if (d && c.start)
    d->push_back(journal::vm_starting{c.kernel_version});
  return d;
}
decision decide_one(const vm_state& s, const vm_cmd::configure& c) {
  return decide_configure(s, c.vcpus, c.memory_mib);
}
decision decide_one(const vm_state& s, const vm_cmd::start&) { return decide_start(s, s.kernel_version); }
decision decide_one(const vm_state& s, const vm_cmd::stop&) { return decide_stop(s, "stop"); }
decision decide_one(const vm_state& s, const vm_cmd::kill&) { return decide_stop(s, "kill"); }
decision decide_one(const vm_state& s, const vm_cmd::reap&) { return decide_stop(s, "vmm exited"); }
decision decide_one(const vm_state& s, const vm_cmd::remove&) { return decide_delete(s); }
decision decide_one(const vm_state& s, const vm_cmd::remove_force&) {
  return s.phase == vm_phase::running || s.phase == vm_phase::paused ? decide_stop(s, "delete") : decide_delete(s);
}
decision decide_one(const vm_state& s, const vm_cmd::pause&) { return decide_pause(s); }
decision decide_one(const vm_state& s, const vm_cmd::resume&) { return decide_resume(s); }
decision decide_one(const vm_state&, const vm_cmd::reconcile&) { return std::vector<journal::payload>{}; }
decision decide_one(const vm_state& s, const vm_cmd::prepare_workspace& c) { return decide_prepare_workspace(s, c); }

} // namespace

decision decide(const vm_state& s, const vm_command& c) {
  return std::visit([&](const auto& v) { return decide_one(s, v); }, c);
}

decision decide(const vm_state& s, const journal::vm_command& recorded) {
  auto c = command_of(recorded);
  if (!c)
    return c.err();
  return decide(s, *c);
}

namespace {

std::string held_list(const vm_state& s) {
  std::string out;
  for (const auto& r : s.resources)
    out += fmt::format("{}{} {} ({})", out.empty() ? "" : ", ", to_string(r.kind), r.id.empty() ? "-" : r.id,
                       r.acquired ? "acquired" : "intended");
  return out;
}

} // namespace

std::string vm_grammar_violation(const vm_state& s, const journal::stored_event& e, bool commands_recorded) {
  using namespace journal;
  const vm_phase p = s.phase;
  const bool gone = p == vm_phase::absent || p == vm_phase::deleted;
  auto in = [&](std::initializer_list<vm_phase> ok) { return std::find(ok.begin(), ok.end(), p) != ok.end(); };
  auto illegal = [&]() { return fmt::format("{} is not legal while the VM is {}", kind_of(e.body), to_string(p)); };
  // A workspace preparation makes the work disk of a VM that never started (a per-VM resource).
  auto per_vm_while_preparing = [&](const std::string& kind) {
    auto k = resource_kind_named(kind);
    return p == vm_phase::stopped && s.workspace_pending() && k && per_vm(*k);
  };
  return std::visit(
    overloaded{
      [&](const journal::vm_command& c) -> std::string {
        if (!gone)
          return {};
        if (c.command != vm_cmd::create::name)
          return fmt::format("vm_command {} while the VM is {}: only a create begins a life", quoted(c.command),
                             to_string(p));
        if (!c.refused.empty())
          return fmt::format("a refused create is recorded while the VM is {}: refusals are recorded only for a "
                             "VM that exists",
                             to_string(p));
        return {};
      },
      [&](const vm_created&) -> std::string { return gone ? "" : illegal(); },
      [&](const vm_configured&) -> std::string { return in({vm_phase::stopped}) ? "" : illegal(); },
      [&](const vm_starting&) -> std::string { return in({vm_phase::stopped}) ? "" : illegal(); },
      [&](const resource_intended& r) -> std::string {
        return in({vm_phase::starting}) || per_vm_while_preparing(r.resource) ? "" : illegal();
      },
      [&](const resource_acquired& r) -> std::string {
        if (!in({vm_phase::starting}) && !per_vm_while_preparing(r.resource))
          return illegal();
        bool intended = std::any_of(s.resources.begin(), s.resources.end(), [&](const vm_resource& h) {
          return to_string(h.kind) == r.resource && !h.acquired && (h.id == r.id || h.id.empty());
        });
        if (!intended)
          return fmt::format("resource {} {} is acquired without an intent on record", r.resource, quoted(r.id));
        return {};
      },
      [&](const resource_released& r) -> std::string {
        bool legacy_delete = !commands_recorded && p == vm_phase::stopped;
        if (!in({vm_phase::starting, vm_phase::stopping, vm_phase::deleting}) && !legacy_delete &&
            !per_vm_while_preparing(r.resource))
          return illegal();
        if (!std::any_of(s.resources.begin(), s.resources.end(),
                         [&](const vm_resource& h) { return to_string(h.kind) == r.resource && h.id == r.id; }))
          return fmt::format("resource {} {} is released but not held", r.resource, quoted(r.id));
        return {};
      },
      [&](const vm_running&) -> std::string { return in({vm_phase::starting}) ? "" : illegal(); },
      [&](const vm_start_failed&) -> std::string { return in({vm_phase::starting}) ? "" : illegal(); },
      [&](const vm_stopping&) -> std::string {
        return in({vm_phase::running, vm_phase::paused}) ? "" : illegal();
      },
      [&](const vm_stopped&) -> std::string { return in({vm_phase::stopping}) ? "" : illegal(); },
      [&](const vm_adopted&) -> std::string {
        return in({vm_phase::running, vm_phase::paused}) ? "" : illegal();
      },
      [&](const vm_paused&) -> std::string { return in({vm_phase::running}) ? "" : illegal(); },
      [&](const vm_resumed&) -> std::string { return in({vm_phase::paused}) ? "" : illegal(); },
      [&](const vm_deleting&) -> std::string { return in({vm_phase::stopped}) ? "" : illegal(); },
      [&](const workspace_preparing&) -> std::string {
        return in({vm_phase::stopped, vm_phase::running}) && !s.workspace_pending() ? "" : illegal();
      },
      [&](const workspace_disk_released&) -> std::string {
        return in({vm_phase::running}) && s.workspace_pending() && !s.workspace_disk_released ? "" : illegal();
      },
      [&](const workspace_prepared&) -> std::string { return s.workspace_pending() ? "" : illegal(); },
      [&](const workspace_prepare_failed&) -> std::string { return s.workspace_pending() ? "" : illegal(); },
      [&](const vm_deleted&) -> std::string {
        if (!in({vm_phase::deleting}) && !(!commands_recorded && p == vm_phase::stopped))
          return illegal();
        if (!s.resources.empty())
          return fmt::format("vm_deleted while resources are still held: {}", held_list(s));
        return {};
      },
      [&](const unknown_event&) -> std::string { return {}; }, // a newer banger's kind: not ours to judge
      [&](const auto&) -> std::string { return fmt::format("{} does not belong in a VM's stream", kind_of(e.body)); },
    },
    e.body);
}

std::string refusal_text(const error& e) { return fmt::format("{}: {}", to_string(e.code), e.message); }

} // namespace banger::actors
