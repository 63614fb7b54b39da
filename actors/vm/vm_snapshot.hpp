// A VM's snapshot: vm_state encoded for the journal's `snapshots` column family, so that
// journal::fold_stream (which finds these two functions by argument-dependent lookup) folds only
// the events after it. Pure functions on values; any thread.
//
// A snapshot is a cache: decoding refuses (nullopt) anything it cannot vouch for, and the caller
// then folds the whole stream. The format is drawn in vm_snapshot.cpp; vm_snapshot_format is
// bumped whenever the encoding or the meaning of apply() changes, because a snapshot is only
// worth as much as the apply() that folded it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "actors/vm/vm.hpp"

namespace banger::actors {

/// The one format this build writes and reads; a snapshot in any other is ignored.
inline constexpr std::uint8_t vm_snapshot_format = 5;

// snapshot_encode() and snapshot_decode() are declared in vm.hpp, beside vm_state, so every
// translation unit that folds a vm_state sees them (one fold_stream<vm_state> everywhere).

} // namespace banger::actors
