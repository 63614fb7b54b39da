// The sending side of a workspace stream (stream.hpp): the CLI reading the checkout as the user.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <fstream>

#include "common/process.hpp"
#include "common/text.hpp"
#include "workspace/beneath.hpp"
#include "workspace/git_meta.hpp"
#include "workspace/stream.hpp"

namespace banger::workspace {

namespace fs = std::filesystem;

void stream_digest::entry(const stream_entry& e) {
  std::string head =
    fmt::format("{} {:o} {} {}\n", e.kind == entry_kind::file ? "file" : "link", e.mode, e.size, e.path.size());
  h_.update(head);
  h_.update(e.path);
  if (e.kind == entry_kind::symlink)
    h_.update(e.target);
}

namespace {

constexpr std::size_t chunk_bytes = 1 << 20;

using detail::open_beneath;

/// Streams the open file `fd` (expected to hold `size` bytes) into `to`.
expected<void> stream_fd(int fd, std::uint64_t size, const std::string& what, receiver& to, std::string& buf) {
  std::uint64_t left = size;
  while (left > 0) {
    auto want = static_cast<std::size_t>(std::min<std::uint64_t>(left, buf.size()));
    ssize_t n = ::read(fd, buf.data(), want);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return make_error(errc::operation_failed, fmt::format("reading {}: {}", what, errno_text(errno)));
    if (n == 0)
      return make_error(errc::conflict, fmt::format("{} shrank while it was shipped; run the command again", what));
    if (auto ok = to.data(std::string_view(buf.data(), static_cast<std::size_t>(n))); !ok)
      return ok;
    left -= static_cast<std::uint64_t>(n);
  }
  return {};
}

expected<landed> send_all(const source& src, const git_material& git, const std::string& guest_path, receiver& to,
                          const send_progress& progress) {
  std::uint64_t pack_bytes = 0;
  std::error_code ec;
  if (!git.pack.empty())
    pack_bytes = fs::file_size(git.pack, ec) + fs::file_size(git.pack_index, ec);
  std::uint64_t small = 0;
  for (const auto& [name, content] : git.files)
    small += content.size();
  stream_begin b{guest_path, src.bytes + pack_bytes + small,
                 src.entries.size() + git.files.size() + (git.pack.empty() ? 0 : 2)};
  if (auto ok = to.begin(b); !ok)
    return ok.err();

  std::string buf(chunk_bytes, '\0');
  std::uint64_t sent_files = 0, sent_bytes = 0;
  for (const auto& [name, content] : git.files) {
    stream_entry e{true, name, entry_kind::file, 0644, content.size(), 0, {}};
    if (auto ok = to.entry(e); !ok)
      return ok.err();
    if (auto ok = to.data(content); !ok)
      return ok.err();
  }
  if (!git.pack.empty()) {
    for (const auto& p : {git.pack, git.pack_index}) {
      unique_fd fd{::open(p.c_str(), O_RDONLY | O_CLOEXEC)};
      struct stat st {};
      if (!fd || ::fstat(fd.get(), &st) != 0)
        return make_error(errc::operation_failed, fmt::format("opening {}: {}", p.string(), errno_text(errno)));
      stream_entry e{true, "objects/pack/" + p.filename().string(), entry_kind::file,
                     0444, static_cast<std::uint64_t>(st.st_size),  0,
                     {}};
      if (auto ok = to.entry(e); !ok)
        return ok.err();
      if (auto ok = stream_fd(fd.get(), e.size, p.string(), to, buf); !ok)
        return ok.err();
    }
  }

  unique_fd top{::open(src.top.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC)};
  if (!top)
    return make_error(errc::operation_failed, fmt::format("cannot open {}: {}", src.top.string(), errno_text(errno)));
  for (const auto& en : src.entries) {
    stream_entry e{false, en.path, en.kind, en.mode, en.size, 0, en.target};
    if (en.kind == entry_kind::symlink) {
      if (auto ok = to.entry(e); !ok)
        return ok.err();
    } else {
      int fd = open_beneath(top.get(), en.path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
      if (fd < 0)
        return make_error(errno == EACCES ? errc::unauthorized : errc::conflict,
                          fmt::format("cannot read {}: {} (it changed since it was listed? run the command again)",
                                      quoted(en.path), errno_text(errno)));
      unique_fd file{fd};
      struct stat st {};
      if (::fstat(file.get(), &st) != 0 || !S_ISREG(st.st_mode))
        return make_error(errc::conflict, fmt::format("{} is no longer a regular file", quoted(en.path)));
      e.size = static_cast<std::uint64_t>(st.st_size);
      e.mode = (st.st_mode & S_IXUSR) ? 0755 : 0644;
      e.mtime = st.st_mtim.tv_sec;
      if (auto ok = to.entry(e); !ok)
        return ok.err();
      if (auto ok = stream_fd(file.get(), e.size, quoted(en.path), to, buf); !ok)
        return ok.err();
    }
    ++sent_files;
    sent_bytes += e.size;
    if (progress)
      progress(sent_files, sent_bytes);
  }
  return to.finish(git.index);
}

/// Receives a stream only to digest it, as a landing does.
class digest_receiver final : public receiver {
public:
  expected<void> begin(const stream_begin&) override { return {}; }
  expected<void> entry(const stream_entry& e) override {
    if (!e.git)
      d_.entry(e);
    git_ = e.git;
    return {};
  }
  expected<void> data(std::string_view bytes) override {
    if (!git_)
      d_.data(bytes);
    return {};
  }
  expected<landed> finish(const std::vector<index_record>&) override { return landed{{}, 0, 0, d_.hex()}; }
  void abort() override {}

private:
  stream_digest d_;
  bool git_ = false;
};

} // namespace

expected<std::string> digest_of(const source& src) {
  digest_receiver d;
  auto r = send(src, git_material{}, "/root/x", d);
  if (!r)
    return r.err();
  return r->digest;
}

expected<landed> send(const source& src, const git_material& git, const std::string& guest_path, receiver& to,
                      const send_progress& progress) {
  auto r = send_all(src, git, guest_path, to, progress);
  if (!r)
    to.abort();
  return r;
}

} // namespace banger::workspace
