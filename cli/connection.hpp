// The live RPC objects of a client connection (include only from cli/*.cpp: generated capnp).
#pragma once

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

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

} // namespace banger::cli
