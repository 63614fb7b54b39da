// Structural verification of a journal, for `banger-replay verify`: every value decodes,
// sequence numbers run 1..N with no gap, each stream's versions run 1..M with no gap, and the
// streams index agrees with the events. Read-only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace banger::journal {
class journal;
}

namespace banger::replay {

struct verify_report {
  std::uint64_t events = 0;
  std::uint64_t streams = 0;
  std::uint64_t unknown_kinds = 0;   ///< events of kinds this build does not know (not a fault)
  std::vector<std::string> problems; ///< one line each, naming the seq / stream at fault
  bool ok() const { return problems.empty(); }
};

/// Checks everything; collects at most `max_problems` problems.
expected<verify_report> verify(const journal::journal& j, std::size_t max_problems = 100);

} // namespace banger::replay
