#include "workspace/land_remote.hpp"

#include <fmt/format.h>

#include <map>

#include "common/text.hpp"
#include "workspace/rules.hpp"

namespace banger::workspace {

namespace {

/// Entries a batch holds at most, whatever their size (each is one small capnp struct).
constexpr std::size_t batch_entries = 2048;

class remote_recv final : public receiver {
public:
  remote_recv(remote_opener open, std::string guest_path, std::size_t batch_bytes)
    : open_(std::move(open)), check_(std::move(guest_path)), batch_bytes_(batch_bytes) {}

  expected<void> begin(const stream_begin& b) override {
    if (auto ok = check_.begin(b); !ok)
      return ok;
    auto l = open_(b);
    if (!l)
      return l.err();
    landing_ = std::move(*l);
    return {};
  }

  expected<void> entry(const stream_entry& e) override {
    if (!landing_)
      return make_error(errc::bad_request, "workspace stream: an entry outside begin() and finish()");
    if (auto ok = check_.entry(e); !ok)
      return ok;
    if (!e.git)
      order_[e.path] = shipped_++;
    landing_piece p;
    p.entry = e;
    return add(std::move(p), 0);
  }

  expected<void> data(std::string_view bytes) override {
    if (auto ok = check_.data(bytes); !ok)
      return ok;
    landing_piece p;
    p.is_data = true;
    p.data.assign(bytes);
    return add(std::move(p), bytes.size());
  }

  expected<landed> finish(const std::vector<index_record>& index) override {
    if (!landing_)
      return make_error(errc::bad_request, "workspace stream: finish() outside a stream");
    if (auto ok = check_.finish(); !ok)
      return ok.err();
    if (auto ok = flush(); !ok)
      return ok.err();
    auto stats = landing_->seal();
    if (!stats)
      return stats.err();
    if (stats->size() != shipped_)
      return make_error(errc::operation_failed,
                        fmt::format("the guest agent reported {} landed files of {}", stats->size(), shipped_));
    auto out = index_stats(index, [&](const std::string& path) -> expected<std::optional<landed_file>> {
      auto it = order_.find(path);
      if (it == order_.end())
        return std::optional<landed_file>();
      const auto& st = (*stats)[it->second];
      return std::optional<landed_file>(
        landed_file{(st.mode & 0170000) == 0120000,
                    st.mode,
                    {st.ctime_s, st.mtime_s, st.dev, st.ino, st.uid, st.gid, st.size, st.ctime_ns, st.mtime_ns}});
    });
    if (!out)
      return out.err();
    auto encoded = encode_index(index, *out);
    if (!encoded)
      return encoded.err();
    if (auto ok = landing_->commit(*encoded); !ok)
      return ok.err();
    landing_.reset();
    return check_.result();
  }

  void abort() override {
    batch_.clear();
    landing_.reset(); // the guest removes the staging tree
  }

private:
  expected<void> add(landing_piece p, std::size_t n) {
    batch_.push_back(std::move(p));
    batch_data_ += n;
    if (batch_data_ >= batch_bytes_ || batch_.size() >= batch_entries)
      return flush();
    return {};
  }

  expected<void> flush() {
    if (batch_.empty())
      return {};
    auto ok = landing_->push(batch_);
    batch_.clear();
    batch_data_ = 0;
    return ok;
  }

  remote_opener open_;
  stream_checker check_;
  std::size_t batch_bytes_;
  std::unique_ptr<remote_landing> landing_;
  std::vector<landing_piece> batch_;
  std::size_t batch_data_ = 0;
  std::map<std::string, std::size_t> order_; ///< shipped path -> its place among the landed stats
  std::size_t shipped_ = 0;
};

} // namespace

std::unique_ptr<receiver> remote_receiver(remote_opener open, std::string guest_path, std::size_t batch_bytes) {
  return std::make_unique<remote_recv>(std::move(open), std::move(guest_path), batch_bytes);
}

} // namespace banger::workspace
