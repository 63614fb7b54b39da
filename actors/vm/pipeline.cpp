// See pipeline.hpp.
#include "actors/vm/pipeline.hpp"

#include <algorithm>

#include <fmt/core.h>

namespace banger::actors {

namespace {

using clock = std::chrono::steady_clock;

std::chrono::milliseconds since(clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - t0);
}

/// Releases `held` (in reverse) and records each release; returns the failures as text.
std::vector<std::string> release_all(vm_state& s, std::vector<vm_resource> held, vm_host& host, const recorder& record,
                                     const std::string& op) {
  std::vector<std::string> failures;
  for (auto it = held.rbegin(); it != held.rend(); ++it) {
    auto r = host.release(s, *it, op);
    if (!r) {
      failures.push_back(fmt::format("{} {}: {}", it->kind, it->id, r.err().message));
      continue;
    }
    auto next = record({journal::resource_released{it->kind, it->id}});
    if (!next) {
      failures.push_back(
        fmt::format("{} {}: released, but the journal refused: {}", it->kind, it->id, next.err().message));
      continue;
    }
    s = std::move(*next);
  }
  return failures;
}

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& x : v)
    out += (out.empty() ? "" : "; ") + x;
  return out;
}

} // namespace

const std::vector<std::string_view>& start_order() {
  static const std::vector<std::string_view> order = {resource::overlay, resource::work_disk, resource::ip,
                                                      resource::tap,     resource::sockets,   resource::nat,
                                                      resource::vmm};
  return order;
}

expected<vm_state> run_start(vm_state s, vm_host& host, const recorder& record, const stage_report& report,
                             const std::string& op) {
  std::vector<std::string> touched; // kinds this attempt recorded an intent for
  auto fail = [&](std::string_view stage, const error& why) -> expected<vm_state> {
    std::vector<vm_resource> held;
    for (const auto& r : s.resources)
      if (std::find(touched.begin(), touched.end(), r.kind) != touched.end())
        held.push_back(r);
    auto leftovers = release_all(s, held, host, record, op);
    std::string reason = why.message;
    if (!leftovers.empty())
      reason += "; could not release: " + joined(leftovers);
    auto failed = record({journal::vm_start_failed{std::string(stage), reason}});
    error e = why;
    e.message = fmt::format("VM {} did not start ({}): {}", s.name, stage, reason);
    if (failed)
      s = std::move(*failed);
    return e;
  };

  clock::time_point vmm_started = clock::now();
  for (auto kind : start_order()) {
    if (!host.wants(s, kind))
      continue;
    if (resource::per_vm(kind)) {
      const auto* have = s.find(kind);
      if (have && have->acquired)
        continue; // made by an earlier start; lives until delete
    }
    auto t0 = clock::now();
    std::string k(kind);
    touched.push_back(k);
    auto intended = record({journal::resource_intended{k, host.planned_id(s, kind)}});
    if (!intended)
      return fail(kind, intended.err());
    s = std::move(*intended);
    if (kind == resource::vmm)
      vmm_started = clock::now();
    auto made = host.acquire(s, kind, op);
    if (!made)
      return fail(kind, made.err());
    auto acquired = record({journal::resource_acquired{k, made->id, made->detail}});
    if (!acquired) {
      // Made but not recorded as made: the intent is on record, so release it by that.
      return fail(kind, acquired.err());
    }
    s = std::move(*acquired);
    report(k, since(t0));
  }

  auto t0 = clock::now();
  if (auto ok = host.wait_agent(s, op); !ok)
    return fail("agent", ok.err());
  report("agent", since(t0));
  auto boot = since(vmm_started);

  t0 = clock::now();
  if (auto ok = host.post_start(s, op); !ok)
    return fail("post_start", ok.err());
  report("post_start", since(t0));

  auto running = record({journal::vm_running{static_cast<std::uint64_t>(boot.count())}});
  if (!running)
    return fail("post_start", running.err());
  return running;
}

expected<vm_state> run_stop(vm_state s, vm_host& host, bool kill, const recorder& record, const stage_report& report,
                            const std::string& op) {
  auto t0 = clock::now();
  std::string how = host.shutdown(s, kill, op);
  report("shutdown", since(t0));
  t0 = clock::now();
  std::vector<vm_resource> held;
  for (const auto& r : s.resources)
    if (!resource::per_vm(r.kind))
      held.push_back(r);
  auto leftovers = release_all(s, held, host, record, op);
  report("release", since(t0));
  auto stopped = record({journal::vm_stopped{how}});
  if (!stopped)
    return stopped.err();
  s = std::move(*stopped);
  if (!leftovers.empty())
    return make_error(errc::operation_failed,
                      fmt::format("VM {} stopped, but some of its resources could not be released: {}; `banger vm "
                                  "delete {}` tries again",
                                  s.name, joined(leftovers), s.name));
  return s;
}

expected<vm_state> run_delete(vm_state s, vm_host& host, const recorder& record, const stage_report& report,
                              const std::string& op) {
  auto t0 = clock::now();
  auto leftovers = release_all(s, s.resources, host, record, op);
  if (!leftovers.empty())
    return make_error(errc::operation_failed,
                      fmt::format("VM {} was not deleted: some of its resources could not be released: {}; fix "
                                  "that and run `banger vm delete {}` again",
                                  s.name, joined(leftovers), s.name));
  auto deleted = record({journal::vm_deleted{}});
  if (!deleted)
    return deleted.err();
  host.remove_dirs(*deleted);
  report("delete", since(t0));
  return deleted;
}

} // namespace banger::actors
