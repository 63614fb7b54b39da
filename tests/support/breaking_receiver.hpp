// Test support: a workspace receiver (workspace/stream.hpp) that passes everything on until a
// given number of data() calls, then fails like a stream that broke off. Header-only.
#pragma once

#include "workspace/stream.hpp"

namespace banger::test {

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
