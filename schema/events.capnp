# Journal event and snapshot structs (DESIGN §3). This file defines an on-disk format:
# every value in the journal's `events` column family is one `Event` message, written
# unpacked as a flat array of words. Rules, because journals outlive binaries:
#   - fields and union members are only ever added, never renumbered or removed;
#   - a reader that meets a union member it does not know skips that event (see journal/codec.cpp);
#   - Journal schema version (journal/journal.hpp, kSchemaVersion) is bumped only when an old
#     reader could misread new data, not when members are added.
#
#   Event
#   +--------+---------+------------+------+-----------------------------+
#   | stream | version | wallTimeNs | opId | payload (union, one member) |
#   +--------+---------+------------+------+-----------------------------+
#   stream:  entity id, e.g. "daemon", "vm/web-1"; version: 1-based position in that stream.
@0xe203751bdf15d3f3;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("banger::schema");

struct Event {
  stream @0 :Text;
  version @1 :UInt64;
  wallTimeNs @2 :Int64;   # CLOCK_REALTIME at append, nanoseconds since the Unix epoch
  opId @3 :Text;          # "op-" + 6 hex of the request that caused it; empty for internal events

  payload :union {
    daemonStarted @4 :DaemonStarted;
    daemonStopped @5 :DaemonStopped;
    note @6 :Note;
  }
}

struct DaemonStarted {
  version @0 :Text;     # banger version string
  pid @1 :Int64;
  bootId @2 :Text;      # /proc/sys/kernel/random/boot_id at start
}

struct DaemonStopped {
  reason @0 :Text;      # "sigterm", "shutdown rpc", ...
}

# A free-form annotation: tooling and tests use it to mark points in a journal.
struct Note {
  text @0 :Text;
}

# A per-stream snapshot (`snapshots` column family, key = stream id): the folded state of
# a stream up to and including `version`, encoded by the stream's owner.
struct Snapshot {
  version @0 :UInt64;
  state @1 :Data;
}
