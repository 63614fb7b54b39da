// banger-agent: the agent as a binary of its own (entry.hpp). banger-init runs the same code
// in a forked child; this binary serves host-side tests (--listen) and any init that is not
// banger-init.
#include "guest/agent/entry.hpp"

int main(int argc, char** argv) { return banger::guest::agent_main(argc, argv); }
