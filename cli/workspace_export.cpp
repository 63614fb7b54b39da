// `vm workspace export` (workspace.hpp): the guest's git makes the patch (workspace/export.hpp)
// through an exec; the CLI writes it to stdout or, whole or not at all, to a file, and checks
// that a file's patch applies to the checkout it came from.
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>

#include <fmt/format.h>

#include "cli/client.hpp"
#include "cli/connection.hpp"
#include "cli/output.hpp"
#include "cli/vm.hpp"
#include "cli/vm_rpc.hpp"
#include "common/process.hpp"
#include "common/subprocess.hpp"
#include "common/text.hpp"
#include "workspace/export.hpp"

namespace banger::cli {

namespace fs = std::filesystem;

namespace {

/// How many patches `text` holds: files of a diff, or messages of a series.
std::size_t count_of(const std::string& text, bool commits) {
  std::string_view mark = commits ? "\nSubject: [PATCH" : "\ndiff --git ";
  std::size_t n = text.rfind(mark.substr(1), 0) == 0 ? 1 : 0;
  for (auto at = text.find(mark); at != std::string::npos; at = text.find(mark, at + 1))
    ++n;
  return n;
}

/// A file written whole or not at all: a temporary name beside it until commit().
class whole_file {
public:
  explicit whole_file(fs::path to) : to_(std::move(to)), tmp_(to_.string() + ".banger-tmp") {}
  ~whole_file() {
    if (fd_ >= 0)
      ::close(fd_);
    if (!committed_)
      ::unlink(tmp_.c_str());
  }
  expected<int> open() {
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd_ < 0)
      return make_error(errc::operation_failed, fmt::format("cannot write {}: {}", tmp_.string(), errno_text(errno)));
    return fd_;
  }
  expected<void> commit() {
    if (::fsync(fd_) != 0 || ::close(std::exchange(fd_, -1)) != 0 || ::rename(tmp_.c_str(), to_.c_str()) != 0)
      return make_error(errc::operation_failed, fmt::format("cannot write {}: {}", to_.string(), errno_text(errno)));
    committed_ = true;
    return {};
  }

private:
  fs::path to_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

} // namespace

int cmd_workspace_export(const dirs& d, const std::string& name, const std::string& out, bool commits) {
  output_opts o;
  if (auto ok = validate_vm_name(name); !ok)
    return report(ok.err(), o);
  return with_daemon(d, o, [&](client& c) {
    auto v = vm_detail::show_on(c, name);
    if (!v)
      return report(v.err(), o);
    const auto& ws = v->workspace;
    if (ws.guest_path.empty())
      return report(make_error(errc::not_found, fmt::format("VM {} has no workspace to export (`banger vm workspace "
                                                            "prepare {} PATH` ships one)",
                                                            name, name)),
                    o);
    auto argv = workspace::export_command(ws.guest_path, ws.head,
                                          commits ? workspace::export_form::commits : workspace::export_form::diff);
    if (out.empty() || out == "-") {
      auto code = exec_captured(c, name, argv, "/", STDOUT_FILENO);
      if (!code)
        return report(code.err(), o);
      return *code == 0 ? 0 : 1;
    }
    whole_file file(out);
    auto fd = file.open();
    if (!fd)
      return report(fd.err(), o);
    auto code = exec_captured(c, name, argv, "/", *fd);
    if (!code)
      return report(code.err(), o);
    if (*code != 0)
      return 1; // the guest said why on stderr; no file is left
    if (auto ok = file.commit(); !ok)
      return report(ok.err(), o);
    std::ifstream in(out, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (text.empty()) {
      fmt::print(stderr, "{}: no {} since the workspace was shipped\n", out,
                 commits ? "commits in the guest" : "changes in the guest");
      return 0;
    }
    fmt::print(stderr, "wrote {}: {} {}, {}\n", out, count_of(text, commits), commits ? "commits" : "files",
               human_bytes(text.size()));
    // Whether it applies where it came from (the checkout may have moved on since).
    std::error_code ec;
    if (!commits && !ws.host_path.empty() && fs::is_directory(ws.host_path, ec)) {
      auto check = run_process({"git", "-C", ws.host_path, "apply", "--check", fs::absolute(out).string()});
      if (check.exit_code != 0)
        fmt::print(stderr, "{} the patch does not apply to {} as it is now: {}",
                   paint("banger: warning:", "1;33", use_colour(2)), ws.host_path, check.err);
    }
    return 0;
  });
}

} // namespace banger::cli
