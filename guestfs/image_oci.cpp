// Pulled images (image.hpp's build_oci_image): layers decompressed in-process and applied
// straight into rootfs.ext4, no tree of host files in between. The layer's bytes go
// blob fd -> zlib / libzstd -> sha256 (its diff_id) -> libarchive's tar reader -> apply_layer,
// one buffer at a time: nothing is held whole. Blocking, on the calling thread.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <unistd.h>

#include <archive.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <zlib.h>
#include <zstd.h>

#include "common/process.hpp"
#include "common/sha256.hpp"
#include "common/text.hpp"
#include "guestfs/ext4.hpp"
#include "guestfs/image.hpp"
#include "guestfs/image_internal.hpp"
#include "guestfs/layer.hpp"

namespace banger::guestfs {

namespace fs = std::filesystem;
using json = nlohmann::json;
using detail::mib;

namespace {

constexpr ext4_image::inode_number root_ino = 2;

std::string_view codec_name(layer_codec c) {
  switch (c) {
  case layer_codec::none: return "uncompressed";
  case layer_codec::gzip: return "gzip";
  case layer_codec::zstd: return "zstd";
  }
  return "?";
}

/// A layer blob as the uncompressed tar stream libarchive reads, hashed and counted on the way.
class layer_stream {
public:
  layer_stream(int fd, layer_codec codec, std::string what, std::uint64_t max_out)
    : fd_(fd), codec_(codec), what_(std::move(what)), max_out_(max_out), in_(1 << 20), out_(1 << 20) {}
  ~layer_stream() {
    if (z_started_)
      inflateEnd(&z_);
    if (zs_ != nullptr)
      ZSTD_freeDStream(zs_);
  }
  layer_stream(const layer_stream&) = delete;
  layer_stream& operator=(const layer_stream&) = delete;

  /// Called with the blob bytes read so far, after each read.
  void on_read(std::function<void(std::uint64_t)> f) { on_read_ = std::move(f); }

  /// The next uncompressed chunk: bytes, 0 at the end, -1 on an error (then error() says it).
  ssize_t next(const void** buf) {
    if (failed_)
      return -1;
    auto n = produce();
    if (n < 0) {
      failed_ = true;
      return -1;
    }
    if (static_cast<std::uint64_t>(n) > max_out_ - std::min(max_out_, out_bytes_)) {
      err_ = make_error(errc::bad_request, fmt::format("{}: uncompresses to more than {} bytes (the cap on a layer, "
                                                       "max_layer_bytes in config.toml's [images])",
                                                       what_, max_out_));
      failed_ = true;
      return -1;
    }
    out_bytes_ += static_cast<std::uint64_t>(n);
    hasher_.update(out_.data(), static_cast<std::size_t>(n));
    *buf = out_.data();
    return n;
  }

  /// Reads what libarchive left (a tar's end padding) so the digest covers the whole stream.
  expected<void> drain() {
    const void* p = nullptr;
    for (;;) {
      auto n = next(&p);
      if (n == 0)
        return {};
      if (n < 0)
        return failure();
    }
  }

  bool failed() const { return failed_; }
  banger::error failure() const { return err_; }
  std::string diff_id() { return "sha256:" + hasher_.hex_digest(); }
  std::uint64_t bytes() const { return out_bytes_; }

private:
  /// Refills in_ from the blob; false on a read error.
  bool fill() {
    if (in_pos_ < in_len_ || in_eof_)
      return true;
    for (;;) {
      auto n = ::read(fd_, in_.data(), in_.size());
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0) {
        err_ = make_error(errc::operation_failed, fmt::format("{}: reading the blob: {}", what_, errno_text(errno)));
        return false;
      }
      in_pos_ = 0;
      in_len_ = static_cast<std::size_t>(n);
      in_eof_ = n == 0;
      in_total_ += in_len_;
      if (on_read_ && n > 0)
        on_read_(in_total_);
      return true;
    }
  }

  banger::error framing(const std::string& why) {
    return make_error(errc::bad_request, fmt::format("{}: {} ({}); the layer is not what its media type says or is "
                                                     "damaged",
                                                     what_, why, codec_name(codec_)));
  }

  ssize_t produce() {
    switch (codec_) {
    case layer_codec::none: {
      if (!fill())
        return -1;
      auto n = in_len_ - in_pos_;
      std::memcpy(out_.data(), in_.data() + in_pos_, n);
      in_pos_ = in_len_;
      return static_cast<ssize_t>(n);
    }
    case layer_codec::gzip: return inflate_some();
    case layer_codec::zstd: return unzstd_some();
    }
    return -1;
  }

  ssize_t inflate_some() {
    if (!z_started_) {
      std::memset(&z_, 0, sizeof z_);
      if (inflateInit2(&z_, 16 + MAX_WBITS) != Z_OK) // gzip framing only
        throw std::bad_alloc();
      z_started_ = true;
    }
    for (;;) {
      if (!fill())
        return -1;
      if (in_pos_ == in_len_ && in_eof_) {
        if (in_total_ == 0 || member_done_)
          return 0; // a zero-byte blob is an empty layer; else the last member ended cleanly
        err_ = framing("the gzip stream is cut short");
        return -1;
      }
      if (member_done_) { // another member follows the one that ended
        if (inflateReset(&z_) != Z_OK)
          throw std::bad_alloc();
        member_done_ = false;
      }
      z_.next_in = reinterpret_cast<Bytef*>(in_.data() + in_pos_);
      z_.avail_in = static_cast<uInt>(in_len_ - in_pos_);
      z_.next_out = reinterpret_cast<Bytef*>(out_.data());
      z_.avail_out = static_cast<uInt>(out_.size());
      int rc = inflate(&z_, Z_NO_FLUSH);
      in_pos_ = in_len_ - z_.avail_in;
      auto produced = static_cast<ssize_t>(out_.size() - z_.avail_out);
      if (rc == Z_STREAM_END)
        member_done_ = true;
      else if (rc != Z_OK && !(rc == Z_BUF_ERROR && produced == 0 && z_.avail_in == 0)) {
        err_ = framing(fmt::format("not valid gzip data: {}", z_.msg != nullptr ? z_.msg : "inflate failed"));
        return -1;
      }
      if (produced > 0)
        return produced;
    }
  }

  ssize_t unzstd_some() {
    if (zs_ == nullptr) {
      zs_ = ZSTD_createDStream();
      if (zs_ == nullptr)
        throw std::bad_alloc();
      ZSTD_initDStream(zs_);
    }
    for (;;) {
      if (!fill())
        return -1;
      if (in_pos_ == in_len_ && in_eof_) {
        if (in_total_ == 0 || frame_done_)
          return 0;
        err_ = framing("the zstd stream is cut short");
        return -1;
      }
      ZSTD_inBuffer in{in_.data(), in_len_, in_pos_};
      ZSTD_outBuffer out{out_.data(), out_.size(), 0};
      auto rc = ZSTD_decompressStream(zs_, &out, &in);
      in_pos_ = in.pos;
      if (ZSTD_isError(rc)) {
        err_ = framing(fmt::format("not valid zstd data: {}", ZSTD_getErrorName(rc)));
        return -1;
      }
      frame_done_ = rc == 0;
      if (out.pos > 0)
        return static_cast<ssize_t>(out.pos);
    }
  }

  int fd_;
  layer_codec codec_;
  std::string what_;
  std::uint64_t max_out_;
  std::vector<char> in_, out_;
  std::size_t in_pos_ = 0, in_len_ = 0;
  std::uint64_t in_total_ = 0, out_bytes_ = 0;
  bool in_eof_ = false, failed_ = false;
  z_stream z_{};
  bool z_started_ = false, member_done_ = false;
  ZSTD_DStream* zs_ = nullptr;
  bool frame_done_ = false;
  sha256_hasher hasher_;
  banger::error err_;
  std::function<void(std::uint64_t)> on_read_;
};

la_ssize_t read_cb(archive* a, void* data, const void** buf) {
  auto* s = static_cast<layer_stream*>(data);
  auto n = s->next(buf);
  if (n < 0)
    archive_set_error(a, EIO, "%s", s->failure().message.c_str());
  return n;
}

struct archive_deleter {
  void operator()(archive* a) const { archive_read_free(a); }
};

/// The parts of an image config banger uses, every field checked (outside input).
struct parsed_config {
  image_runtime_config runtime;
  std::vector<std::string> diff_ids;
};

expected<parsed_config> parse_config(std::string_view text) {
  auto bad = [](const std::string& why) { return make_error(errc::bad_request, fmt::format("image config: {}", why)); };
  auto j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return bad("not a JSON object");
  parsed_config out;
  auto rootfs = j.find("rootfs");
  if (rootfs == j.end() || !rootfs->is_object())
    return bad("no rootfs object");
  auto type = rootfs->find("type");
  if (type == rootfs->end() || !type->is_string() || type->get<std::string>() != "layers")
    return bad("rootfs.type is not \"layers\"");
  auto ids = rootfs->find("diff_ids");
  if (ids == rootfs->end() || !ids->is_array())
    return bad("rootfs.diff_ids is not a list");
  for (auto& d : *ids) {
    if (!d.is_string())
      return bad("rootfs.diff_ids holds something that is not text");
    auto s = d.get<std::string>();
    if (!s.starts_with("sha256:") || !is_sha256_hex(std::string_view(s).substr(7)))
      return bad(fmt::format("diff_id {} is not sha256:<64 lowercase hex digits>", quoted(s)));
    out.diff_ids.push_back(std::move(s));
  }
  auto cfg = j.find("config");
  if (cfg == j.end() || cfg->is_null())
    return out;
  if (!cfg->is_object())
    return bad("config is not an object");
  auto list = [&](const char* key, std::vector<std::string>& to) -> expected<void> {
    auto f = cfg->find(key);
    if (f == cfg->end() || f->is_null())
      return {};
    if (!f->is_array())
      return bad(fmt::format("config.{} is not a list", key));
    for (auto& v : *f) {
      if (!v.is_string() || v.get<std::string>().find('\0') != std::string::npos)
        return bad(fmt::format("config.{} holds something that is not text", key));
      to.push_back(v.get<std::string>());
    }
    return {};
  };
  auto text_of = [&](const char* key, std::string& to) -> expected<void> {
    auto f = cfg->find(key);
    if (f == cfg->end() || f->is_null())
      return {};
    if (!f->is_string() || f->get<std::string>().find('\0') != std::string::npos)
      return bad(fmt::format("config.{} is not text", key));
    to = f->get<std::string>();
    return {};
  };
  auto& r = out.runtime;
  for (auto step : {list("Env", r.env), list("Entrypoint", r.entrypoint), list("Cmd", r.cmd),
                    text_of("WorkingDir", r.working_dir), text_of("User", r.user)})
    if (!step)
      return std::move(step).err();
  for (auto& e : r.env)
    if (e.find('=') == std::string::npos || e.front() == '=')
      return bad(fmt::format("config.Env entry {} is not NAME=value", quoted(e)));
  if (!r.working_dir.empty() && r.working_dir.front() != '/')
    return bad(fmt::format("config.WorkingDir {} is not an absolute path", quoted(r.working_dir)));
  return out;
}

/// What a layer uncompresses to, as its framing declares (gzip's ISIZE trailer, zstd's frame
/// content size), or a guess; used only to size the image, which grows if the guess is short.
std::uint64_t declared_size(const oci_layer_input& l) {
  auto size = l.record.size;
  switch (l.codec) {
  case layer_codec::none: return size;
  case layer_codec::gzip: {
    unsigned char t[4] = {};
    if (size >= 18 && ::pread(l.fd, t, 4, static_cast<off_t>(size - 4)) == 4) {
      std::uint64_t isize = t[0] | (t[1] << 8) | (t[2] << 16) | (static_cast<std::uint64_t>(t[3]) << 24);
      // ISIZE is the size mod 2^32: below the compressed size, the layer is over 4 GiB.
      if (isize >= size)
        return isize;
    }
    return size * 4;
  }
  case layer_codec::zstd: {
    char head[18] = {}; // ZSTD_FRAMEHEADERSIZE_MAX (static-linking API only)
    auto n = ::pread(l.fd, head, sizeof head, 0);
    if (n > 0) {
      auto c = ZSTD_getFrameContentSize(head, static_cast<std::size_t>(n));
      if (c != ZSTD_CONTENTSIZE_UNKNOWN && c != ZSTD_CONTENTSIZE_ERROR && c >= size)
        return c;
    }
    return size * 6;
  }
  }
  return size * 4;
}

/// Copies directory `from` of `src` into directory `to` of `dst` (files, directories, symlinks,
/// with modes, owners and mtimes; anything else skipped: /root holds no devices worth keeping).
expected<std::uint64_t> copy_tree(const ext4_image& src, ext4_image::inode_number from, ext4_image& dst,
                                  ext4_image::inode_number to, int depth) {
  if (depth > 256)
    return make_error(errc::bad_request, "the image's /root is nested more than 256 levels deep");
  auto entries = src.entries_in(from);
  if (!entries)
    return std::move(entries).err();
  std::uint64_t bytes = 0;
  for (auto& [name, ino] : *entries) {
    auto st = src.stat(ino);
    if (!st)
      return std::move(st).err();
    switch (st->type) {
    case entry_type::directory: {
      auto made = dst.mkdir_in(to, name, st->mode, st->uid, st->gid, st->mtime);
      if (!made)
        return std::move(made).err();
      auto below = copy_tree(src, ino, dst, *made, depth + 1);
      if (!below)
        return below;
      bytes += *below;
      break;
    }
    case entry_type::regular: {
      auto data = src.read_in(ino, 1ull << 30);
      if (!data)
        return std::move(data).err();
      auto w = dst.create_in(to, name, st->mode, st->uid, st->gid, data->size());
      if (!w)
        return std::move(w).err();
      if (auto r = w->write(*data); !r)
        return std::move(r).err();
      if (auto r = w->finish(st->mtime); !r)
        return std::move(r).err();
      bytes += data->size();
      break;
    }
    case entry_type::symlink: {
      auto target = src.read_in(ino);
      if (!target)
        return std::move(target).err();
      if (auto r = dst.symlink_in(to, name, *target, st->uid, st->gid, st->mtime); !r)
        return std::move(r).err();
      break;
    }
    case entry_type::other: break;
    }
  }
  return bytes;
}

/// Bytes of regular files below directory `dir` of `img`, and the entry count.
expected<std::pair<std::uint64_t, std::uint64_t>> tree_size(const ext4_image& img, ext4_image::inode_number dir,
                                                            int depth) {
  if (depth > 256)
    return std::pair<std::uint64_t, std::uint64_t>{0, 0};
  auto entries = img.entries_in(dir);
  if (!entries)
    return std::move(entries).err();
  std::pair<std::uint64_t, std::uint64_t> total{0, 0};
  for (auto& [name, ino] : *entries) {
    auto st = img.stat(ino);
    if (!st)
      return std::move(st).err();
    ++total.second;
    if (st->type == entry_type::regular)
      total.first += st->size;
    if (st->type == entry_type::directory) {
      auto below = tree_size(img, ino, depth + 1);
      if (!below)
        return below;
      total.first += below->first;
      total.second += below->second;
    }
  }
  return total;
}

/// The image's /root (when it is a directory; a symlink there is not followed) as
/// work-seed.ext4; an empty one when there is none.
expected<void> make_work_seed(const ext4_image& rootfs, const fs::path& seed) {
  auto root = rootfs.lookup_in(root_ino, "root");
  if (!root)
    return std::move(root).err();
  bool has_root = *root && (*root)->type == entry_type::directory;
  std::pair<std::uint64_t, std::uint64_t> size{0, 0};
  if (has_root) {
    auto s = tree_size(rootfs, (*root)->ino, 0);
    if (!s)
      return std::move(s).err();
    size = *s;
  }
  auto bytes = std::max<std::uint64_t>(16 * mib, (size.first + size.second * 4096) * 13 / 10 + 16 * mib);
  bytes = (bytes + 4095) / 4096 * 4096;
  if (auto r = create_image(seed, bytes); !r)
    return r;
  auto dst = ext4_image::open(seed, true);
  if (!dst)
    return std::move(dst).err();
  if (has_root) {
    auto& r = **root;
    if (auto c = copy_tree(rootfs, r.ino, *dst, root_ino, 0); !c)
      return std::move(c).err();
    if (auto a = dst->set_attrs(root_ino, r.mode, r.uid, r.gid, r.mtime); !a)
      return a;
  } else if (auto a = dst->set_root(0700, 0, 0); !a) {
    return a;
  }
  return dst->close();
}

enum class apply_outcome { done, full };

/// Applies every layer into `img`; `full` when the image ran out of blocks or inodes (the
/// caller makes a bigger one), an error for anything else.
expected<apply_outcome> apply_all(ext4_image& img, const oci_image_spec& spec, const std::vector<std::string>& diff_ids,
                                  const progress_fn& progress) {
  std::uint64_t done = 0, total = 0;
  for (auto& l : spec.layers)
    total += l.record.size;
  for (std::size_t i = 0; i < spec.layers.size(); ++i) {
    const auto& l = spec.layers[i];
    auto what = fmt::format("layer {} ({})", i + 1, l.record.digest);
    if (::lseek(l.fd, 0, SEEK_SET) != 0)
      return make_error(errc::operation_failed, fmt::format("{}: lseek: {}", what, errno_text(errno)));
    layer_stream stream(l.fd, l.codec, what, spec.max_layer_bytes);
    std::unique_ptr<archive, archive_deleter> a(archive_read_new());
    if (!a)
      throw std::bad_alloc();
    archive_read_support_format_tar(a.get());
    archive_read_support_format_empty(a.get());
    if (archive_read_open(a.get(), &stream, nullptr, read_cb, nullptr) != ARCHIVE_OK) {
      if (stream.failed())
        return stream.failure();
      return make_error(errc::bad_request,
                        fmt::format("{}: not a tar stream: {}", what,
                                    archive_error_string(a.get()) ? archive_error_string(a.get()) : "unreadable"));
    }
    auto stage = fmt::format("layer {}/{}", i + 1, spec.layers.size());
    detail::report(progress, stage, done, total);
    stream.on_read([&](std::uint64_t n) { detail::report(progress, stage, done + n, total); });
    layer_limits lim;
    lim.max_entries = spec.max_entries_per_layer;
    lim.max_bytes = spec.max_layer_bytes;
    auto applied = apply_layer(img, a.get(), what, lim);
    if (!applied) {
      if (img.free_bytes() < 4 * mib || img.free_inodes() < 16)
        return apply_outcome::full;
      return stream.failed() ? stream.failure() : std::move(applied).err();
    }
    if (auto d = stream.drain(); !d)
      return std::move(d).err();
    auto got = stream.diff_id();
    if (got != diff_ids[i])
      return make_error(errc::bad_request,
                        fmt::format("{} uncompresses to {}, but the image config's rootfs.diff_ids says {}; the image "
                                    "is inconsistent and was not used",
                                    what, got, diff_ids[i]));
    done += l.record.size;
  }
  detail::report(progress, "layers", total, total);
  return apply_outcome::done;
}

} // namespace

expected<image_manifest> build_oci_image(const oci_image_spec& spec, const guest_binaries& bins, const fs::path& dest,
                                         const progress_fn& progress) {
  auto binaries = detail::guest_binaries_size(bins);
  if (!binaries)
    return std::move(binaries).err();
  auto cfg = parse_config(spec.config_json);
  if (!cfg)
    return std::move(cfg).err();
  if (cfg->diff_ids.size() != spec.layers.size())
    return make_error(errc::bad_request,
                      fmt::format("the image config lists {} diff_ids for {} layers; the image is inconsistent",
                                  cfg->diff_ids.size(), spec.layers.size()));

  std::uint64_t declared = 0;
  for (auto& l : spec.layers)
    declared += declared_size(l);
  std::uint64_t bytes = declared * 3 / 2 + 128 * mib + *binaries;
  for (int attempt = 0;; ++attempt) {
    bytes = std::min(spec.max_rootfs_bytes, (bytes + 4095) / 4096 * 4096);
    auto stage = detail::staging::begin(dest);
    if (!stage)
      return std::move(stage).err();
    auto rootfs = stage->out() / "rootfs.ext4";
    detail::report(progress, "rootfs", 0, bytes);
    if (auto r = create_image(rootfs, bytes); !r)
      return make_error(r.err().code, fmt::format("image {}: rootfs.ext4: {}", spec.name, r.err().message));
    auto img = ext4_image::open(rootfs, true);
    if (!img)
      return std::move(img).err();
    auto outcome = apply_all(*img, spec, cfg->diff_ids, progress);
    if (!outcome)
      return make_error(outcome.err().code, fmt::format("image {}: {}", spec.name, outcome.err().message));
    if (*outcome == apply_outcome::full) {
      if (bytes >= spec.max_rootfs_bytes || attempt == 3)
        return make_error(errc::bad_request,
                          fmt::format("image {}: the layers do not fit in {} (the cap on a pulled image's root "
                                      "filesystem, max_rootfs_bytes in config.toml's [images])",
                                      spec.name, human_bytes(bytes)));
      bytes *= 2;
      continue; // the staging directory goes with `stage`
    }
    detail::report(progress, "work-seed", 0, 0);
    if (auto r = make_work_seed(*img, stage->out() / "work-seed.ext4"); !r)
      return make_error(r.err().code, fmt::format("image {}: work-seed.ext4: {}", spec.name, r.err().message));
    // Like other images, no ssh host keys: each VM gets its own.
    if (auto ssh = img->inode_of("/etc/ssh"); ssh) {
      if (auto list = img->entries_in(*ssh); list)
        for (auto& [n, ino] : *list)
          if (n.starts_with("ssh_host_"))
            if (auto r = img->remove_tree_in(*ssh, n); !r)
              return std::move(r).err();
    }
    if (auto r = detail::inject(*img, bins); !r)
      return make_error(r.err().code,
                        fmt::format("image {}: injecting banger-init/agent: {}", spec.name, r.err().message));
    image_manifest m;
    m.name = spec.name;
    m.source = "registry:" + spec.origin.reference;
    m.init = "banger-init";
    m.oci = spec.origin;
    m.oci->layers.clear();
    for (std::size_t i = 0; i < spec.layers.size(); ++i) {
      m.oci->layers.push_back(spec.layers[i].record);
      m.oci->layers.back().diff_id = cfg->diff_ids[i];
    }
    m.config = cfg->runtime;
    return detail::install(*stage, std::move(m), dest, progress);
  }
}

} // namespace banger::guestfs
