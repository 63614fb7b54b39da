// Waiting for the host's settings (banger.await on the kernel command line: a boot snapshot's
// template). PID 1 waits here with lo and eth0 up and no identity; the host snapshots the guest
// there, and each VM restored from the snapshot is sent its hostname, banger.ip= and banger.mac=
// through the agent's configure, which writes them to settings_file. Runs in PID 1.
#pragma once

#include <string>
#include <sys/types.h>

namespace banger::guest::init {

/// The host's settings for a guest restored from a boot snapshot (banger.await on the command
/// line): the agent's configure writes them here, in the kernel command line's syntax.
inline constexpr const char* settings_file = "/run/banger-init.settings";

/// banger.await: the agent's configure brings the settings. Set once, by main(), before the agent
/// is forked.
extern bool awaiting_settings;

/// Waits for settings_file (inotify on /run, checked each second as well), restarting the agent
/// if it dies meanwhile: it is the only way the settings come. Returns the file's contents.
std::string await_settings(pid_t& agent);

} // namespace banger::guest::init
