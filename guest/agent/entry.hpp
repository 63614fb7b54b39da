// banger-agent's main, callable from another binary: banger-init forks it in-process (no
// exec, so the agent starts with its code already loaded and translated; under TCG an exec of a
// 9 MB static binary costs a booting guest ~30 ms), and agent/main.cpp wraps it as banger-agent.
#pragma once

namespace banger::guest {

/// Parses banger-agent's arguments (entry.cpp's header lists them) and serves until a fatal
/// error; returns the process exit status.
int agent_main(int argc, char** argv);

} // namespace banger::guest
