// A workspace landing's pieces and stat data (workspace/land_remote.hpp) to and from the agent's
// capnp types (schema/agent.capnp WorkspaceLanding): shared by the daemon's landing
// (agents.cpp) and the host-side tests that drive the real banger-agent. Header-only; pure.
#pragma once

#include <string>
#include <vector>

#include "schema/agent.capnp.h"
#include "workspace/land_remote.hpp"

namespace banger::daemon {

inline kj::ArrayPtr<const kj::byte> capnp_bytes(const std::string& s) {
  return kj::arrayPtr(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}

inline void fill_pieces(capnp::List<agent_rpc::WorkspacePiece>::Builder list,
                        const std::vector<workspace::landing_piece>& pieces) {
  for (unsigned i = 0; i < pieces.size(); ++i) {
    const auto& p = pieces[i];
    if (p.is_data) {
      list[i].setData(capnp_bytes(p.data));
      continue;
    }
    auto e = list[i].initEntry();
    e.setGit(p.entry.git);
    e.setPath(capnp_bytes(p.entry.path));
    e.setSymlink(p.entry.kind == workspace::entry_kind::symlink);
    e.setMode(p.entry.mode);
    e.setSize(p.entry.size);
    e.setMtime(p.entry.mtime);
    e.setTarget(capnp_bytes(p.entry.target));
  }
}

inline std::vector<workspace::landed_stat> stats_from(capnp::List<agent_rpc::LandedStat>::Reader list) {
  std::vector<workspace::landed_stat> out;
  out.reserve(list.size());
  for (auto st : list)
    out.push_back({st.getCtimeS(), st.getCtimeNs(), st.getMtimeS(), st.getMtimeNs(), st.getDev(), st.getIno(),
                   st.getMode(), st.getUid(), st.getGid(), st.getSize()});
  return out;
}

} // namespace banger::daemon
