// See history.hpp. Pure.
#include "tools/replay/history.hpp"

#include <algorithm>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "journal/render.hpp"

namespace banger::replay {

namespace {

struct open_resource {
  std::string kind, id;
  std::size_t acquire = SIZE_MAX, hold = SIZE_MAX; ///< index into the spans
};

} // namespace

std::string delta_text(std::int64_t ns) { return fmt::format("+{:.3f}s", static_cast<double>(ns) / 1e9); }

std::vector<stage_span> stages_of(const std::vector<journal::stored_event>& events) {
  std::vector<stage_span> out;
  std::size_t start = SIZE_MAX, stop = SIZE_MAX, del = SIZE_MAX;
  std::vector<open_resource> resources;
  auto open = [&](std::string stage, std::string resource, const journal::stored_event& e) {
    out.push_back(
      {std::move(stage), std::move(resource), e.op_id, e.seq, e.seq, e.wall_time_ns, e.wall_time_ns, "open"});
    return out.size() - 1;
  };
  auto close = [&](std::size_t& span, const journal::stored_event& e, std::string outcome) {
    if (span == SIZE_MAX)
      return;
    out[span].to_seq = e.seq;
    out[span].to_ns = e.wall_time_ns;
    out[span].outcome = std::move(outcome);
    span = SIZE_MAX;
  };
  for (const auto& e : events) {
    using namespace journal;
    if (std::holds_alternative<vm_starting>(e.body)) {
      start = open("start", {}, e);
    } else if (const auto* r = std::get_if<vm_running>(&e.body)) {
      (void)r;
      close(start, e, "running");
    } else if (const auto* f = std::get_if<vm_start_failed>(&e.body)) {
      close(start, e, "failed at " + f->stage);
    } else if (std::holds_alternative<vm_stopping>(e.body)) {
      stop = open("stop", {}, e);
    } else if (const auto* st = std::get_if<vm_stopped>(&e.body)) {
      close(stop, e, st->reason);
    } else if (std::holds_alternative<vm_deleting>(e.body)) {
      del = open("delete", {}, e);
    } else if (std::holds_alternative<vm_deleted>(e.body)) {
      close(del, e, "deleted");
    } else if (const auto* ri = std::get_if<resource_intended>(&e.body)) {
      open_resource o{ri->resource, ri->id};
      o.acquire = open("acquire", fmt::format("{} {}", ri->resource, ri->id.empty() ? "-" : ri->id), e);
      resources.push_back(std::move(o));
    } else if (const auto* ra = std::get_if<resource_acquired>(&e.body)) {
      auto it = std::find_if(resources.begin(), resources.end(), [&](const open_resource& o) {
        return o.kind == ra->resource && o.acquire != SIZE_MAX && (o.id == ra->id || o.id.empty());
      });
      if (it == resources.end()) {
        resources.push_back({ra->resource, ra->id});
        it = resources.end() - 1;
      } else {
        it->id = ra->id;
        out[it->acquire].resource = fmt::format("{} {}", ra->resource, ra->id);
        close(it->acquire, e, "acquired");
      }
      it->hold = open("hold", fmt::format("{} {}", ra->resource, ra->id), e);
    } else if (const auto* rr = std::get_if<resource_released>(&e.body)) {
      auto it = std::find_if(resources.begin(), resources.end(),
                             [&](const open_resource& o) { return o.kind == rr->resource && o.id == rr->id; });
      if (it != resources.end()) {
        close(it->hold, e, "released");
        close(it->acquire, e, "released unmade");
        resources.erase(it);
      }
    }
  }
  if (!events.empty())
    for (auto& s : out)
      if (s.outcome == "open") {
        s.to_seq = events.back().seq;
        s.to_ns = events.back().wall_time_ns;
      }
  return out;
}

std::string state_json(const actors::vm_state& s) {
  nlohmann::ordered_json res = nlohmann::ordered_json::array();
  for (const auto& r : s.resources)
    res.push_back(
      {{"kind", std::string(actors::to_string(r.kind))}, {"id", r.id}, {"detail", r.detail}, {"acquired", r.acquired}});
  nlohmann::ordered_json j = {{"name", s.name},
                              {"stream_version", s.stream_version},
                              {"phase", std::string(actors::to_string(s.phase))},
                              {"since", s.since_ns ? journal::format_time(s.since_ns) : ""},
                              {"id", s.id},
                              {"image", s.image},
                              {"image_version", s.image_version},
                              {"kernel", s.kernel},
                              {"kernel_version", s.kernel_version},
                              {"vcpus", s.vcpus},
                              {"memory_mib", s.memory_mib},
                              {"disk_mib", s.disk_mib},
                              {"created", s.created_ns ? journal::format_time(s.created_ns) : ""},
                              {"boot_ms", s.boot_ms},
                              {"last_error", s.last_error},
                              {"resources", res}};
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string state_text(const actors::vm_state& s) {
  std::string out = fmt::format("VM {}  (stream vm/{} at version {})\n", s.name, s.name, s.stream_version);
  out += fmt::format("  phase       {}{}\n", actors::to_string(s.phase),
                     s.since_ns ? " since " + journal::format_time(s.since_ns) : "");
  if (s.phase == actors::vm_phase::absent)
    return out;
  out += fmt::format("  id          {}\n", s.id);
  out += fmt::format("  image       {} ({})\n", s.image, s.image_version);
  out += fmt::format("  kernel      {} ({})\n", s.kernel, s.kernel_version);
  out += fmt::format("  shape       {} vCPU, {} MiB memory, {} MiB disk\n", s.vcpus, s.memory_mib, s.disk_mib);
  if (s.boot_ms)
    out += fmt::format("  last boot   {} ms\n", s.boot_ms);
  if (!s.last_error.empty())
    out += fmt::format("  last error  {}\n", s.last_error);
  if (s.resources.empty())
    out += "  resources   none\n";
  else
    out += "  resources\n";
  for (const auto& r : s.resources)
    out += fmt::format("    {:<10} {:<9} {}{}\n", actors::to_string(r.kind), r.acquired ? "acquired" : "intended",
                       r.id.empty() ? "-" : r.id, r.detail.empty() ? "" : "  (" + r.detail + ")");
  return out;
}

} // namespace banger::replay
