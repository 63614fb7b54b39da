// The daemon's side of banger-helper: starts the helper process (directly when root, through
// `sudo -n` otherwise) on one end of a socketpair and calls it with blocking methods. No CAF:
// the network actor (actors/netpriv) owns one client on its own thread.
//
// Threading: a client owns a private KJ event loop, so every call, and the destructor, must
// happen on the thread that launched it, and that thread must not run another KJ event loop.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "common/error.hpp"

namespace banger::helper {

struct launch_options {
  std::filesystem::path helper_bin; ///< path to banger-helper
  std::filesystem::path state_dir, runtime_dir;
  /// Run it as `sudo -n banger-helper ...` when this process is not root. Root always runs the
  /// helper directly; a non-root caller without use_sudo runs it unprivileged (its operations
  /// then fail with the tools' "Operation not permitted").
  bool use_sudo = false;
  /// How long one call may take before the helper counts as hung (each tool it runs has 30 s).
  std::chrono::milliseconds call_timeout = std::chrono::minutes(2);
};

/// Owns the helper process and the connection; move-only; all calls block and must be made from
/// the thread that created it (it owns a private kj event loop). Destructor closes the
/// connection and reaps.
///
/// Every method sends `op_id` (logged by the helper) and returns the helper's answer: ok, or the
/// helper's error (bad_request for a refused argument, conflict, not_found, operation_failed
/// naming the failed command). A dead or hung helper makes every call fail with
/// errc::unavailable; the client is then useless and should be replaced by a new launch().
class client {
public:
  /// Starts the helper and pings it. unavailable, with what to do, when it does not answer
  /// (sudo needs a password, the helper refused its dirs, the binary is missing).
  static expected<client> launch(const launch_options& o);

  client(client&&) noexcept;
  client& operator=(client&&) noexcept;
  ~client();

  /// The helper's version ("0.1.0").
  expected<std::string> ping(const std::string& op_id);
  /// Idempotent. cidr is the gateway address with its prefix ("172.30.0.1/24").
  expected<void> ensure_bridge(const std::string& bridge, const std::string& cidr, const std::string& op_id);
  /// Idempotent when the tap exists with that owner on that bridge; conflict otherwise.
  expected<void> create_tap(const std::string& tap, const std::string& bridge, unsigned owner_uid,
                            const std::string& op_id);
  /// Absent is success.
  expected<void> delete_tap(const std::string& tap, const std::string& op_id);
  /// Idempotent: one set of rules per (bridge, network of cidr).
  expected<void> ensure_nat(const std::string& bridge, const std::string& cidr, const std::string& op_id);
  /// Absent is success; removes the table with its last rule.
  expected<void> clear_nat(const std::string& bridge, const std::string& cidr, const std::string& op_id);
  /// unauthorized unless pid is proven to be banger's VMM; bad_request for a signal outside
  /// TERM, KILL, INT, HUP, QUIT; not_found when the process is gone.
  expected<void> signal_vmm(int pid, int signo, const std::string& op_id);

  /// The helper's process id (sudo's, when started through sudo), for diagnostics.
  int pid() const;

private:
  struct impl;
  explicit client(std::unique_ptr<impl> i);
  std::unique_ptr<impl> impl_;
};

} // namespace banger::helper
