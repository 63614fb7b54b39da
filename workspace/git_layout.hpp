// The directories every workspace's repository has, empty or not, made by both receivers (the
// work-disk writer and the guest agent) before the stream's files: what `git init` makes and
// git expects to find. Header-only, no dependencies: the guest agent includes it too.
#pragma once

#include <array>

namespace banger::workspace {

inline constexpr std::array<const char*, 7> git_skeleton_dirs = {
  ".git", ".git/objects", ".git/objects/pack", ".git/objects/info", ".git/refs", ".git/refs/heads", ".git/refs/tags"};

} // namespace banger::workspace
