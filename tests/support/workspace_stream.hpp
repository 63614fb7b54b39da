// Test support for workspace streams (workspace/stream.hpp): a checkout scanned with its
// repository material made, ready to send, and a receiver that passes everything on until a
// given number of data() calls, then fails like a stream that broke off. Header-only.
#pragma once

#include <filesystem>
#include <utility>

#include "workspace/git_meta.hpp"
#include "workspace/scan.hpp"
#include "workspace/stream.hpp"

namespace banger::test {

/// `repo` scanned and its repository material made in `scratch` (emptied first).
inline expected<std::pair<workspace::source, workspace::git_material>> shippable(const std::filesystem::path& repo,
                                                                                 const std::filesystem::path& scratch) {
  auto src = workspace::scan(repo);
  if (!src)
    return src.err();
  std::filesystem::remove_all(scratch);
  std::filesystem::create_directories(scratch);
  auto git = workspace::make_git_material(*src, scratch);
  if (!git)
    return git.err();
  return std::make_pair(std::move(*src), std::move(*git));
}

struct breaking_receiver : workspace::receiver {
  workspace::receiver& inner;
  int fail_after;
  breaking_receiver(workspace::receiver& r, int n) : inner(r), fail_after(n) {}
  expected<void> begin(const workspace::stream_begin& b) override { return inner.begin(b); }
  expected<void> entry(const workspace::stream_entry& e) override { return inner.entry(e); }
  expected<void> data(std::string_view d) override {
    if (fail_after-- <= 0)
      return make_error(errc::unavailable, "the stream broke off");
    return inner.data(d);
  }
  expected<workspace::landed> finish(const std::vector<workspace::index_record>& i) override { return inner.finish(i); }
  void abort() override { inner.abort(); }
};

} // namespace banger::test
