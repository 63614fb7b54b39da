// Shipping a workspace (workspace.hpp): the checkout read as the user, its repository made, and
// the stream sent to the daemon's WorkspaceSink with capnp streaming flow control, so what is
// in flight stays bounded however large the checkout.
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <iostream>

#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include "cli/client.hpp"
#include "cli/connection.hpp"
#include "cli/output.hpp"
#include "cli/vm_rpc.hpp"
#include "cli/workspace.hpp"
#include "common/process.hpp"
#include "common/text.hpp"
#include "workspace/git_meta.hpp"
#include "workspace/pieces_capnp.hpp"
#include "workspace/rules.hpp"
#include "workspace/scan.hpp"
#include "workspace/stream.hpp"

namespace banger::cli {

namespace fs = std::filesystem;

struct workspace_plan {
  workspace::source src;
  std::string guest_path;
  bool include_untracked = false;
};

namespace {

/// A directory of the CLI's own for the pack; removed with this.
struct scratch_dir {
  fs::path path;
  scratch_dir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = (fs::path(tmp && *tmp ? tmp : "/tmp") / "banger-ws-XXXXXX").string();
    if (::mkdtemp(tmpl.data()))
      path = tmpl;
  }
  ~scratch_dir() {
    std::error_code ec;
    if (!path.empty())
      fs::remove_all(path, ec);
  }
};

/// The stream's receiving end as seen from the CLI: each record a call on the daemon's sink.
class rpc_receiver final : public workspace::receiver {
public:
  rpc_receiver(rpc::WorkspaceSink::Client sink, kj::WaitScope& ws) : sink_(kj::mv(sink)), ws_(ws) {}
  ~rpc_receiver() noexcept override {} // a capnp Client's destructor may throw; this one does not

  expected<void> begin(const workspace::stream_begin& b) override {
    auto req = sink_.beginRequest();
    req.setGuestPath(b.guest_path);
    req.setBytes(b.bytes);
    req.setFiles(b.files);
    return wait(req.send());
  }
  // Entries and small data records wait here and go as one `records` call per ~1 MiB; a large
  // data record goes in a call of its own, uncopied.
  expected<void> entry(const workspace::stream_entry& e) override {
    pending_bytes_ += e.path.size() + e.target.size() + 64;
    pending_.push_back({false, e, {}});
    return pending_bytes_ >= batch_bytes ? flush() : expected<void>{};
  }
  expected<void> data(std::string_view bytes) override {
    if (bytes.size() >= batch_bytes / 4) {
      if (auto ok = flush(); !ok)
        return ok;
      auto req = sink_.dataRequest();
      req.setBytes(workspace::capnp_bytes(bytes));
      return wait(req.send());
    }
    pending_bytes_ += bytes.size();
    pending_.push_back({true, {}, std::string(bytes)});
    return pending_bytes_ >= batch_bytes ? flush() : expected<void>{};
  }
  expected<workspace::landed> finish(const std::vector<workspace::index_record>& index) override {
    if (auto ok = flush(); !ok)
      return ok.err();
    auto req = sink_.finishRequest();
    auto list = req.initIndex(static_cast<unsigned>(index.size()));
    for (unsigned i = 0; i < index.size(); ++i) {
      list[i].setPath(workspace::capnp_bytes(index[i].path));
      list[i].setMode(index[i].mode);
      list[i].setOid(capnp::Data::Reader(index[i].oid.data(), index[i].oid.size()));
      list[i].setStage(index[i].stage);
      list[i].setWorktreeMatches(index[i].worktree_matches);
    }
    return answer(req);
  }
  /// The stream broke, on this side or the daemon's: abort() tells the daemon (nothing lands)
  /// and brings its outcome; when the daemon broke it, that is the error to show, with its code
  /// and op id (daemon_error()).
  void abort() override {
    pending_.clear(); // records not sent yet never are
    if (finished_)
      return;
    auto req = sink_.abortRequest();
    req.setReason("the CLI stopped sending the workspace");
    auto r = answer(req);
    if (!r && remote_failed_)
      daemon_error_ = r.err();
  }
  const std::optional<error>& daemon_error() const { return daemon_error_; }

private:
  static constexpr std::size_t batch_bytes = 1u << 20;

  expected<void> flush() {
    if (pending_.empty())
      return {};
    auto req = sink_.recordsRequest();
    workspace::fill_pieces(req.initRecords(static_cast<unsigned>(pending_.size())), pending_);
    pending_.clear();
    pending_bytes_ = 0;
    return wait(req.send());
  }

  expected<void> wait(kj::Promise<void> p) {
    try {
      p.wait(ws_);
      return {};
    } catch (const kj::Exception& e) {
      remote_failed_ = true;
      return make_error(errc::operation_failed, e.getDescription().cStr());
    }
  }
  template <class Req>
  expected<workspace::landed> answer(Req& req) {
    finished_ = true;
    try {
      auto r = req.send().wait(ws_);
      if (failed(r.getError()))
        return from_rpc(r.getError());
      auto w = r.getInfo().getWorkspace();
      return workspace::landed{w.getGuestPath(), w.getFiles(), w.getBytes(), w.getDigest()};
    } catch (const kj::Exception& e) {
      return make_error(errc::unavailable, fmt::format("bangerd: {}", e.getDescription().cStr()));
    }
  }
  template <class Req>
  expected<workspace::landed> answer(Req&& req) {
    return answer(req);
  }

  rpc::WorkspaceSink::Client sink_;
  kj::WaitScope& ws_;
  std::vector<workspace::landing_piece> pending_;
  std::size_t pending_bytes_ = 0;
  bool finished_ = false, remote_failed_ = false;
  std::optional<error> daemon_error_;
};

} // namespace

namespace {

/// A scan made ready to ship to `guest_path` ("": /root/<checkout name>).
expected<std::shared_ptr<workspace_plan>> plan_of(workspace::source src, const std::string& guest_path,
                                                  bool include_untracked) {
  auto plan = std::make_shared<workspace_plan>();
  plan->guest_path = guest_path.empty() ? workspace::default_guest_path(src.top) : guest_path;
  if (auto ok = workspace::validate_guest_path(plan->guest_path); !ok)
    return ok.err();
  plan->src = std::move(src);
  plan->include_untracked = include_untracked;
  return plan;
}

} // namespace

expected<std::shared_ptr<workspace_plan>> plan_workspace(const workspace_opts& w) {
  auto src = workspace::scan(w.path, {.include_untracked = w.include_untracked});
  if (!src)
    return src.err();
  return plan_of(std::move(*src), w.guest_path, w.include_untracked);
}

const fs::path& plan_checkout(const workspace_plan& plan) { return plan.src.top; }

expected<shipped_workspace> ship_workspace(client& c, const std::string& vm, const workspace_plan& plan,
                                           const std::string& label, bool quiet) {
  auto t0 = std::chrono::steady_clock::now();
  scratch_dir scratch;
  if (scratch.path.empty())
    return make_error(errc::operation_failed, fmt::format("making a scratch directory: {}", errno_text(errno)));
  auto git = workspace::make_git_material(plan.src, scratch.path);
  if (!git)
    return git.err();

  auto req = c.conn().daemon.vmWorkspacePrepareRequest();
  req.setName(vm);
  auto spec = req.initSpec();
  spec.setHostPath(plan.src.top.string());
  spec.setGuestPath(plan.guest_path);
  spec.setHead(plan.src.head);
  spec.setBranch(plan.src.branch);
  spec.setIncludeUntracked(plan.include_untracked);
  auto& ws = c.conn().io.waitScope;
  auto r = req.send().wait(ws);
  if (failed(r.getError()))
    return from_rpc(r.getError());
  rpc_receiver to(r.getSink(), ws);

  auto last = std::chrono::steady_clock::now();
  bool tty = ::isatty(STDERR_FILENO) == 1;
  auto progress = [&](std::uint64_t files, std::uint64_t bytes) {
    auto now = std::chrono::steady_clock::now();
    if (quiet || now - last < std::chrono::seconds(1))
      return;
    last = now;
    double secs = std::chrono::duration<double>(now - t0).count();
    std::cerr << (tty ? "\r" : "")
              << fmt::format("[{}] workspace: {}/{} files, {} of {} ({}/s)", label, files, plan.src.entries.size(),
                             human_bytes(bytes), human_bytes(plan.src.bytes),
                             human_bytes(static_cast<std::uint64_t>(static_cast<double>(bytes) / secs)))
              << (tty ? "" : "\n") << std::flush;
  };
  auto landed = workspace::send(plan.src, *git, plan.guest_path, to, progress);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!quiet && tty)
    std::cerr << "\r\033[K" << std::flush;
  if (!landed)
    return to.daemon_error() ? *to.daemon_error() : landed.err();
  if (!quiet)
    std::cerr << fmt::format("[{}] workspace: {} files, {} at {} in {:.1f}s\n", label, landed->files,
                             human_bytes(landed->bytes), landed->guest_path, secs);
  shipped_workspace out{landed->guest_path, landed->guest_path, landed->files, landed->bytes, secs};
  if (!plan.src.prefix.empty()) {
    auto prefix = plan.src.prefix;
    if (prefix.back() == '/')
      prefix.pop_back();
    out.start_dir += "/" + prefix;
  }
  return out;
}

int cmd_workspace_prepare(const dirs& d, const output_opts& o, const std::string& name, const workspace_opts& w) {
  if (auto ok = validate_vm_name(name); !ok)
    return report(ok.err(), o);
  auto plan = plan_workspace(w);
  if (!plan)
    return report(plan.err(), o);
  return with_daemon(d, o, [&](client& c) {
    auto shipped = ship_workspace(c, name, **plan, "workspace", o.json);
    if (!shipped)
      return report(shipped.err(), o);
    if (auto synced = sync_home(c, d, name, (*plan)->src.top, "workspace", o.json); !synced)
      return report(synced.err(), o);
    if (o.json)
      std::cout << nlohmann::json{{"vm", name},
                                  {"guest_path", shipped->guest_path},
                                  {"files", shipped->files},
                                  {"bytes", shipped->bytes},
                                  {"seconds", shipped->seconds}}
                     .dump()
                << "\n";
    else
      fmt::print("prepared {}: {} files, {} at {}\n", name, shipped->files, human_bytes(shipped->bytes),
                 shipped->guest_path);
    return 0;
  });
}

std::optional<std::string> workspace_drift(client& c, const std::string& vm, std::shared_ptr<workspace_plan>* resync) {
  auto v = vm_detail::show_on(c, vm);
  if (!v)
    return std::nullopt;
  const auto& ws = v->workspace;
  std::error_code ec;
  if (ws.guest_path.empty() || ws.pending || ws.host_path.empty() || !fs::is_directory(ws.host_path, ec))
    return std::nullopt;
  auto src = workspace::scan(ws.host_path, {.include_untracked = ws.include_untracked});
  if (!src)
    return std::nullopt;
  std::vector<std::string> what;
  if (src->head != ws.head)
    what.push_back(fmt::format("HEAD {} -> {}", ws.head.empty() ? "(none)" : ws.head.substr(0, 12),
                               src->head.empty() ? "(none)" : src->head.substr(0, 12)));
  auto digest = workspace::digest_of(*src);
  if (digest && *digest != ws.digest)
    what.push_back("its files changed");
  if (what.empty())
    return std::nullopt;
  std::string why = what[0] + (what.size() > 1 ? ", " + what[1] : "");
  if (resync) // the scan just made, so re-shipping does not scan again
    if (auto plan = plan_of(std::move(*src), ws.guest_path, ws.include_untracked))
      *resync = std::move(*plan);
  return fmt::format("the checkout {} moved on since VM {}'s workspace was prepared ({}); `banger vm exec "
                     "--auto-prepare` re-syncs it first",
                     ws.host_path, vm, why);
}

int cmd_workspace_show(const dirs& d, const output_opts& o, const std::string& name) {
  if (auto ok = validate_vm_name(name); !ok)
    return report(ok.err(), o);
  return with_daemon(d, o, [&](client& c) {
    auto v = vm_detail::show_on(c, name);
    if (!v)
      return report(v.err(), o);
    const auto& ws = v->workspace;
    if (o.json) {
      std::cout << nlohmann::json::parse(vm_json(*v))["workspace"].dump() << "\n";
      return 0;
    }
    if (ws.guest_path.empty() && !ws.pending) {
      fmt::print("VM {} has no workspace (`banger vm workspace prepare {} PATH` ships one)\n", name, name);
      return 0;
    }
    fmt::print("guest path: {}\nfrom:       {}\nHEAD:       {}{}\nshipped:    {} files, {}, digest {}\n",
               ws.guest_path.empty() ? "-" : ws.guest_path, ws.host_path.empty() ? "-" : ws.host_path,
               ws.head.empty() ? "(no commit)" : ws.head, ws.branch.empty() ? "" : " on " + ws.branch, ws.files,
               human_bytes(ws.bytes), ws.digest.empty() ? "-" : ws.digest);
    if (ws.pending)
      fmt::print("note:       a preparation was cut short; prepare again\n");
    return 0;
  });
}

} // namespace banger::cli
