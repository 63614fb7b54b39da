// `banger-replay history VM` and `state VM`: a VM stream as a timeline (each event with the time
// since the one before it) with the durations of its stages, and the state folded at any point.
// Pure functions over events already read; main.cpp prints them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "actors/vm/vm.hpp"
#include "journal/events.hpp"

namespace banger::replay {

/// A span of a VM's life between two events of its stream.
///   start     vm_starting -> vm_running ("running") | vm_start_failed ("failed at STAGE")
///   stop      vm_stopping -> vm_stopped (its reason)
///   delete    vm_deleting -> vm_deleted ("deleted")
///   acquire   resource_intended -> resource_acquired ("acquired") | resource_released ("released unmade")
///   hold      resource_acquired -> resource_released ("released")
/// A span the stream does not close yet ends at its last event with outcome "open".
struct stage_span {
  std::string stage;    ///< start, stop, delete, acquire, hold
  std::string resource; ///< acquire, hold: "KIND ID"
  std::string op_id;    ///< of the event that opened it
  std::uint64_t from_seq = 0, to_seq = 0;
  std::int64_t from_ns = 0, to_ns = 0;
  std::string outcome;
  double seconds() const { return static_cast<double>(to_ns - from_ns) / 1e9; }
};

/// Spans in the order they open.
std::vector<stage_span> stages_of(const std::vector<journal::stored_event>& events);

/// "+1.234s" (the gap between two wall times; "+0.000s" for the first event).
std::string delta_text(std::int64_t ns);

/// The state as JSON text (one line) and as lines for people.
std::string state_json(const actors::vm_state& s);
std::string state_text(const actors::vm_state& s);

} // namespace banger::replay
