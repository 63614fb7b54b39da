// A workspace stream's records (workspace/stream.hpp, land_remote.hpp landing_piece) to and from
// their Cap'n Proto form: a list of pieces (schema/agent.capnp WorkspacePiece, which the CLI's
// `records` call to the daemon uses too) and an entry, a WorkspaceEntry struct or a piece's
// entry group, which have the same fields. Templates over the generated builders and readers,
// so this header includes no generated code: the CLI, the daemon and the tests use it. Pure.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <kj/common.h>

#include "workspace/land_remote.hpp"
#include "workspace/stream.hpp"

namespace banger::workspace {

inline kj::ArrayPtr<const kj::byte> capnp_bytes(std::string_view s) {
  return kj::arrayPtr(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}

/// `e` into an entry builder (a WorkspaceEntry or a piece's entry group).
template <class EntryBuilder>
void put_entry(EntryBuilder b, const stream_entry& e) {
  b.setGit(e.git);
  b.setPath(capnp_bytes(e.path));
  b.setSymlink(e.kind == entry_kind::symlink);
  b.setMode(e.mode);
  b.setSize(e.size);
  b.setMtime(e.mtime);
  b.setTarget(capnp_bytes(e.target));
}

/// An entry reader's record, as it came (the receiver checks it).
template <class EntryReader>
stream_entry entry_of(EntryReader e) {
  auto bytes = [](auto d) { return std::string(d.asChars().begin(), d.size()); };
  return {e.getGit(),          bytes(e.getPath()), e.getSymlink() ? entry_kind::symlink : entry_kind::file,
          e.getMode(),         e.getSize(),        e.getMtime(),
          bytes(e.getTarget())};
}

/// `pieces` into a List(WorkspacePiece) builder of the same length.
template <class ListBuilder>
void fill_pieces(ListBuilder list, const std::vector<landing_piece>& pieces) {
  for (unsigned i = 0; i < pieces.size(); ++i) {
    if (pieces[i].is_data)
      list[i].setData(capnp_bytes(pieces[i].data));
    else
      put_entry(list[i].initEntry(), pieces[i].entry);
  }
}

} // namespace banger::workspace
