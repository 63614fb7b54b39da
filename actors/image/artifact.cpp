// See artifact.hpp.
#include "actors/image/artifact.hpp"

#include <fmt/core.h>

#include "common/text.hpp"

namespace banger::actors {

std::string_view to_string(artifact_kind k) { return k == artifact_kind::kernel ? "kernel" : "image"; }

std::string stream_of(artifact_kind k, std::string_view name) { return fmt::format("{}/{}", to_string(k), name); }

expected<void> validate_artifact_name(artifact_kind k, std::string_view name) {
  auto bad = [&](std::string_view why) {
    return make_error(
      errc::bad_request,
      fmt::format("invalid {} name \"{}\": {}; use 1-63 of a-z 0-9 - . _ starting with a letter or digit", to_string(k),
                  name, why));
  };
  if (name.empty() || name.size() > 63)
    return bad("length must be 1 to 63");
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (i == 0 && !alnum)
      return bad("must start with a letter or digit");
    if (!alnum && c != '-' && c != '.' && c != '_')
      return bad(fmt::format("character {} is not allowed", quoted(std::string_view(&c, 1))));
  }
  return {};
}

const artifact_version* artifact_state::current_version() const {
  for (const auto& v : versions)
    if (v.id == current)
      return &v;
  return nullptr;
}

artifact_state apply(artifact_state s, const journal::stored_event& e) {
  s.stream_version = e.version;
  if (const auto* st = std::get_if<journal::artifact_started>(&e.body)) {
    s.in_progress = st->source;
    s.stage.clear();
  } else if (const auto* sg = std::get_if<journal::artifact_stage>(&e.body)) {
    s.stage = sg->stage;
  } else if (const auto* r = std::get_if<journal::artifact_ready>(&e.body)) {
    artifact_version v{r->version_id, r->manifest_sha256,         r->bytes,
                       r->summary,    s.in_progress.value_or(""), e.wall_time_ns};
    std::erase_if(s.versions, [&](const artifact_version& x) { return x.id == v.id; });
    s.versions.push_back(std::move(v));
    s.current = r->version_id;
    s.in_progress.reset();
    s.stage.clear();
    s.last_failure.reset();
  } else if (const auto* f = std::get_if<journal::artifact_failed>(&e.body)) {
    s.in_progress.reset();
    s.stage.clear();
    s.last_failure = f->stage.empty() ? f->reason : f->stage + ": " + f->reason;
  } else if (std::holds_alternative<journal::artifact_removed>(e.body)) {
    s.versions.clear();
    s.current.clear();
  }
  return s;
}

expected<std::vector<journal::payload>> decide_start(const artifact_state& s, const std::string& source) {
  if (s.in_progress)
    return make_error(errc::conflict, fmt::format("a job ({}) is already running", *s.in_progress));
  return std::vector<journal::payload>{journal::artifact_started{source}};
}

expected<std::vector<journal::payload>> decide_remove(const artifact_state& s, artifact_kind k, std::string_view name,
                                                      std::uint32_t users) {
  if (s.in_progress)
    return make_error(errc::conflict, fmt::format("{} {} is being built ({}); wait for it to finish", to_string(k),
                                                  name, *s.in_progress));
  if (s.current.empty())
    return make_error(errc::not_found,
                      fmt::format("no {} named \"{}\"; see `banger {} list`", to_string(k), name, to_string(k)));
  if (users > 0)
    return make_error(errc::conflict,
                      fmt::format("{} {} is used by {} VM(s); delete them first", to_string(k), name, users));
  return std::vector<journal::payload>{journal::artifact_removed{s.current}};
}

} // namespace banger::actors
