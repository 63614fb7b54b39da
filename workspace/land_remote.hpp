// Landing a workspace stream (stream.hpp) in a running VM: the guest agent writes it into a
// staging directory and swaps it in (schema/agent.capnp WorkspaceLanding); this is the host's
// half. It checks the stream as every receiver does (stream_checker), gathers the pieces into
// batches of about a MiB (one round trip each, so the daemon holds one batch, never a whole
// file), and at the end makes the index from the host's records and the stat data the guest
// reports of the files it wrote, so git in the guest trusts them without re-reading. Blocking;
// one thread (the VM's worker) uses it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "workspace/stream.hpp"

namespace banger::workspace {

/// One piece of a landing: an entry, or the next bytes of the file last announced.
struct landing_piece {
  bool is_data = false;
  stream_entry entry; ///< when !is_data
  std::string data;   ///< when is_data
};

/// What the guest's kernel says of a landed file.
struct landed_stat {
  std::uint32_t ctime_s = 0, ctime_ns = 0, mtime_s = 0, mtime_ns = 0, dev = 0, ino = 0, mode = 0, uid = 0, gid = 0,
                size = 0;
};

/// A landing in the guest, as the host drives it (the daemon implements it over the agent's
/// RPC). Dropped before commit: the guest removes the staging tree.
class remote_landing {
public:
  virtual ~remote_landing() = default;
  virtual expected<void> push(const std::vector<landing_piece>& pieces) = 0;
  /// Every piece came: the stat data of each shipped entry, in stream order.
  virtual expected<std::vector<landed_stat>> seal() = 0;
  /// Writes the index and swaps the workspace in.
  virtual expected<void> commit(const std::string& index) = 0;
};

/// Opens a landing in the guest for a stream's begin (its guest path, announced bytes, files).
using remote_opener = std::function<expected<std::unique_ptr<remote_landing>>(const stream_begin&)>;

/// A receiver that lands through `open`'s landing. `guest_path`, when not empty, is the only
/// guest path the stream's begin may name. `batch_bytes` bounds a batch's data.
std::unique_ptr<receiver> remote_receiver(remote_opener open, std::string guest_path = {},
                                          std::size_t batch_bytes = 1u << 20);

} // namespace banger::workspace
