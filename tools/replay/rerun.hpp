// `banger-replay rerun`: a recorded VM stream fed through the VM's pure core again. The state
// starts empty (named after the stream); each vm_command is re-decided with actors::decide() on
// the state folded so far and must come out as recorded (the same refusal text, or exactly the
// events that follow it); every other event is an effect result, which must be legal in its
// phase (actors::vm_grammar_violation) and is applied. The first disagreement is the divergence. (A refusal that
// differs only in the VM's name is the same refusal: a stream imported --as another name.) Pure: a recording
// of racing commands re-runs the same way every time, with no actor and no host.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "journal/events.hpp"

namespace banger::replay {

struct divergence {
  std::size_t index = 0;     ///< 0-based position in the events re-run
  std::uint64_t seq = 0;     ///< the recorded event's seq (0: past the end of the recording)
  std::uint64_t version = 0; ///< its stream version (0: past the end)
  std::string recorded;      ///< the recorded event as a text line, or "(end of the recording)"
  std::string expected;      ///< what decide()/the grammar says instead
  bool grammar = false;      ///< an effect illegal in its phase (not a decision that differs)
};

struct rerun_report {
  std::uint64_t commands = 0;  ///< vm_command records re-decided (accepted and refused)
  std::uint64_t redecided = 0; ///< events decide() produced and the recording matched
  std::uint64_t effects = 0;   ///< other events, checked against the grammar and applied
  std::optional<divergence> diverged;
  bool identical() const { return !diverged; }
};

/// Re-runs `events`, the stream `stream` ("vm/<name>") in version order from version 1.
rerun_report rerun(std::string_view stream, const std::vector<journal::stored_event>& events);

/// "" when `a` and `b` are the same kind with equal fields; else what differs, e.g.
/// `field how: "stop" vs "kill"`.
std::string payload_difference(const journal::payload& a, const journal::payload& b);

/// `p` as "kind key=value ...", for messages.
std::string payload_text(const journal::payload& p);

} // namespace banger::replay
