// Test support: a real mise binary, the release npm publishes as @jdxcode/mise-linux-x64,
// pinned by version and SHA-256, downloaded once with curl into
// $BANGER_TEST_CACHE (default /var/cache/banger-test)/mise/ and unpacked there. Test-thread
// only; a failed download or a digest mismatch is a REQUIRE failure saying so, never a pass.
#pragma once

#include <filesystem>

namespace banger::test {

/// The cached mise executable (fetched on first use).
std::filesystem::path mise_binary();

} // namespace banger::test
