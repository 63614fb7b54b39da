// What banger-init prints on the serial console that the host reads, and what it finds on the
// work disk that the host wrote: one definition for both sides (guest/init prints and reads
// these; actors/vm/boot_snapshot.cpp waits for the lines, actors/vm/host_disks.cpp writes the
// files). Header-only and
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

/// The VM's ssh host key (openssh-key-v1, mode 0600), which the host generates and writes into
/// the work disk, relative to the disk's root; banger-init starts sshd with it (`-h`) from the
/// disk mounted on /root. The host keeps the public half for known_hosts.
inline constexpr std::string_view work_disk_host_key = ".banger/ssh_host_ed25519_key";
inline constexpr std::string_view work_disk_host_key_dir = ".banger";

} // namespace banger::guest_protocol
