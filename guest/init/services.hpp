// banger-init's services: banger-agent (forked from this binary) and sshd when the image has one
// (with the host key the host wrote into the work disk), started with a clean environment and the console as
// stdout and stderr, restarted a second after they die, and reaped with every other zombie.
// Runs in PID 1; the services run in its children.
#pragma once

#include <string>
#include <sys/types.h>
#include <time.h>
#include <vector>

namespace banger::guest::init {

struct service {
  std::string name;
  std::vector<std::string> argv;
  pid_t pid = -1;
  time_t restart_at = 0;
  bool in_process = false; ///< the agent: forked from this binary, argv unused
};

/// Where init says the guest is ready for commands; the agent (started before eth0, /root and
/// sshd are set up, so the host's first ping is answered early) holds exec,
/// writeFile and readFile until it exists. Every service gets its path as BANGER_READY_FILE.
inline constexpr const char* ready_file = "/run/banger-init.ready";

/// The agent, in a child of this process (its code is linked in), with the environment and
/// stdio spawn() gives a service. No exec: the child starts with the code loaded, which under
/// TCG saves a booting guest the exec of a 9 MB static binary (~30 ms). Init's own descriptors
/// (the console, the signalfd, input devices) are closed in the child; exec would have.
pid_t fork_agent();

/// Starts `s` (forks the agent, or execs its argv in a child); the pid, or -1.
pid_t start(const service& s);

/// The image's services besides the agent: sshd when /usr/sbin/sshd exists, with the work
/// disk's host key (guest_protocol.hpp) when there is one, else the image's keys (generated
/// first when /etc/ssh has none). Called once /root is mounted.
std::vector<service> services();

/// Reaps every zombie; a service that exited is marked for a restart in 1 s unless `stopping`.
void reap_all(std::vector<service>& svcs, bool stopping);

} // namespace banger::guest::init
