// What banger-init prints on the serial console that the host reads: one definition for both
// sides (guest/init prints these, actors/vm/boot_snapshot.cpp waits for them). Header-only and
// dependency-free, so the static guest binaries include it without linking common/.
//
// Every line banger-init prints is "banger-init: [<uptime s>.<ms>] <message>".
#pragma once

#include <string_view>

namespace banger::guest_protocol {

/// Starts every console line of banger-init (before its uptime stamp).
inline constexpr std::string_view init_line_prefix = "banger-init: [";
/// The message of a guest booted with banger.await once it waits for the host's settings (the
/// moment a boot snapshot's template is saved).
inline constexpr std::string_view init_awaiting_settings = "waiting for the host's settings";
/// The start of the message banger-init prints when the guest is ready ("ready (3 services, ...)").
inline constexpr std::string_view init_ready = "ready (";

} // namespace banger::guest_protocol
