# The CLI <-> daemon interface (DESIGN §5), served by bangerd on $RUNTIME/bangerd.sock.
# Domain failures are values: every method returns an `error` whose code is `none` on
# success. Cap'n Proto exceptions mean logistics only (disconnect, bug).
@0xbea899fa71cbade8;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("banger::rpc");


# Mirrors banger::errc (common/error.hpp); the numbers never change.
enum ErrorCode {
  none @0;
  notFound @1;
  alreadyExists @2;
  badRequest @3;
  notRunning @4;
  unauthorized @5;
  unavailable @6;
  conflict @7;
  operationFailed @8;
  internal @9;
}

struct Error {
  code @0 :ErrorCode;
  message @1 :Text;
  opId @2 :Text;
}

struct EntityCount {
  kind @0 :Text;
  count @1 :UInt32;
}

struct Status {
  version @0 :Text;
  pid @1 :Int64;
  uptimeMs @2 :UInt64;
  journalSeq @3 :UInt64;     # sequence number of the newest event
  entities @4 :List(EntityCount);
  stateDir @5 :Text;
  runtimeDir @6 :Text;
  logFile @7 :Text;
}

struct JournalEvent {
  seq @0 :UInt64;
  event @1 :Data;           # one journal Event (schema/events.capnp), encoded exactly as stored
}

struct EventFilter {
  streams @0 :List(Text);    # empty: every stream
  kinds @1 :List(Text);      # snake_case payload kinds, e.g. "daemon_started"; empty: every kind
}

# Implemented by the client. The daemon sends one push at a time and waits for it to
# return before the next (flow control).
interface EventSink {
  push @0 (events :List(JournalEvent)) -> ();
  # Called once the stream ends: after catch-up when not following, or when the daemon stops.
  end @1 (reason :Text) -> ();
}

# Dropping a Handle cancels what it stands for.
interface Handle {}

interface Daemon {
  ping @0 () -> (error :Error, opId :Text);
  version @1 () -> (error :Error, version :Text, journalSchema :UInt32);
  status @2 () -> (error :Error, status :Status);
  # Stops the daemon after replying.
  shutdown @3 () -> (error :Error);
  # Streams events with seq > `since` to `sink`. Without `follow` the sink sees end() once
  # the events present at the call are delivered; with it, live events follow with no gap.
  # Returns once catch-up has been delivered; drop `handle` to stop following.
  events @4 (since :UInt64, filter :EventFilter, follow :Bool, sink :EventSink)
      -> (error :Error, handle :Handle);
}
