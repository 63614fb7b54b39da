// bench-recovery: how long bangerd takes from exec to its first answered RPC when the journal
// holds many VMs' histories, without and with stream snapshots (docs/journal.md, "Snapshots"),
// and what `banger vm list` costs then. Printed, never asserted (STYLE: tests never assert on
// wall time). Target (issue #5 §5): 1,000 VMs × 10 events, restart to first answer <= 1 s.
//
// Everything happens in a private banger world under /tmp (XDG state/runtime/config/cache), with
// config.toml `network = false` so the daemon needs no root helper (the bench checks that none
// was started). Steps:
//   1. a journal is written straight through journal::open (no daemon): per VM, a realistic
//      life of 10 events (create+start command, vm_created, vm_starting, a tap's intent and
//      fact, vm_running, stop command, vm_stopping, the tap's release, vm_stopped); every 100th
//      VM is then deleted (3 more events). It is reopened once (RocksDB moves its write-ahead
//      log into a table file), as a daemon-written journal would have been. No snapshots: this
//      is the "without" journal.
//   2. a first daemon runs on it, unmeasured: it makes its ssh key, and its start-up scan folds
//      every VM stream and so writes the snapshots. Its state dir is the "with" state; the
//      "without" state is the same dir with the journal as written in step 1.
//   3. without, then with: --runs times each, a fresh copy of the state dir, exec bangerd, poll
//      the status RPC until it answers, stop the daemon (SIGTERM).
//   4. `banger vm list --json` and `vm list -a --json` (processes, as a user runs them; answered
//      from the catalog's projection, actors/catalog.hpp) --runs
//      times against a daemon on the "with" journal, beside `banger daemon status` (the cost of
//      a CLI process and one RPC). Both lists fold every VM stream; -a also prints them all.
//   5. the fold alone, in-process, over every VM stream: plain and from snapshots (the "with"
//      journal, read-only), and from none while writing them (a copy of "without", writable).
// The poll is in-process: cli::cmd_daemon_status (the CLI's own connect + `status` RPC, stdout
// sent to /dev/null while it runs) every millisecond; bangerd binds its socket early but serves
// only after its start-up reconciliation, so the first answer is the first answerable RPC.
//
// Usage: bench-recovery [--runs N] [--vms N] [--keep DIR] (copies the two state dirs, each a
// STATE/banger, to DIR/without and DIR/with). Single-threaded. The temporary directory is
// removed and any daemon it started is stopped on every exit path except a signal.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "actors/vm/vm.hpp"
#include "actors/vm/vm_snapshot.hpp"
#include "cli/commands.hpp"
#include "common/paths.hpp"
#include "common/process.hpp"
#include "journal/journal.hpp"
#include "tests/support/proc.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
using namespace banger;

struct bench_failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};
[[noreturn]] void fail(const std::string& what) { throw bench_failure(what); }

struct config {
  int runs = 5;
  int vms = 1000;
  fs::path keep; ///< where to copy the "without" and "with" state dirs, for a closer look
};

config parse(int argc, char** argv) {
  config c;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> int {
      if (i + 1 >= argc)
        fail(a + " needs a value");
      return std::stoi(argv[++i]);
    };
    if (a == "--runs")
      c.runs = std::max(1, value());
    else if (a == "--vms")
      c.vms = std::max(1, value());
    else if (a == "--keep" && i + 1 < argc)
      c.keep = argv[++i];
    else
      fail("usage: bench-recovery [--runs N] [--vms N] [--keep DIR]");
  }
  return c;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

std::string samples(const std::vector<double>& v, double scale, const char* fmt_one) {
  std::string out;
  for (double x : v)
    out += (out.empty() ? "" : " ") + fmt::format(fmt::runtime(fmt_one), x * scale);
  return out;
}

double since(steady::time_point t0) { return std::chrono::duration<double>(steady::now() - t0).count(); }

/// The private world: XDG dirs under `root`, the environment that selects them.
struct world {
  fs::path root;
  std::map<std::string, std::string> env;
  dirs d;

  explicit world(const fs::path& r) : root(r) {
    env = {{"XDG_STATE_HOME", (r / "state").string()},
           {"XDG_RUNTIME_DIR", (r / "run").string()},
           {"XDG_CONFIG_HOME", (r / "config").string()},
           {"XDG_CACHE_HOME", (r / "cache").string()},
           {"NO_COLOR", "1"}};
    auto lookup = [this](const std::string& k) -> std::optional<std::string> {
      auto it = env.find(k);
      return it == env.end() ? std::nullopt : std::optional<std::string>(it->second);
    };
    auto resolved = resolve_dirs(install_mode::dev, lookup, ::geteuid());
    if (!resolved)
      fail(resolved.err().message);
    d = *resolved;
    if (auto ok = ensure_dirs(d, ::geteuid()); !ok)
      fail(ok.err().message);
    std::ofstream(d.config / "config.toml") << "# bench-recovery: no network, so no root helper\nnetwork = false\n";
  }
};

/// Writes the "without" journal: `vms` VM lives, 10 events each, every 100th deleted after.
std::size_t write_journal(const fs::path& dir, int vms) {
  auto j = journal::journal::open(dir);
  if (!j)
    fail(j.err().message);
  std::vector<journal::append_request> batch;
  std::size_t events = 0;
  auto flush = [&] {
    for (auto& r : (*j)->append_batch(std::move(batch)))
      if (!r)
        fail(r.err().message);
    batch.clear();
  };
  for (int i = 0; i < vms; ++i) {
    std::string name = fmt::format("vm-{:04}", i), tap = fmt::format("bgt{}", i);
    actors::vm_cmd::create r;
    r.start = true;
    r.vcpus = 1;
    r.memory_mib = 512;
    r.disk_mib = 2048;
    r.id = fmt::format("{:08x}", 0x5eed0000u + static_cast<unsigned>(i));
    r.image = r.kernel = "default";
    r.image_version = "img-0123456789abcdef";
    r.kernel_version = "k-0123456789abcdef";
    std::string op = fmt::format("op-{:06x}", i);
    std::vector<journal::payload> life{
      actors::record_of(r),
      journal::vm_created{r.id, r.image, r.image_version, r.kernel, r.kernel_version, r.vcpus, r.memory_mib,
                          r.disk_mib},
      journal::vm_starting{r.kernel_version},
      journal::resource_intended{"tap", tap},
      journal::resource_acquired{"tap", tap, ""},
      journal::vm_running{1800},
      actors::record_of(actors::vm_cmd::stop{}),
      journal::vm_stopping{"stop"},
      journal::resource_released{"tap", tap},
      journal::vm_stopped{"stopped"},
    };
    if (i % 100 == 99)
      for (journal::payload p : {journal::payload(actors::record_of(actors::vm_cmd::remove{})),
                                 journal::payload(journal::vm_deleting{}), journal::payload(journal::vm_deleted{})})
        life.push_back(std::move(p));
    journal::append_request req{actors::vm_stream(name), 0, {}};
    for (auto& p : life)
      req.events.push_back({op, std::move(p)});
    events += req.events.size();
    batch.push_back(std::move(req));
    if (batch.size() == 100)
      flush();
  }
  if (!batch.empty())
    flush();
  j->reset();
  // Reopen once: RocksDB replays the write-ahead log into a table file at open, which a daemon
  // would otherwise pay at every measured start of the "without" journal (a daemon-written
  // journal has had that done by the start after its writes).
  if (auto again = journal::journal::open(dir); !again)
    fail(again.err().message);
  return events;
}

/// Runs `fn` with stdout on /dev/null (the CLI's commands print their answers).
template <class F>
int quietly(F&& fn) {
  std::fflush(stdout);
  int saved = ::dup(STDOUT_FILENO);
  int devnull = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  ::dup2(devnull, STDOUT_FILENO);
  ::close(devnull);
  int rc = fn();
  std::fflush(stdout);
  ::dup2(saved, STDOUT_FILENO);
  ::close(saved);
  return rc;
}

/// Child processes of `pid` (to see whether the daemon started a helper).
std::vector<std::string> children_of(int pid) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator("/proc")) {
    auto stat = read_file(e.path() / "stat");
    if (!stat)
      continue;
    auto close = stat->rfind(')');
    if (close == std::string::npos)
      continue;
    int ppid = 0;
    char state = 0;
    if (std::sscanf(stat->c_str() + close + 1, " %c %d", &state, &ppid) == 2 && ppid == pid)
      out.push_back(stat->substr(stat->find('(') + 1, close - stat->find('(') - 1));
  }
  return out;
}

/// A bangerd on `w`, stopped (SIGTERM, then SIGKILL) when it goes out of scope.
struct daemon_run {
  world& w;
  int pid = -1;
  double to_first_answer = 0; ///< exec to the first answered status RPC, seconds
  std::vector<std::string> children;

  explicit daemon_run(world& wd) : w(wd) {
    auto bin = fs::read_symlink("/proc/self/exe").parent_path();
    auto t0 = steady::now();
    pid = test::spawn({(bin / "bangerd").string()}, w.env, w.root);
    cli::output_opts quiet;
    while (quietly([&] { return cli::cmd_daemon_status(w.d, quiet); }) != 0) {
      if (since(t0) > 120)
        fail("bangerd did not answer within 120 s; see " + (w.d.state / "bangerd.log").string());
      if (::waitpid(pid, nullptr, WNOHANG) == pid) {
        pid = -1;
        auto err = read_file(w.root / "spawn.err");
        fail("bangerd exited at start: " + (err ? *err : std::string()) + "; see " +
             (w.d.state / "bangerd.log").string());
      }
      std::this_thread::sleep_for(1ms);
    }
    to_first_answer = since(t0);
    children = children_of(pid);
  }
  ~daemon_run() { stop(); }
  void stop() {
    if (pid <= 0)
      return;
    ::kill(pid, SIGTERM);
    auto t0 = steady::now();
    while (::waitpid(pid, nullptr, WNOHANG) != pid) {
      if (since(t0) > 30) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        break;
      }
      std::this_thread::sleep_for(5ms);
    }
    pid = -1;
  }
};

/// Replaces the world's state dir with a copy of `source` (a state dir of an earlier run).
void install_state(world& w, const fs::path& source) {
  fs::remove_all(w.d.state);
  fs::copy(source, w.d.state, fs::copy_options::recursive);
  fs::remove(w.d.socket());
}

/// A vm_state without the snapshot functions: fold_stream folds it the plain way.
struct plain_vm {
  actors::vm_state s;
};
plain_vm apply(plain_vm p, const journal::stored_event& e) { return {apply(std::move(p.s), e)}; }

/// Folds every vm/ stream of the journal at `dir`; seconds. Read-only: no snapshot is written.
template <class State>
double fold_all(const fs::path& dir, std::size_t& folded, bool read_only = true) {
  auto j = journal::journal::open(dir, journal::options{read_only, {}});
  if (!j)
    fail(j.err().message);
  auto t0 = steady::now();
  folded = 0;
  auto streams = (*j)->streams();
  if (!streams)
    fail(streams.err().message);
  for (const auto& s : *streams)
    if (s.rfind("vm/", 0) == 0) {
      auto st = journal::fold_stream(**j, s, State{});
      folded += 1;
      (void)st;
    }
  return since(t0);
}

std::size_t snapshots_in(const fs::path& dir) {
  auto j = journal::journal::open(dir, journal::options{true, {}});
  if (!j)
    fail(j.err().message);
  std::size_t n = 0;
  for (const auto& s : *(*j)->streams())
    if (auto snap = (*j)->get_snapshot(s); snap && *snap)
      ++n;
  return n;
}

int bench(const config& cfg) {
  test::temp_dir tmp("banger-bench-recovery");
  world w(tmp.path / "world");
  auto pristine = tmp.path / "pristine", without = tmp.path / "without", with = tmp.path / "with";

  auto t0 = steady::now();
  fs::create_directories(w.d.state);
  auto events = write_journal(w.d.journal(), cfg.vms);
  fs::copy(w.d.journal(), pristine, fs::copy_options::recursive);
  fmt::print("journal: {} VMs, {} events ({} deleted VMs with 13 events, the rest 10), written in {:.1f} s, "
             "{:.1f} MB\n",
             cfg.vms, events, cfg.vms / 100, since(t0), [&] {
               std::uintmax_t b = 0;
               for (const auto& e : fs::recursive_directory_iterator(pristine))
                 if (e.is_regular_file())
                   b += e.file_size();
               return static_cast<double>(b) / 1e6;
             }());
  fmt::print("daemon: config.toml network = false; poll: status RPC in-process (cli::cmd_daemon_status) every 1 ms\n");

  // A first, unmeasured daemon makes what every later start finds (its ssh key) and, folding every
  // VM stream at start, the snapshots: its state dir is "with". "without" is the same state dir
  // with the journal as written (no snapshots), so the two differ only in the snapshots (and the
  // two daemon events and the write-ahead log of that first run).
  bool helper_seen = false;
  auto note_children = [&](const daemon_run& r) {
    for (const auto& c : r.children)
      helper_seen = helper_seen || c.find("helper") != std::string::npos;
  };
  {
    daemon_run first(w);
    note_children(first);
  }
  fs::copy(w.d.state, with, fs::copy_options::recursive);
  fs::remove(with / "bangerd.log");
  fs::copy(with, without, fs::copy_options::recursive);
  fs::remove_all(without / "journal");
  fs::copy(pristine, without / "journal", fs::copy_options::recursive);

  std::vector<double> cold, warm;
  for (int i = 0; i < cfg.runs; ++i) {
    install_state(w, without);
    daemon_run r(w);
    cold.push_back(r.to_first_answer);
    note_children(r);
  }
  auto snaps = snapshots_in(with / "journal");
  for (int i = 0; i < cfg.runs; ++i) {
    install_state(w, with);
    daemon_run r(w);
    warm.push_back(r.to_first_answer);
    note_children(r);
  }

  // vm list and status through CLI processes, against a daemon on the "with" journal.
  std::vector<double> list, list_all, status;
  std::size_t listed = 0;
  {
    install_state(w, with);
    daemon_run r(w);
    auto bin = fs::read_symlink("/proc/self/exe").parent_path();
    for (int i = 0; i < cfg.runs; ++i) {
      auto t = steady::now();
      auto l = test::run({(bin / "banger").string(), "vm", "list", "--json"}, w.env);
      list.push_back(since(t));
      if (l.exit_code != 0)
        fail("banger vm list failed: " + l.err);
      t = steady::now();
      auto a = test::run({(bin / "banger").string(), "vm", "list", "-a", "--json"}, w.env);
      list_all.push_back(since(t));
      if (a.exit_code != 0)
        fail("banger vm list -a failed: " + a.err);
      listed = nlohmann::json::parse(a.out).size();
      t = steady::now();
      auto s = test::run({(bin / "banger").string(), "daemon", "status"}, w.env);
      status.push_back(since(t));
      if (s.exit_code != 0)
        fail("banger daemon status failed: " + s.err);
    }
  }

  std::size_t folded = 0;
  std::vector<double> fold_plain, fold_snap, fold_write;
  for (int i = 0; i < cfg.runs; ++i) {
    fold_plain.push_back(fold_all<plain_vm>(with / "journal", folded));
    fold_snap.push_back(fold_all<actors::vm_state>(with / "journal", folded));
    auto probe = tmp.path / "probe";
    fs::remove_all(probe);
    fs::copy(without / "journal", probe, fs::copy_options::recursive);
    fold_write.push_back(fold_all<actors::vm_state>(probe, folded, false));
  }

  fmt::print("snapshots written by the first (unmeasured) daemon: {} of {} VM streams\n", snaps, cfg.vms);
  fmt::print("root helper started by a daemon: {}\n\n", helper_seen ? "YES (unexpected)" : "no");
  fmt::print("{:<48} {:>9}   {}\n", "figure (median of " + std::to_string(cfg.runs) + ")", "median", "samples");
  auto row = [](const std::string& name, const std::vector<double>& v) {
    fmt::print("{:<48} {:>6.0f} ms   {}\n", name, median(v) * 1000, samples(v, 1000, "{:.0f}"));
  };
  row("restart to first answer, without snapshots", cold);
  row("restart to first answer, with snapshots", warm);
  row("`banger vm list --json` (running: none)", list);
  row(fmt::format("`banger vm list -a --json` ({} VMs)", listed), list_all);
  row("`banger daemon status` (CLI process + 1 RPC)", status);
  row(fmt::format("fold of {} VM streams, plain", folded), fold_plain);
  row(fmt::format("fold of {} VM streams, from snapshots", folded), fold_snap);
  row(fmt::format("fold of {} VM streams, writing snapshots", folded), fold_write);
  if (!cfg.keep.empty()) {
    fs::create_directories(cfg.keep);
    fs::copy(without, cfg.keep / "without", fs::copy_options::recursive | fs::copy_options::overwrite_existing);
    fs::copy(with, cfg.keep / "with", fs::copy_options::recursive | fs::copy_options::overwrite_existing);
    fmt::print("state dirs kept in {}\n", cfg.keep.string());
  }
  fmt::print("\ntarget: restart to the first answered RPC <= 1000 ms with {} VMs: {}\n", cfg.vms,
             median(warm) <= 1.0 ? "met" : "NOT met");
  // Issue #11: `vm list` answered from the catalog's projection instead of folding every stream
  // on each call: at most 10 ms, about what `daemon status` (a CLI process and one RPC) costs,
  // measured in this same run.
  fmt::print("target: `banger vm list --json` <= 10 ms with {} VMs: {} ({:.0f} ms; `daemon status` {:.0f} ms)\n",
             cfg.vms, median(list) <= 0.010 ? "met" : "NOT met", median(list) * 1000, median(status) * 1000);
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  try {
    auto cfg = parse(argc, argv);
    auto bin = fs::read_symlink("/proc/self/exe").parent_path();
    for (const char* b : {"banger", "bangerd"})
      if (!fs::exists(bin / b))
        fail(fmt::format("{} is not built in {} (ninja {})", b, bin.string(), b));
    return bench(cfg);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench-recovery: %s\n", e.what());
    return 1;
  }
}
