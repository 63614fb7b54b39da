# Journal event and snapshot structs (DESIGN §3). This file defines an on-disk format:
# every value in the journal's `events` column family is one `Event` message, written
# unpacked as a flat array of words. Rules, because journals outlive binaries:
#   - fields and union members are only ever added, never renumbered or removed;
#   - a reader that meets a union member it does not know skips that event (see journal/codec.cpp);
#   - the journal schema version (journal::schema_version, journal/journal.hpp) is bumped only
#     when an old reader could misread new data, not when members are added.
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
    artifactStarted @7 :ArtifactStarted;
    artifactStage @8 :ArtifactStage;
    artifactReady @9 :ArtifactReady;
    artifactFailed @10 :ArtifactFailed;
    artifactRemoved @11 :ArtifactRemoved;
    vmCreated @12 :VmCreated;
    vmConfigured @13 :VmConfigured;
    vmStarting @14 :VmStarting;
    resourceIntended @15 :ResourceIntended;
    resourceAcquired @16 :ResourceAcquired;
    resourceReleased @17 :ResourceReleased;
    vmRunning @18 :VmRunning;
    vmStartFailed @19 :VmStartFailed;
    vmStopping @20 :VmStopping;
    vmStopped @21 :VmStopped;
    vmDeleted @22 :VmDeleted;
    vmCommand @23 :VmCommand;
    vmAdopted @24 :VmAdopted;
    vmDeleting @25 :VmDeleting;
    vmPaused @26 :VmPaused;
    vmResumed @27 :VmResumed;
    workspacePreparing @28 :WorkspacePreparing;
    workspacePrepared @29 :WorkspacePrepared;
    workspacePrepareFailed @30 :WorkspacePrepareFailed;
    workspaceDiskReleased @31 :WorkspaceDiskReleased;
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

# Kernels and images ("artifacts"), streams "kernel/<name>" and "image/<name>". A build, import
# or pull is: started, then stages, then ready (a new immutable version) or failed.
struct ArtifactStarted {
  source @0 :Text;       # "deb:/path", "apt:PACKAGE", "catalog:URL", "busybox", "debootstrap:SUITE", "dir:/path", ...
}

struct ArtifactStage {
  stage @0 :Text;        # "download", "extract", "convert", "initramfs", "rootfs", "inject", "install", ...
}

struct ArtifactReady {
  versionId @0 :Text;    # content id: first 16 hex of the manifest's sha256; the directory name
  manifestSha256 @1 :Text;
  bytes @2 :UInt64;      # total size of the version's files
  summary @3 :Text;      # e.g. "6.1.0-28-cloud-amd64 pvh-elf", "busybox 1.35.0, 64 MiB"
}

struct ArtifactFailed {
  stage @0 :Text;
  reason @1 :Text;
}

struct ArtifactRemoved {
  versionId @0 :Text;    # the version that was current; older versions go with it
}

# VMs, stream "vm/<name>". A VM's life reads (vmCommand records, below, interleave):
#   vmCreated (vmConfigured | start | stop | vmAdopted | vmPaused | vmResumed | workspace)* delete
#   start  = vmStarting (resourceIntended resourceAcquired?)* (vmRunning | vmStartFailed)
#   stop   = vmStopping resourceReleased* vmStopped          (from running or paused)
#   vmPaused only while running, vmResumed only while paused
#   workspace = workspacePreparing workspaceDiskReleased? (workspacePrepared | workspacePrepareFailed)
#               (while stopped, or running; workspaceDiskReleased only while running)
#   delete = vmDeleting resourceReleased* vmDeleted     (journals before vmDeleting: vmDeleted alone)
# Every host resource (overlay, work disk, IP lease, tap, NAT rule, VMM process, sockets) is
# journaled as intent before it is made and as fact once it exists, so recovery knows exactly
# what may exist after a crash; its release is journaled once it is gone.
struct VmCreated {
  id @0 :Text;            # 8 hex, fixed for the VM's life (its tap is "bgt" + id)
  image @1 :Text;
  imageVersion @2 :Text;  # the image version the VM's disks are made from
  kernel @3 :Text;
  kernelVersion @4 :Text;
  vcpus @5 :UInt32;
  memoryMib @6 :UInt32;
  diskMib @7 :UInt32;
}

struct VmConfigured {
  vcpus @0 :UInt32;
  memoryMib @1 :UInt32;
}

struct VmStarting {
  kernelVersion @0 :Text; # the kernel version this start boots
}

# kind: "overlay", "work_disk", "ip", "tap", "nat", "vmm", "sockets"; id: its path, address,
# interface name or pid; detail: what identifies it further (for "vmm": "<start_time> <cmdline sha256>").
struct ResourceIntended {
  kind @0 :Text;
  id @1 :Text;
}

struct ResourceAcquired {
  kind @0 :Text;
  id @1 :Text;
  detail @2 :Text;
}

struct ResourceReleased {
  kind @0 :Text;
  id @1 :Text;
}

struct VmRunning {
  bootMs @0 :UInt64;      # VMM launch to agent answering
}

struct VmStartFailed {
  stage @0 :Text;
  reason @1 :Text;
}

struct VmStopping {
  how @0 :Text;           # "stop", "kill", "delete"
}

struct VmStopped {
  reason @0 :Text;        # "stopped", "powered off", "killed", "vmm exited", "start failed", ...
}

struct VmDeleted {}

# A command the VM's actor took from its mailbox, in the order it took them: appended in the same
# batch as the events its decision produced (those follow it directly), or alone when refused.
# Refusals are recorded only for a VM that exists. banger-replay's `rerun` feeds these through
# the same pure decide() again and compares.
struct VmCommand {
  command @0 :Text;       # "create", "start", "stop", "kill", "delete", "delete_force", "configure",
                          # "reap" (the VMM went away), "reconcile" (daemon start-up)
  args @1 :Text;          # JSON object of the command's arguments ("{}" when none)
  refused @2 :Text;       # empty when accepted; else "<error code>: <message>"
}

# Reconciliation at daemon start found the VM's VMM alive with the journaled identity (pid,
# start time, command line) on the same boot: the VM stays running under the new daemon.
struct VmAdopted {
  pid @0 :Int64;
  bootId @1 :Text;
}

# A delete began: recovery finishes it if the daemon dies before vmDeleted.
struct VmDeleting {}

# `vm pause`: the VMM froze the guest's vCPUs (its memory, devices and host resources stay).
# Appended once the VMM is paused, after the pause command's record.
struct VmPaused {}

# `vm resume`: the paused guest runs again. Appended once the VMM runs it.
struct VmResumed {}

# Workspaces (docs/workspaces.md), on a stopped VM: preparing, then prepared or failed. While the
# last of them is Preparing, the work disk may hold a partial write (a daemon that died mid-way).
struct WorkspacePreparing {
  hostPath @0 :Text;      # the checkout's top on the host, as the CLI named it
  guestPath @1 :Text;     # below /root
}

struct WorkspacePrepared {
  hostPath @0 :Text;
  guestPath @1 :Text;
  head @2 :Text;          # the host's HEAD commit, the guest's too; empty before a first commit
  branch @3 :Text;        # empty when HEAD is detached
  digest @4 :Text;        # SHA-256 of what was shipped (workspace/stream.hpp)
  files @5 :UInt64;
  bytes @6 :UInt64;
  includeUntracked @7 :Bool;  # untracked files were shipped too
}

struct WorkspacePrepareFailed {
  reason @0 :Text;
}

# The running guest let go of its work disk (unmounted /root) and the workspace is written
# into the disk by the host, as into a stopped VM's; the guest mounts it again after the
# outcome. A restart that finds this without an outcome repairs the disk before the guest
# mounts it.
struct WorkspaceDiskReleased {}

# A per-stream snapshot (`snapshots` column family, key = stream id): the folded state of
# a stream up to and including `version`, encoded by the stream's owner.
struct Snapshot {
  version @0 :UInt64;
  state @1 :Data;
}
