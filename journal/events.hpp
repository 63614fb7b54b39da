// Journal event values: the C++ side of schema/events.capnp. Plain copyable values; the
// codec (codec.hpp) is the only code that maps them to and from their on-disk encoding.
// Adding an event kind: add a struct here, a member to the payload variant, a union member in
// schema/events.capnp, and a case in codec.cpp and render.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

namespace banger::journal {

struct daemon_started {
  std::string version;
  std::int64_t pid = 0;
  std::string boot_id;
};

struct daemon_stopped {
  std::string reason;
};

/// A free-form annotation (tools and tests mark points in a journal with it).
struct note {
  std::string text;
};

/// A payload kind this build does not know, written by a newer banger. Readers skip it;
/// `discriminant` is the capnp union tag, kept for diagnostics.
struct unknown_event {
  std::uint16_t discriminant = 0;
};

using payload = std::variant<unknown_event, daemon_started, daemon_stopped, note>;

/// snake_case kind name: "daemon_started", ..., "unknown".
std::string_view kind_of(const payload& p);

/// What an appender supplies; the journal adds stream, version, time and sequence.
struct event {
  std::string op_id;
  payload body;
};

/// An event as stored: `seq` is global (1-based, gapless), `version` is its 1-based position
/// in `stream`.
struct stored_event {
  std::uint64_t seq = 0;
  std::string stream;
  std::uint64_t version = 0;
  std::int64_t wall_time_ns = 0;
  std::string op_id;
  payload body;
};

} // namespace banger::journal
