// Encoding of journal events (schema/events.capnp `Event`, unpacked flat words) and snapshots.
// No RocksDB here: the CLI links this to decode events it receives over RPC.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "journal/events.hpp"

namespace banger::journal {

/// Encodes everything but `seq` (the key carries it).
std::string encode(const stored_event& e);

/// Decodes one value. A union member this build does not know yields `unknown_event`; bytes
/// that are not a valid message yield an error naming `seq`.
expected<stored_event> decode(std::uint64_t seq, std::string_view bytes);

struct snapshot {
  std::uint64_t version = 0; ///< last stream version folded into `state`
  std::string state;         ///< opaque, encoded by the stream's owner
};

std::string encode_snapshot(const snapshot& s);
expected<snapshot> decode_snapshot(std::string_view bytes);

} // namespace banger::journal
