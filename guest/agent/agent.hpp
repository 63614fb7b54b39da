// banger-agent's RPC service: the `Agent` interface of schema/agent.capnp. Runs on the one
// KJ event-loop thread of banger-agent; processes it starts are reaped through
// kj::UnixEventPort::onChildExit (main() must call captureChildExit() first).
#pragma once

#include <string>

#include <kj/async-io.h>

#include "schema/agent.capnp.h"

namespace banger::guest {

struct agent_options {
  /// Whether poweroff may signal PID 1 (false when serving on the host for tests).
  bool allow_poweroff = true;
  /// Whether releaseWorkDisk/attachWorkDisk may unmount and mount /root (false on the host).
  bool allow_mounts = true;
  /// When set, exec, writeFile and readFile wait (up to 30 s) until this file exists:
  /// banger-init starts the agent before it sets up eth0, /root and sshd's host keys, so the
  /// host's ping is answered early, and creates the file once the guest is ready for commands
  /// (and the keys can be read). Empty: no wait.
  std::string ready_file;
  /// Set when banger-init waits for the host's settings (a guest restored from a boot snapshot):
  /// configure writes them here, once. Empty: configure is refused (unavailable).
  std::string settings_file;
  /// Where a guest path's /root is: "/root" in a guest; a directory of the test's when serving
  /// on the host (BANGER_AGENT_HOME, honoured with --listen only).
  std::string home = "/root";
};

/// The shared state behind every connection's Agent capability. Outlives them all.
class agent_service {
public:
  agent_service(kj::AsyncIoContext& io, agent_options opts);
  ~agent_service();
  /// A new capability for one connection.
  agent_rpc::Agent::Client client();

  struct impl;

private:
  kj::Own<impl> impl_;
};

} // namespace banger::guest
