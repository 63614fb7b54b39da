// Verification of a journal, for `banger-replay verify`. Structure: every value decodes,
// sequence numbers run 1..N with no gap, each stream's versions run 1..M with no gap, and the
// streams index agrees with the events. Then every VM stream ("vm/<name>"): each event is legal
// in its phase and the resource invariants hold (actors::vm_grammar_violation), and each recorded command
// re-decides as recorded (rerun.hpp). Read-only.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "journal/events.hpp"

namespace banger::journal {
class journal;
}

namespace banger::replay {

struct verify_report {
  std::uint64_t events = 0;
  std::uint64_t streams = 0;
  std::uint64_t unknown_kinds = 0;   ///< events of kinds this build does not know (not a fault)
  std::uint64_t vm_streams = 0;      ///< VM streams audited
  std::uint64_t commands = 0;        ///< recorded commands re-decided in them
  std::vector<std::string> problems; ///< one line each, naming the seq / stream at fault
  bool ok() const { return problems.empty(); }
};

/// Checks everything; collects at most `max_problems` problems.
expected<verify_report> verify(const journal::journal& j, std::size_t max_problems = 100);

/// A VM stream's problems beyond structure, one line each naming stream and seq: every event
/// illegal in its phase or breaking a resource invariant (the fold goes on past each), then the
/// first recorded command whose decision differs. Journals from before vm_command have no
/// command records: only the grammar applies. Adds the commands re-decided to `*commands`.
std::vector<std::string> audit_vm_stream(std::string_view stream, const std::vector<journal::stored_event>& events,
                                         std::uint64_t* commands = nullptr);

} // namespace banger::replay
