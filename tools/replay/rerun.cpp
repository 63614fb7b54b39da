// See rerun.hpp. Pure.
#include "tools/replay/rerun.hpp"

#include <fmt/core.h>

#include "actors/vm/vm.hpp"
#include "common/text.hpp"
#include "journal/render.hpp"

namespace banger::replay {

namespace {

std::string value_text(const journal::field_value& v) {
  return std::visit(
    [](const auto& x) -> std::string {
      if constexpr (std::is_same_v<std::decay_t<decltype(x)>, std::string>)
        return quoted(x, 400);
      else
        return std::to_string(x);
    },
    v);
}

/// Kinds only a command's decision produces; outside one they mean the recording was altered.
bool decided_only(const journal::payload& p) {
  return std::holds_alternative<journal::vm_created>(p) || std::holds_alternative<journal::vm_configured>(p) ||
         std::holds_alternative<journal::vm_starting>(p);
}

/// Whether `recorded` is `expected` with every occurrence of `name` replaced by one other valid
/// VM name: the refusal of a stream imported under another name (import --as), whose recorded
/// messages name the VM as it was called where it was recorded.
bool same_but_name(const std::string& expected, const std::string& recorded, const std::string& name) {
  if (name.empty())
    return false;
  std::vector<std::string> parts;
  std::size_t from = 0, at = 0, fixed = 0;
  while ((at = expected.find(name, from)) != std::string::npos) {
    parts.push_back(expected.substr(from, at - from));
    fixed += at - from;
    from = at + name.size();
  }
  parts.push_back(expected.substr(from));
  fixed += expected.size() - from;
  const std::size_t n = parts.size() - 1;
  if (n == 0 || recorded.size() < fixed || (recorded.size() - fixed) % n != 0)
    return false;
  auto other = recorded.substr(parts[0].size(), (recorded.size() - fixed) / n);
  if (!actors::validate_vm_name(other))
    return false;
  std::string rebuilt = parts[0];
  for (std::size_t i = 1; i < parts.size(); ++i)
    rebuilt += other + parts[i];
  return rebuilt == recorded;
}

} // namespace

std::string payload_text(const journal::payload& p) {
  std::string out(journal::kind_of(p));
  for (const auto& f : journal::fields_of(p))
    out += fmt::format(" {}={}", f.name, value_text(f.value));
  return out;
}

std::string payload_difference(const journal::payload& a, const journal::payload& b) {
  if (a.index() != b.index())
    return fmt::format("kind: {} vs {}", journal::kind_of(a), journal::kind_of(b));
  auto fa = journal::fields_of(a), fb = journal::fields_of(b);
  for (std::size_t i = 0; i < fa.size() && i < fb.size(); ++i)
    if (fa[i].value != fb[i].value)
      return fmt::format("field {}: {} vs {}", fa[i].name, value_text(fa[i].value), value_text(fb[i].value));
  return {};
}

rerun_report rerun(std::string_view stream, const std::vector<journal::stored_event>& events) {
  rerun_report rep;
  actors::vm_state s;
  if (stream.rfind("vm/", 0) == 0)
    s.name = std::string(stream.substr(3));
  bool commands_seen = false;
  auto diverge = [&](std::size_t i, std::string expected, bool grammar = false) {
    divergence d;
    d.index = i;
    if (i < events.size()) {
      d.seq = events[i].seq;
      d.version = events[i].version;
      d.recorded = journal::to_text_line(events[i]);
    } else {
      d.recorded = "(end of the recording)";
    }
    d.expected = std::move(expected);
    d.grammar = grammar;
    rep.diverged = std::move(d);
  };
  auto version_ok = [&](std::size_t i) {
    if (events[i].stream == stream && events[i].version == s.stream_version + 1)
      return true;
    diverge(i, fmt::format("event {}@{} where {}@{} comes next", events[i].stream, events[i].version, stream,
                           s.stream_version + 1));
    return false;
  };

  for (std::size_t i = 0; i < events.size(); ++i) {
    const auto& e = events[i];
    if (!version_ok(i))
      return rep;
    const auto* cmd = std::get_if<journal::vm_command>(&e.body);
    if (!cmd) {
      if (commands_seen && decided_only(e.body)) {
        diverge(
          i, fmt::format("{} outside a command's decision: no recorded command decided it", journal::kind_of(e.body)));
        return rep;
      }
      if (auto why = actors::vm_grammar_violation(s, e, commands_seen); !why.empty()) {
        diverge(i, why, true);
        return rep;
      }
      s = actors::apply(std::move(s), e);
      ++rep.effects;
      continue;
    }

    // A recorded command: re-decide it on the state folded so far.
    if (auto why = actors::vm_grammar_violation(s, e, true); !why.empty()) {
      diverge(i, why, true);
      return rep;
    }
    commands_seen = true;
    ++rep.commands;
    auto d = actors::decide(s, *cmd);
    if (!cmd->refused.empty()) {
      if (d) {
        std::string made;
        for (const auto& p : *d)
          made += (made.empty() ? "" : ", ") + payload_text(p);
        diverge(i, fmt::format("decide accepts {} on a VM that is {}{}{}", cmd->command, actors::to_string(s.phase),
                               made.empty() ? "" : ", producing ", made));
        return rep;
      }
      if (auto text = actors::refusal_text(d.err());
          text != cmd->refused && !same_but_name(text, cmd->refused, s.name)) {
        diverge(i, fmt::format("decide refuses {} differently: {}", cmd->command, quoted(text, 400)));
        return rep;
      }
      s = actors::apply(std::move(s), e);
      continue;
    }
    if (!d) {
      diverge(i, fmt::format("decide refuses {} on a VM that is {}: {}", cmd->command, actors::to_string(s.phase),
                             quoted(actors::refusal_text(d.err()), 400)));
      return rep;
    }
    s = actors::apply(std::move(s), e);
    for (std::size_t k = 0; k < d->size(); ++k) {
      std::size_t at = i + 1 + k;
      const auto& want = (*d)[k];
      if (at >= events.size()) {
        diverge(at, fmt::format("decide of {} produces {} event(s); event {} would be {}", cmd->command, d->size(),
                                k + 1, payload_text(want)));
        return rep;
      }
      if (!version_ok(at))
        return rep;
      if (auto diff = payload_difference(events[at].body, want); !diff.empty()) {
        diverge(at, fmt::format("decide of {} (event {} of {}) produces {} (recorded vs decided {})", cmd->command,
                                k + 1, d->size(), payload_text(want), diff));
        return rep;
      }
      s = actors::apply(std::move(s), events[at]);
      ++rep.redecided;
    }
    i += d->size();
  }
  return rep;
}

} // namespace banger::replay
