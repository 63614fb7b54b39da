// Internal to banger-agent's Agent service (agent.hpp): the state every connection's capability
// shares (agent_service::impl), the capability's class (detail::agent_impl), and the failure
// codes and helpers every method uses. The methods are defined by job: the ready-file wait, the
// service and the commands that start no process and move no file (ping, ports, stats, poweroff,
// configure) in agent.cpp; exec and the Process capability in agent_exec.cpp; writeFile and
// readFile in agent_files.cpp. Not included outside guest/agent/agent*.cpp. Links no common/
// code (the guest binaries are static and self-contained).
//
// Thread: everything here runs on banger-agent's one KJ event-loop thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <kj/async-io.h>

#include "common/error.hpp"
#include "guest/agent/agent.hpp"

namespace banger::guest {

namespace detail {

// The error numbers are common/error.hpp's table (the guest links no common/ code: only the
// header-only enum is used).
inline constexpr errc e_not_found = errc::not_found;
inline constexpr errc e_already_exists = errc::already_exists;
inline constexpr errc e_bad_request = errc::bad_request;
inline constexpr errc e_unavailable = errc::unavailable;
inline constexpr errc e_operation_failed = errc::operation_failed;

inline void fail(agent_rpc::Failure::Builder f, errc code, std::string msg) {
  f.setCode(static_cast<std::uint8_t>(code));
  f.setMessage(msg);
}

inline std::string errno_str(int err) { return std::strerror(err); }

/// Why `p` is no path the agent takes: not absolute, a NUL or control character, a "." or ".."
/// component. Nothing when it is fine. (agent_files.cpp)
std::optional<std::string> bad_path(kj::StringPtr p);
/// Makes the missing directories above `path` (0755): 0 or an errno. (agent_files.cpp)
int mkdir_parents(const std::string& path);
/// Writes all `n` bytes to `fd`: 0 or an errno. (agent_files.cpp)
int write_all(int fd, const kj::byte* data, std::size_t n);

} // namespace detail

struct agent_service::impl : kj::TaskSet::ErrorHandler {
  kj::AsyncIoContext& io;
  agent_options opts;
  kj::TaskSet reapers;

  /// Workspace trees (device, inode) `mise trust` ran or runs in, and its end (agent_exec.cpp):
  /// a landing swaps in a new directory, so each landing is trusted once, before its first
  /// command.
  std::map<std::pair<std::uint64_t, std::uint64_t>, kj::ForkedPromise<void>> mise_trusted;

  bool ready_seen = false;
  /// Shared by every command waiting for the ready file; made by the first one.
  kj::Maybe<kj::ForkedPromise<void>> ready_wait;

  impl(kj::AsyncIoContext& i, agent_options o) : io(i), opts(std::move(o)), reapers(*this) {}

  bool ready_now();

  /// Resolves once the guest is ready for commands (agent_options::ready_file), at most 30 s
  /// after the first command asked.
  kj::Promise<void> guest_ready();

  /// Resolves when the ready file exists: on inotify's word that something appeared in its
  /// directory (init creates it the moment the guest is ready), else on a 10 ms poll.
  kj::Promise<void> appeared();
  kj::Promise<void> watch(kj::Own<kj::AsyncInputStream> in, kj::Array<kj::byte> buf);
  kj::Promise<void> poll_ready();
  void taskFailed(kj::Exception&& e) override;
};

namespace detail {

/// One connection's Agent capability; every call goes to the shared agent_service::impl.
class agent_impl final : public agent_rpc::Agent::Server {
public:
  explicit agent_impl(agent_service::impl& svc) : svc_(svc) {}

  kj::Promise<void> ping(PingContext c) override;

  kj::Promise<void> exec(ExecContext c) override {
    return svc_.guest_ready().then([this, c, self = thisCap()]() mutable { return exec_now(c); });
  }
  kj::Promise<void> exec_now(ExecContext c);
  /// exec_now's second half: the command as it will run (argv, full environment) started.
  kj::Promise<void> spawn_now(ExecContext c, std::vector<std::string> argv, std::vector<std::string> env);

  kj::Promise<void> writeFile(WriteFileContext c) override {
    return svc_.guest_ready().then([this, c, self = thisCap()]() mutable { return write_file_now(c); });
  }

  kj::Promise<void> write_file_now(WriteFileContext c);

  kj::Promise<void> readFile(ReadFileContext c) override {
    return svc_.guest_ready().then([this, c, self = thisCap()]() mutable { return read_file_now(c); });
  }

  kj::Promise<void> read_file_now(ReadFileContext c);

  kj::Promise<void> ports(PortsContext c) override;
  kj::Promise<void> stats(StatsContext c) override;
  kj::Promise<void> poweroff(PoweroffContext c) override;
  kj::Promise<void> configure(ConfigureContext c) override;

  kj::Promise<void> landWorkspace(LandWorkspaceContext c) override {
    return svc_.guest_ready().then([this, c, self = thisCap()]() mutable { return land_workspace_now(c); });
  }

  /// agent_workspace.cpp
  kj::Promise<void> land_workspace_now(LandWorkspaceContext c);

  /// agent_disk.cpp
  kj::Promise<void> releaseWorkDisk(ReleaseWorkDiskContext c) override;
  kj::Promise<void> attachWorkDisk(AttachWorkDiskContext c) override;

private:
  /// Mixes `n` bytes into the kernel's pool, credited in full, then has the kernel reseed its
  /// generator from the pool at once (not at its next scheduled reseed). 0 or an errno.
  static int add_entropy(const kj::byte* data, std::size_t n);

  agent_service::impl& svc_;
};

} // namespace detail

} // namespace banger::guest
