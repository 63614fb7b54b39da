// See stream.hpp (stream_checker).
#include <fmt/format.h>

#include "common/text.hpp"
#include "workspace/git_meta.hpp"
#include "workspace/rules.hpp"
#include "workspace/stream.hpp"

namespace banger::workspace {

expected<void> stream_checker::begin(const stream_begin& b) {
  if (begun_)
    return make_error(errc::bad_request, "workspace stream: begin() twice");
  if (auto ok = validate_guest_path(b.guest_path); !ok)
    return ok;
  if (!required_.empty() && b.guest_path != required_)
    return make_error(errc::bad_request, fmt::format("workspace stream: it names guest path {}, the command {}",
                                                     quoted(b.guest_path), quoted(required_)));
  guest_ = b.guest_path;
  announced_bytes_ = b.bytes;
  announced_files_ = b.files;
  begun_ = true;
  return {};
}

expected<void> stream_checker::entry(const stream_entry& e) {
  if (!begun_)
    return make_error(errc::bad_request, "workspace stream: an entry outside begin() and finish()");
  if (in_file_ && cur_left_ > 0)
    return make_error(errc::bad_request,
                      fmt::format("workspace stream: {} ended {} bytes short", quoted(cur_path_), cur_left_));
  if (++records_ > announced_files_)
    return make_error(errc::bad_request,
                      fmt::format("workspace stream: more than the {} announced records", announced_files_));
  if (received_ + e.size > announced_bytes_)
    return make_error(errc::bad_request,
                      fmt::format("workspace stream: more than the {} announced bytes", announced_bytes_));
  if (e.git) {
    if (shipping_)
      return make_error(errc::bad_request, "workspace stream: a repository file after the shipped entries");
    if (!allowed_git_file(e.path) || e.path == "index" || e.kind != entry_kind::file)
      return make_error(errc::bad_request,
                        fmt::format("workspace stream: {} is not a repository file banger writes", quoted(e.path)));
  } else {
    shipping_ = true;
    if (auto ok = validate_entry_path(e.path); !ok)
      return ok;
    if (!last_.empty() && e.path <= last_)
      return make_error(errc::bad_request,
                        fmt::format("workspace stream: {} is out of order or repeated", quoted(e.path)));
    last_ = e.path;
    if (e.kind == entry_kind::file && e.mode != 0644 && e.mode != 0755)
      return make_error(errc::bad_request,
                        fmt::format("workspace stream: {} has mode {:o} (0644 or 0755)", quoted(e.path), e.mode));
    if (e.kind == entry_kind::symlink && (e.target.empty() || e.target.find('\0') != std::string::npos))
      return make_error(errc::bad_request, fmt::format("workspace stream: {} is a link to nothing", quoted(e.path)));
    digest_.entry(e);
    ++files_;
    bytes_ += e.size;
  }
  in_file_ = e.kind == entry_kind::file;
  cur_left_ = in_file_ ? e.size : 0;
  cur_path_ = e.path;
  cur_git_ = e.git;
  return {};
}

expected<void> stream_checker::data(std::string_view bytes) {
  if (!in_file_ || bytes.size() > cur_left_)
    return make_error(errc::bad_request,
                      fmt::format("workspace stream: more bytes than announced for {}", quoted(cur_path_)));
  cur_left_ -= bytes.size();
  received_ += bytes.size();
  if (!cur_git_)
    digest_.data(bytes);
  return {};
}

expected<void> stream_checker::finish() {
  if (!begun_)
    return make_error(errc::bad_request, "workspace stream: finish() outside a stream");
  if (in_file_ && cur_left_ > 0)
    return make_error(errc::bad_request,
                      fmt::format("workspace stream: {} ended {} bytes short", quoted(cur_path_), cur_left_));
  if (records_ != announced_files_)
    return make_error(errc::bad_request,
                      fmt::format("workspace stream: {} of the {} announced entries came", records_, announced_files_));
  return {};
}

} // namespace banger::workspace
