// The live RPC objects of a client connection, and the helpers every command uses to run against
// the daemon (include only from cli/*.cpp: generated capnp).
#pragma once

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

#include <fmt/core.h>

#include "cli/client.hpp"
#include "cli/commands.hpp"
#include "schema/banger.capnp.h"

namespace banger::cli {

struct connection {
  kj::AsyncIoContext io;
  kj::Own<kj::AsyncIoStream> stream;
  kj::Own<capnp::TwoPartyClient> twoparty;
  rpc::Daemon::Client daemon;

  connection(kj::AsyncIoContext&& ctx, int fd)
    : io(kj::mv(ctx)), stream(io.lowLevelProvider->wrapSocketFd(fd, kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP)),
      twoparty(kj::heap<capnp::TwoPartyClient>(*stream)), daemon(twoparty->bootstrap().castAs<rpc::Daemon>()) {}
};

/// A domain error the daemon answered with, as a value.
inline error from_rpc(rpc::Error::Reader r) {
  return error{errc_from_number(r.getCode()), r.getMessage(), r.getOpId()};
}
inline bool failed(rpc::Error::Reader r) { return r.getCode() != static_cast<std::uint16_t>(errc::none); }

/// A transport failure (the daemon went away mid-call) as an error.
inline error lost(const kj::Exception& e) {
  return make_error(errc::unavailable, fmt::format("lost the connection to bangerd: {}", e.getDescription().cStr()));
}

/// Connects (starting the daemon in dev mode when needed) and runs `fn(client&)`, turning
/// connection and transport failures into reported errors. Returns fn's exit code.
template <class F>
int with_daemon(const dirs& d, const output_opts& o, F&& fn) {
  auto c = client::connect(d, true);
  if (!c)
    return report(c.err(), o);
  try {
    return fn(**c);
  } catch (const kj::Exception& e) {
    return report(lost(e), o);
  }
}

} // namespace banger::cli
