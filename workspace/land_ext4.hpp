// Landing a workspace stream (stream.hpp) straight into a stopped VM's work disk with libext2fs:
// no guest CPU. The tree is written into a staging directory beside the guest path and swapped
// into place by renames only when the stream is whole and its index written; a failure at any
// point removes the staging directory and leaves the previous workspace (or none) as it was.
// The work disk is mounted at /root in the guest, so guest path /root/X is /X in the image.
// Blocking; one thread (the VM's worker) uses it, with the image opened writable.
#pragma once

#include <cstdint>
#include <ctime>
#include <memory>

#include "guestfs/ext4.hpp"
#include "workspace/stream.hpp"

namespace banger::workspace {

/// A receiver that writes into `image` (the work disk, opened writable; it must outlive the
/// receiver). `guest_path`, when not empty, is the only guest path the stream's begin may name
/// (the one the command put on record). `now` stamps the repository's files and the index (the
/// shipped files keep their host mtime, clamped to before it, so no index entry is ever
/// "racily clean").
std::unique_ptr<receiver> ext4_receiver(guestfs::ext4_image& image, std::string guest_path = {},
                                        std::time_t now = std::time(nullptr));

/// Puts right what a landing at `guest_path` that was cut short (a daemon killed mid-write) left
/// in `image`: its staging tree goes, and a previous workspace set aside for the swap goes back
/// when the new one never took its place. A receiver does this before it lands; the daemon's
/// restart does it after e2fsck, so the guest never sees the leftovers.
expected<void> tidy_landing(guestfs::ext4_image& image, std::string_view guest_path);

/// The image path of guest path `guest` on the work disk ("/root/x" -> "/x").
std::string work_disk_path(std::string_view guest);

} // namespace banger::workspace
