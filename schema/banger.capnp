# The CLI <-> daemon interface (DESIGN §5), served by bangerd on $RUNTIME/bangerd.sock.
# Domain failures are values: every method returns an `error` whose code is `none` on
# success. Cap'n Proto exceptions mean logistics only (disconnect, bug).
@0xbea899fa71cbade8;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("banger::rpc");
using Agent = import "agent.capnp";


struct Error {
  code @0 :UInt16;        # a banger::errc number (common/error.hpp's table); 0 (none): success
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

# Implemented by the client: progress of a long operation (stage names, bytes).
interface Progress {
  update @0 (stage :Text, done :UInt64, total :UInt64) -> stream;
}

enum ArtifactKind {
  kernel @0;
  image @1;
}

# Where a kernel or image comes from. Paths are absolute paths on the daemon's host, read by
# the daemon (which runs as the same user in dev mode).
struct ArtifactSource {
  union {
    deb @0 :Text;          # kernel: a Debian linux-image .deb
    apt @1 :Text;          # kernel: a package `apt-get download` fetches (metapackages resolved)
    vmlinux :group {       # kernel: a vmlinux or bzImage, with an initramfs or modules to build one
      path @2 :Text;
      initrd @3 :Text;
      modules @4 :Text;
    }
    busybox @5 :Void;      # image: busybox-static, seconds
    debootstrap :group {   # image: Debian minbase + packages
      suite @6 :Text;
      packages @7 :List(Text);
    }
    dir @8 :Text;          # image: a directory tree
    tar @9 :Text;          # image: a tar file (plain, gzip, xz, zstd)
    catalog @10 :Text;     # kernel: the catalog URL to pull the bundle named like the kernel from
    registry :group {      # image: pulled from an OCI registry
      reference @11 :Text;   # [REGISTRY/]REPOSITORY[:TAG][@sha256:DIGEST]
      platform @12 :Text;    # "os/arch[/variant]"; empty: the host's
      plainHttp @13 :Bool;   # the registry was named insecure: http://, no TLS
      username @14 :Text;    # credentials the CLI read (docker config.json or the command line);
      password @15 :Text;    # used for this pull only, never journaled
    }
  }
}

struct ArtifactVersion {
  id @0 :Text;
  manifestSha256 @1 :Text;
  bytes @2 :UInt64;
  summary @3 :Text;
  source @4 :Text;
  createdNs @5 :Int64;
}

struct ArtifactInfo {
  kind @0 :ArtifactKind;
  name @1 :Text;
  current @2 :Text;                     # current version id; empty: none
  versions @3 :List(ArtifactVersion);   # oldest first
  building @4 :Text;                    # source of a job in progress; empty: none
  stage @5 :Text;
  lastFailure @6 :Text;
  path @7 :Text;                        # directory of the current version
}

# A VM as `vm list` / `vm show` print it.
struct VmInfo {
  name @0 :Text;
  id @1 :Text;            # 8 hex, fixed at create; names the VM's tap
  state @2 :Text;         # "stopped", "starting", "running", "stopping", "deleted"
  image @3 :Text;         # image name and the version the VM was made from
  imageVersion @4 :Text;
  kernel @5 :Text;
  kernelVersion @6 :Text;
  vcpus @7 :UInt32;
  memoryMib @8 :UInt32;
  diskMib @9 :UInt32;
  ip @10 :Text;           # leased address, empty when none
  createdNs @11 :Int64;
  stateSinceNs @12 :Int64;
  lastError @13 :Text;    # why the last start failed or the VM stopped unexpectedly
  pid @14 :Int64;         # VMM pid while running, else 0
  consoleLog @15 :Text;   # serial console file
  resources @16 :List(Text);  # "kind:id" of every resource the journal says is held
  workspace @17 :WorkspaceInfo;  # guestPath empty: none
}

# The workspace a VM holds, as the journal has it (workspace_prepared).
struct WorkspaceInfo {
  hostPath @0 :Text;
  guestPath @1 :Text;
  head @2 :Text;
  branch @3 :Text;
  digest @4 :Text;
  files @5 :UInt64;
  bytes @6 :UInt64;
  preparedNs @7 :Int64;
  pending @8 :Bool;       # a preparation is on record without its outcome
  includeUntracked @9 :Bool;
}

struct VmCreateSpec {
  name @0 :Text;          # empty: the daemon generates one
  image @1 :Text;         # empty: "default"
  kernel @2 :Text;        # empty: "default"
  vcpus @3 :UInt32;       # 0: 1
  memoryMib @4 :UInt32;   # 0: 512
  diskMib @5 :UInt32;     # 0: 2048 (work disk at /root)
}

# A command for one VM: the members are the commands of actors/vm/commands.hpp, by name (their
# recorded names in camelCase; a member's fields are the command's). The daemon maps a member to
# its command generically, so adding one here and there is all the wire needs.
struct VmCommand {
  union {
    start @0 :Void;
    stop @1 :Void;          # agent sync+poweroff, then QMP powerdown, then quit, then SIGKILL
    kill @2 :Void;          # SIGKILL
    delete @3 :Void;        # a stopped VM: its disks, sockets, tap, NAT rule and IP lease go
    deleteForce @4 :Void;   # the same, stopping it first (SIGKILL) when it runs
    configure @5 :VmConfigure;
    pause @6 :Void;         # freezes a running VM (QMP stop); its memory and resources stay
    resume @7 :Void;        # lets a paused VM run again
  }
}

struct VmConfigure {
  vcpus @0 :UInt32;       # 0: unchanged
  memoryMib @1 :UInt32;   # 0: unchanged
}

# What `vm ssh` needs: the guest address and banger's key and known_hosts files.
struct SshTarget {
  ip @0 :Text;
  user @1 :Text;
  identityFile @2 :Text;
  knownHostsFile @3 :Text;
  hostKeyAlias @4 :Text;  # the known_hosts name of this VM ("<name>.vm")
  workspace @5 :Text;     # the VM's workspace (a guest path): where ssh starts; empty: none
}

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

  # Builds, imports or pulls a new version of a kernel or image; returns when it is ready. A
  # second request for the same name and source joins the running job (`joined`).
  artifactBuild @5 (kind :ArtifactKind, name :Text, source :ArtifactSource, progress :Progress)
      -> (error :Error, info :ArtifactInfo, version :ArtifactVersion, joined :Bool);
  artifactList @6 (kind :ArtifactKind) -> (error :Error, items :List(ArtifactInfo));
  artifactShow @7 (kind :ArtifactKind, name :Text) -> (error :Error, info :ArtifactInfo, manifest :Text);
  artifactRemove @8 (kind :ArtifactKind, name :Text) -> (error :Error, removed :Text);
  # Writes the current version of kernel `name` as a bundle (tar.zst) at `path` (absolute, must
  # not exist), and adds or replaces its entry in catalog.json beside it.
  kernelExport @9 (name :Text, path :Text) -> (error :Error, entry :Text, catalog :Text);

  # VMs. Commands for one VM are serialised in its actor; different VMs proceed in parallel.
  # Long operations report stage names (with their elapsed milliseconds in `done`) to `progress`.
  # Creates a VM and, unless `noStart`, starts it; returns when it is running (agent answers).
  vmCreate @10 (spec :VmCreateSpec, noStart :Bool, progress :Progress) -> (error :Error, info :VmInfo);
  # Retired (0.1's vmStart, vmStop, vmDelete; vmSet below): vmCommand replaced them. Ordinals
  # stay taken; the daemon answers them `unimplemented`.
  retired11 @11 () -> ();
  retired12 @12 () -> ();
  retired13 @13 () -> ();
  vmList @14 () -> (error :Error, items :List(VmInfo));
  vmShow @15 (name :Text) -> (error :Error, info :VmInfo);
  retired16 @16 () -> ();
  # Runs a command in a running VM through its agent. The process capability is the agent's
  # own (calls pass through the daemon); stdout/stderr go straight to the caller's sinks.
  vmExec @17 (name :Text, spec :Agent.ExecSpec, stdout :Agent.ByteSink, stderr :Agent.ByteSink)
      -> (error :Error, process :Agent.Process);
  vmSshTarget @18 (name :Text) -> (error :Error, target :SshTarget);
  # Any command of VmCommand on the VM called `name`; returns when it is done (or refused), with
  # the VM as it is then (`info` is empty after a delete).
  vmCommand @19 (name :Text, command :VmCommand, progress :Progress) -> (error :Error, info :VmInfo);
  # Lands a workspace (docs/workspaces.md) in the stopped VM `name`: the CLI, which read the
  # checkout, streams it into `sink` (begin, the repository's files, the shipped entries, then
  # finish, which answers once it is on record). An error ends the stream: the streaming call
  # fails, and finish() gives the error with its code.
  vmWorkspacePrepare @20 (name :Text, spec :WorkspaceSpec, progress :Progress) -> (error :Error, sink :WorkspaceSink);

  # Writes the owner's synced files (workspace/file_sync.hpp, read by the CLI) into the running
  # VM `name` through its agent, as root. `kept`: the keepExisting files left as they were.
  vmSyncFiles @21 (name :Text, files :List(SyncedFile)) -> (error :Error, written :UInt32, kept :List(Text));

  # Removes every registry blob and broken-off download in the blob cache that no running pull
  # holds (those are `busy`, kept); with `dryRun`, only counts them. Images already pulled do
  # not need their blobs: a later pull of the same layers downloads them again.
  imageCachePrune @22 (dryRun :Bool) -> (error :Error, blobs :UInt64, partials :UInt64, bytes :UInt64, busy :UInt64);

  # One ping of the running VM `name`'s agent over the daemon's connection to it: what the agent
  # answers and the round trip daemon <-> guest in microseconds. An agent that does not answer
  # within 5 s is `unavailable`.
  vmPing @23 (name :Text) -> (error :Error, version :Text, uptimeMs :UInt64, hostname :Text, rttUs :UInt64);
  # The running VM `name`'s listening TCP and bound UDP sockets, as its agent reads them from
  # /proc (one entry per socket: IPv4 and IPv6 separately; `process` is guest text).
  vmPorts @24 (name :Text) -> (error :Error, ports :List(Agent.Port));
}

struct SyncedFile {
  guestPath @0 :Text;     # strictly below /root
  data @1 :Data;
  mode @2 :UInt32;        # at most 0777
  keepExisting @3 :Bool;  # written only when absent, or when it starts with banger's identity marker
}

struct WorkspaceSpec {
  hostPath @0 :Text;      # the checkout's top, absolute (for the record: the daemon never opens it)
  guestPath @1 :Text;     # below /root
  head @2 :Text;          # the host's HEAD commit (40 hex), empty before a first commit
  branch @3 :Text;        # empty when detached
  includeUntracked @4 :Bool;
}

# One record of a workspace stream (workspace/stream.hpp stream_entry). Names are bytes.
struct WorkspaceEntry {
  git @0 :Bool;           # a file of the workspace's repository, path relative to .git/
  path @1 :Data;
  symlink @2 :Bool;       # else a regular file, whose `size` bytes follow as data() calls
  mode @3 :UInt32;
  size @4 :UInt64;
  mtime @5 :Int64;
  target @6 :Data;        # symlinks
}

# An entry of the host's git index (workspace/git_index.hpp index_record).
struct IndexRecord {
  path @0 :Data;
  mode @1 :UInt32;
  oid @2 :Data;           # 20 bytes
  stage @3 :UInt8;
  worktreeMatches @4 :Bool;
}

interface WorkspaceSink {
  begin @0 (guestPath :Text, bytes :UInt64, files :UInt64) -> stream;
  entry @1 (entry :WorkspaceEntry) -> stream;
  data @2 (bytes :Data) -> stream;
  finish @3 (index :List(IndexRecord)) -> (error :Error, info :VmInfo);
  # The CLI gives the stream up (it could not read the checkout): nothing lands; answers with
  # the command's outcome (the failure on record).
  abort @4 (reason :Text) -> (error :Error, info :VmInfo);
  # Records after begin, several to a call in stream order, as the agent's landing takes them
  # (the CLI sends about 1 MiB a call, so a checkout of small files is not a round trip per file).
  records @5 (records :List(Agent.WorkspacePiece)) -> stream;
}
