// A workspace landing's stat data (workspace/land_remote.hpp) from the agent's capnp types
// (schema/agent.capnp WorkspaceLanding; the pieces are workspace/pieces_capnp.hpp): shared by
// the daemon's landing (agents.cpp) and the host-side tests that drive the real banger-agent.
// Header-only; pure.
#pragma once

#include <string>
#include <vector>

#include "schema/agent.capnp.h"
#include "workspace/land_remote.hpp"
#include "workspace/pieces_capnp.hpp"

namespace banger::daemon {

inline std::vector<workspace::landed_stat> stats_from(capnp::List<agent_rpc::LandedStat>::Reader list) {
  std::vector<workspace::landed_stat> out;
  out.reserve(list.size());
  for (auto st : list)
    out.push_back({st.getCtimeS(), st.getCtimeNs(), st.getMtimeS(), st.getMtimeNs(), st.getDev(), st.getIno(),
                   st.getMode(), st.getUid(), st.getGid(), st.getSize()});
  return out;
}

} // namespace banger::daemon
