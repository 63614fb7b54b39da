# The daemon <-> guest-agent interface (DESIGN §5): two-party RPC over the virtio-serial port
# org.banger.agent.0 (QEMU) or vsock port 52 (Firecracker). The daemon is the client; the
# guest's banger-agent serves `Agent` as its bootstrap capability. Domain failures are values
# (`Failure`, code numbered as banger::errc); exceptions mean logistics (disconnect, bug).
@0xcd08eac1516521f6;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("banger::agent_rpc");

struct Failure {
  code @0 :UInt8;       # a banger::errc number (common/error.hpp's table); 0 = none
  message @1 :Text;
}

struct ExecSpec {
  argv @0 :List(Text);  # argv[0] is looked up in PATH
  env @1 :List(Text);   # "KEY=VALUE", added to PATH, HOME=/root, TERM
  cwd @2 :Text;         # default /root
  tty @3 :Bool;         # run on a pty: stdout carries both streams, stdin is the terminal
  rows @4 :UInt16;
  cols @5 :UInt16;
  stdin @6 :Bool;       # the caller will send stdin; otherwise stdin is /dev/null
  workspace @7 :Text;   # the VM's workspace, when the command runs in it: a guest with mise runs it
                        # through `mise exec --`, the workspace trusted first (once per landing)
}

# Implemented by the caller: receives a process's output, in order.
interface ByteSink {
  write @0 (data :Data) -> stream;
  close @1 () -> ();
}

struct ExitStatus {
  union {
    exited @0 :Int32;   # exit code
    signaled @1 :Int32; # the signal that killed it
  }
}

# A process started by exec. Dropping the capability kills the process (SIGKILL) if it runs.
interface Process {
  writeStdin @0 (data :Data) -> stream;
  closeStdin @1 () -> ();
  signal @2 (signo :Int32) -> ();
  resize @3 (rows :UInt16, cols :UInt16) -> ();
  # Resolves once the process has exited and all its output has been written to the sinks.
  wait @4 () -> (status :ExitStatus);
}

struct Port {
  protocol @0 :Text;    # "tcp", "tcp6", "udp" or "udp6" (TCP: listening; UDP: bound, not connected)
  address @1 :Text;     # the listening address, e.g. "0.0.0.0", "::"
  port @2 :UInt16;
  process @3 :Text;     # "pid/comm" of the owner when it can be found, else empty
}

struct Stats {
  uptimeMs @0 :UInt64;
  cpuCount @1 :UInt32;
  cpuBusyMs @2 :UInt64;       # user+nice+system+irq+softirq+steal since boot, all CPUs
  cpuIdleMs @3 :UInt64;       # idle+iowait since boot
  load1 @4 :Float32;
  memTotalBytes @5 :UInt64;
  memAvailableBytes @6 :UInt64;
  rootTotalBytes @7 :UInt64;  # filesystem of /
  rootFreeBytes @8 :UInt64;
  workTotalBytes @9 :UInt64;  # filesystem of /root (the work disk)
  workFreeBytes @10 :UInt64;
}

# A workspace landed by the agent (docs/workspaces.md, "Into a running VM"): one piece of its
# stream (workspace/stream.hpp), an entry or the next bytes of the file last announced.
struct WorkspacePiece {
  union {
    entry :group {
      git @0 :Bool;       # a file of the workspace's repository, path relative to .git/
      path @1 :Data;      # relative to the workspace; bytes
      symlink @2 :Bool;   # else a regular file, whose `size` bytes follow as data pieces
      mode @3 :UInt32;
      size @4 :UInt64;
      mtime @5 :Int64;    # seconds
      target @6 :Data;    # symlinks
    }
    data @7 :Data;
  }
}

# What git's index holds of a landed file: its stat data as the guest's kernel reports it.
struct LandedStat {
  ctimeS @0 :UInt32;
  ctimeNs @1 :UInt32;
  mtimeS @2 :UInt32;
  mtimeNs @3 :UInt32;
  dev @4 :UInt32;
  ino @5 :UInt32;
  mode @6 :UInt32;      # st_mode
  uid @7 :UInt32;
  gid @8 :UInt32;
  size @9 :UInt32;
}

# A landing in progress, in a staging directory beside the guest path. Dropped before commit
# (the daemon went away, or gave up): the staging directory is removed and the previous
# workspace stays.
interface WorkspaceLanding {
  # The next pieces, in stream order. A failure ends the landing (later calls fail too).
  push @0 (pieces :List(WorkspacePiece)) -> (failure :Failure);
  # Every piece came: the stat data of each shipped (not .git) entry, in stream order.
  seal @1 () -> (failure :Failure, stats :List(LandedStat));
  # Writes `index` as .git/index and swaps the staging tree in (renameat2 RENAME_EXCHANGE when
  # a workspace is there, whose tree is then removed); synced before it answers.
  commit @2 (index :Data) -> (failure :Failure);
}

interface Agent {
  ping @0 () -> (version :Text, uptimeMs :UInt64, hostname :Text);
  exec @1 (spec :ExecSpec, stdout :ByteSink, stderr :ByteSink) -> (failure :Failure, process :Process);
  # Creates or replaces `path` (written to a temporary name, then renamed) with mode/uid/gid.
  writeFile @2 (path :Text, data :Data, mode :UInt32, uid :UInt32, gid :UInt32, makeParents :Bool)
      -> (failure :Failure);
  readFile @3 (path :Text, maxBytes :UInt64)
      -> (failure :Failure, data :Data, mode :UInt32, uid :UInt32, gid :UInt32);
  ports @4 () -> (failure :Failure, ports :List(Port));
  stats @5 () -> (failure :Failure, stats :Stats);
  # Syncs filesystems and asks PID 1 to power the guest off. Returns before the power goes.
  poweroff @6 () -> (failure :Failure);
  # A guest restored from a boot snapshot (docs/boot-snapshots.md) waits in banger-init for
  # what a cold boot reads from its kernel command line. `settings` is in that syntax
  # ("banger.hostname=NAME banger.ip=... banger.mac=..."); `realtimeNs` (0: leave it) sets the
  # wall clock, which stopped when the snapshot was taken; `entropy` (up to 512 bytes) is mixed
  # into the kernel's random pool and the pool reseeded, so no two restored guests share a
  # random stream. Once per boot: already_exists after that; unavailable when the guest booted
  # with its settings (its init is not waiting for any).
  configure @7 (settings :Text, realtimeNs :Int64, entropy :Data) -> (failure :Failure);
  # Starts landing a workspace at `guestPath` (below /root) of `bytes` in `files` entries
  # (announced: checked against the free space and inodes before anything is written).
  landWorkspace @8 (guestPath :Text, bytes :UInt64, files :UInt64)
      -> (failure :Failure, landing :WorkspaceLanding);
  # Lets go of the work disk so that the host can write it (a workspace landed in-process, as
  # into a stopped VM): synced and unmounted from /root, refused (unavailable) while anything
  # in the guest uses /root. Until attachWorkDisk, an empty read-only tmpfs holds /root, so
  # nothing written there in between is lost unseen.
  releaseWorkDisk @9 () -> (failure :Failure);
  # Mounts the work disk on /root again, after dropping whatever the guest cached of the
  # device. Nothing to do when it is mounted.
  attachWorkDisk @10 () -> (failure :Failure);
}
