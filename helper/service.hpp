// The Helper capability banger-helper serves (schema/helper.capnp): the closed set of
// privileged operations, each validated at its dispatch and logged as one JSON line on stderr.
// Runs on the helper's only thread; operations run one at a time, blocking the event loop.
#pragma once

#include <capnp/capability.h>

#include "helper/startup.hpp"

namespace banger::helper {

/// A new Helper capability over `cfg` (copied).
capnp::Capability::Client make_service(const helper_config& cfg);

} // namespace banger::helper
