// bangerd: the banger daemon. main() wires everything explicitly (no globals): directories,
// the single-instance lock, the log, the journal, the CAF actor system (registry + journal
// writer), and the RPC server on the KJ event loop of this thread. It stops on SIGTERM, SIGINT
// or a `shutdown` RPC: actors exit, daemon_stopped is journaled, the journal closes, the
// socket is removed.
#include <csignal>
#include <fcntl.h>
#include <iostream>
#include <thread>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <caf/all.hpp>
#include <kj/async-io.h>
#include <kj/async-unix.h>

#include "actors/catalog.hpp"
#include "actors/failure.hpp"
#include "actors/image/artifact_actor.hpp"
#include "actors/journal_writer.hpp"
#include "actors/journaled.hpp"
#include "actors/messages.hpp"
#include "actors/netpriv/netpriv.hpp"
#include "actors/registry.hpp"
#include "actors/vm/vm_actor.hpp"
#include "common/config.hpp"
#include "common/log.hpp"
#include "common/paths.hpp"
#include "common/process.hpp"
#include "common/subprocess.hpp"
#include "daemon/agents.hpp"
#include "daemon/server.hpp"
#include "journal/journal.hpp"

namespace {

using namespace banger;
using namespace std::chrono_literals;

int fail(const std::string& msg) {
  std::cerr << "bangerd: " << msg << "\n";
  return 1;
}

/// Appends one event to the "daemon" stream through the writer actor and waits for it.
expected<journal::append_result> append_daemon_event(caf::actor_system& sys, const caf::actor& writer,
                                                     journal::payload body, std::string op) {
  return actors::append_blocking(sys, writer, actors::append_request_of("daemon", journal::any_version, {body}, op));
}

/// banger's ssh key pair for `vm ssh` (STATE/ssh/id_ed25519), made on first start. Empty when
/// ssh-keygen is missing (VMs then get no authorized key; `vm exec` still works).
std::filesystem::path ensure_ssh_key(const dirs& d, logger& log) {
  auto dir = d.state / "ssh";
  auto key = dir / "id_ed25519";
  std::error_code ec;
  if (std::filesystem::exists(key, ec) && std::filesystem::exists(key.string() + ".pub", ec))
    return key;
  std::filesystem::create_directories(dir, ec);
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all, ec);
  auto keygen = find_program("ssh-keygen");
  if (!keygen) {
    log.warn("", "ssh-keygen not found (package openssh-client): VMs get no ssh key; `vm ssh` will not work");
    return {};
  }
  std::filesystem::remove(key, ec);
  std::filesystem::remove(key.string() + ".pub", ec);
  auto r = run_process({keygen->string(), "-q", "-t", "ed25519", "-N", "", "-C", "banger", "-f", key.string()});
  if (r.exit_code != 0) {
    log.warn("", "ssh-keygen failed: {}", r.err);
    return {};
  }
  return key;
}

/// Sends `reconcile` to every VM whose journaled phase needs it and waits for all of them (they
/// run concurrently, one worker each). A VM that cannot be settled is logged and left for its
/// actor's later checks; the daemon still starts.
void reconcile_vms(caf::actor_system& sys, const caf::actor& registry, const caf::actor& catalog, logger& log) {
  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::string> names;
  {
    caf::scoped_actor self{sys};
    self->request(catalog, 5min, actors::list_atom::value)
      .receive(
        [&](std::vector<actors::vm_state>& vms) {
          for (const auto& vs : vms)
            if (actors::needs_reconcile(vs))
              names.push_back(vs.name);
        },
        [&](caf::error& e) { log.error("", "reconciliation: the catalog did not answer: {}", sys.render(e)); });
  }
  if (names.empty())
    return;
  caf::scoped_actor self{sys};
  std::size_t adopted = 0, settled = 0, failed = 0;
  std::vector<std::pair<std::string, caf::actor>> vms;
  for (const auto& name : names) {
    self->request(registry, 10s, actors::spawn_atom::value, std::string("vm"), name)
      .receive([&](caf::actor& a) { vms.emplace_back(name, std::move(a)); },
               [&](caf::error& e) {
                 ++failed;
                 log.error("", "vm {}: no actor for reconciliation: {}", name, sys.render(e));
               });
  }
  // All requests go out first (the VMs reconcile concurrently), then the answers are taken.
  using handle = decltype(self->request(caf::actor{}, std::chrono::minutes(2), actors::vm_request{}));
  std::vector<std::pair<std::string, handle>> pending;
  for (const auto& [name, vm] : vms)
    pending.emplace_back(
      name, self->request(vm, std::chrono::minutes(2), actors::vm_request{actors::vm_cmd::reconcile{}, "", {}, {}}));
  for (auto& [name, h] : pending)
    h.receive(
      [&, name = name](expected<actors::vm_state>& r) {
        if (!r) {
          ++failed;
          log.error("", "vm {}: reconciliation: {}", name, r.err().message);
        } else if (actors::vmm_expected(r->phase)) {
          ++adopted;
        } else {
          ++settled;
        }
      },
      [&, name = name](caf::error& e) {
        ++failed;
        log.error("", "vm {}: reconciliation did not answer: {}", name, sys.render(e));
      });
  log.info("", "reconciled {} VMs in {} ms: {} adopted, {} settled, {} failed", names.size(),
           std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count(),
           adopted, settled, failed);
}

struct stop_request {
  std::string reason;
  std::string op; ///< the shutdown RPC's op id, if that is what stopped us
};

struct caf_setup {
  caf::actor_system_config cfg;
  caf_setup() { cfg.set("scheduler.max-threads", 2); }
};

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"bangerd: the banger daemon (normally started by `banger daemon start`)"};
  bool foreground = false;
  bool system_mode = false;
  app.add_flag("--foreground", foreground, "Also log to stderr");
  app.add_flag("--system", system_mode, "Use the system directories (/var/lib/banger, /run/banger, /etc/banger)");
  CLI11_PARSE(app, argc, argv);

  // Signals are captured before any thread exists, so every thread inherits them blocked and
  // only the KJ loop receives them.
  kj::UnixEventPort::captureSignal(SIGTERM);
  kj::UnixEventPort::captureSignal(SIGINT);
  std::signal(SIGPIPE, SIG_IGN);

  unsigned uid = ::geteuid();
  auto d = resolve_dirs(system_mode ? install_mode::system : install_mode::dev, process_env(), uid);
  if (!d)
    return fail(d.err().message);
  if (auto r = ensure_dirs(*d, uid); !r)
    return fail(r.err().message);
  auto lock = lock_single_instance(d->lock_file());
  if (!lock)
    return fail(lock.err().message);
  auto log = logger::open(d->log_file(), foreground);
  if (!log)
    return fail(log.err().message);
  auto boot_id = read_boot_id();
  if (!boot_id)
    return fail(boot_id.err().message);
  // Test-only: the crash tests simulate a host reboot by starting the daemon with another id.
  if (const char* b = std::getenv("BANGER_TEST_BOOT_ID"); b && *b)
    boot_id = std::string(b);

  auto journal = journal::journal::open(d->journal());
  if (!journal) {
    log->error("", "{}", journal.err().message);
    return fail(journal.err().message);
  }
  auto listen_fd = daemon::listen_unix(d->socket());
  if (!listen_fd) {
    log->error("", "{}", listen_fd.err().message);
    return fail(listen_fd.err().message);
  }

  auto config = load_config(d->config / "config.toml");
  if (!config) {
    log->error("", "{}", config.err().message);
    return fail(config.err().message);
  }
  auto net = actors::subnet::parse(config->subnet);
  if (!net)
    return fail((d->config / "config.toml").string() + ": " + net.err().message);
  auto ssh_key = ensure_ssh_key(*d, *log);

  int rc = 0;
  {
    // The KJ event loop of this thread: the RPC server and the guest-agent connections live on
    // it. Created before the actors, destroyed (after the agent pool) before they are awaited, so
    // a VM worker blocked on a call into it gets an error instead of waiting forever.
    auto io_owner = std::make_unique<kj::AsyncIoContext>(kj::setupAsyncIo());
    auto& io = *io_owner;
    caf_setup setup;
    caf::actor_system sys{setup.cfg};
    caf::actor writer = actors::spawn_journal_writer(sys, **journal);
    // Entity kinds: one actor per kernel, per image and (below) per VM name.
    auto self_dir = std::filesystem::read_symlink("/proc/self/exe").parent_path();
    actors::artifact_deps art{
      journal->get(), &writer,
      actors::artifact_store{d->state, self_dir / "banger-agent", self_dir / "banger-init", d->cache}};
    art.store.pulls = config->images;
    actors::registry_config kinds;
    for (auto k : {actors::artifact_kind::kernel, actors::artifact_kind::image})
      kinds.kinds[std::string(actors::to_string(k))] = [art, k](caf::actor_system& s, const std::string& name) {
        return actors::spawn_artifact_actor(s, k, name, art);
      };
    // The network: the netpriv actor holds the root helper's connection.
    actors::net_config ncfg;
    ncfg.bridge = config->bridge;
    ncfg.net = *net;
    ncfg.nat = config->nat;
    ncfg.owner_uid = uid;
    ncfg.helper = helper::launch_options{self_dir / "banger-helper", d->state, d->runtime, uid != 0};
    caf::actor netpriv = actors::spawn_netpriv(sys, ncfg, journal->get(), writer);
    // VMs: one actor per name; their workers share one host (stateless beyond its config).
    auto pool = std::make_unique<daemon::agent_pool>(io);
    actors::host_config hcfg;
    hcfg.state = d->state;
    hcfg.runtime = d->runtime;
    hcfg.images = art.store.kind_dir(actors::artifact_kind::image);
    hcfg.kernels = art.store.kind_dir(actors::artifact_kind::kernel);
    hcfg.templates = d->state / "cache" / "vm-templates";
    if (!ssh_key.empty())
      hcfg.ssh_public_key = ssh_key.string() + ".pub";
    hcfg.known_hosts = d->state / "ssh" / "known_hosts";
    hcfg.bridge = config->bridge;
    hcfg.net = *net;
    hcfg.nat = config->nat;
    hcfg.network = config->network;
    hcfg.boot_snapshots = config->boot_snapshots;
    hcfg.boot_id = *boot_id;
    actors::net_call net_call = [&sys, netpriv](actors::net_request rq) {
      actors::net_reply out = make_error(errc::unavailable, "the network actor did not answer");
      caf::scoped_actor self{sys};
      self->request(netpriv, 5min, std::move(rq))
        .receive([&](actors::net_reply& r) { out = std::move(r); },
                 [&](caf::error& e) { out = actors::from_caf(e, sys, "network actor: "); });
      return out;
    };
    std::shared_ptr<actors::vm_host> host = actors::make_host(hcfg, vmm::make_qemu_driver(), net_call, pool->access());
    actors::vm_deps vdeps{&writer, journal->get(), host};
    kinds.kinds["vm"] = [vdeps](caf::actor_system& s, const std::string& name) {
      return actors::spawn_vm_actor(s, name, vdeps);
    };
    caf::actor registry = actors::spawn_registry(sys, std::move(kinds));
    // The catalog folds every stream once here (from snapshots) and keeps its projection current.
    caf::actor catalog = actors::spawn_catalog(sys, actors::catalog_deps{journal->get(), &registry});
    auto started = append_daemon_event(sys, writer, journal::daemon_started{BANGER_VERSION, ::getpid(), *boot_id}, "");
    if (!started) {
      log->error("", "journal daemon_started: {}", started.err().message);
      rc = fail(started.err().message);
    } else {
      // Reconciliation (DESIGN §4), after the boot id is on record and before any RPC is
      // served, so `vm list` is truthful from the first answer: every VM the journal shows
      // running or mid-start/stop/delete gets its actor (its liveness checks run from then on)
      // and is reconciled with the host: adopted when its VMM still runs as journaled on this
      // boot, else settled with its resources released.
      // VM workers reach guest agents through this thread's event loop (the agent pool), so the
      // loop keeps turning while another thread waits for the reconciliation.
      {
        auto reconciled = kj::newPromiseAndCrossThreadFulfiller<void>();
        std::thread waiter([&] {
          reconcile_vms(sys, registry, catalog, *log);
          reconciled.fulfiller->fulfill();
        });
        reconciled.promise.wait(io.waitScope);
        waiter.join();
      }
      auto stop = kj::newPromiseAndFulfiller<stop_request>();
      daemon::daemon_context ctx;
      ctx.paths = *d;
      ctx.log = *log;
      ctx.journal = journal->get();
      ctx.system = &sys;
      ctx.registry = &registry;
      ctx.catalog = &catalog;
      ctx.writer = &writer;
      ctx.owner_uid = uid;
      ctx.agent_bin = art.store.agent_bin;
      ctx.init_bin = art.store.init_bin;
      ctx.started = std::chrono::steady_clock::now();
      ctx.host = hcfg;
      ctx.ssh_key = ssh_key;
      ctx.agents = pool.get();
      ctx.request_shutdown = [&stop](std::string op) {
        stop.fulfiller->fulfill(stop_request{"shutdown rpc", std::move(op)});
      };

      daemon::server srv(ctx, io, std::move(*listen_fd));
      (*journal)->set_commit_listener([&srv](std::uint64_t) { srv.notify_commit(); });
      log->info("", "bangerd {} pid {} listening on {} (state {})", BANGER_VERSION, ::getpid(), d->socket().string(),
                d->state.string());
      // A pid file for `banger daemon status` when the socket does not answer.
      if (FILE* f = std::fopen(d->pid_file().c_str(), "w")) {
        std::fprintf(f, "%d\n", ::getpid());
        std::fclose(f);
      }
      if (!foreground) {
        // Started detached by the CLI: from here on, errors go to the log only.
        int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
        if (devnull >= 0) {
          ::dup2(devnull, STDIN_FILENO);
          ::dup2(devnull, STDOUT_FILENO);
          ::dup2(devnull, STDERR_FILENO);
          ::close(devnull);
        }
      }

      auto accept = srv.run().then(
        [] {
          return stop_request{"listener closed", ""};
        },
        [](kj::Exception&& e) {
          return stop_request{std::string("listener failed: ") + e.getDescription().cStr(), ""};
        });
      auto sigterm = io.unixEventPort.onSignal(SIGTERM).then([](siginfo_t) { return stop_request{"sigterm", ""}; });
      auto sigint = io.unixEventPort.onSignal(SIGINT).then([](siginfo_t) { return stop_request{"sigint", ""}; });
      auto [reason, stop_op] = stop.promise.exclusiveJoin(kj::mv(sigterm))
                                 .exclusiveJoin(kj::mv(sigint))
                                 .exclusiveJoin(kj::mv(accept))
                                 .wait(io.waitScope);
      log->info(stop_op, "stopping: {}", reason);
      // Journal the stop first, so `events --follow` streams see it before they end.
      auto stopped = append_daemon_event(sys, writer, journal::daemon_stopped{reason}, stop_op);
      if (!stopped)
        log->error("", "journal daemon_stopped: {}", stopped.err().message);
      srv.stop(reason).wait(io.waitScope);
      (*journal)->set_commit_listener(nullptr);
      ::unlink(d->socket().c_str());
      ::unlink(d->pid_file().c_str());
    }
    pool.reset();
    io_owner.reset();
    caf::anon_send_exit(catalog, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(registry, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(netpriv, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(writer, caf::exit_reason::user_shutdown);
    sys.await_all_actors_done();
  }
  journal->reset();
  log->info("", "stopped");
  log->flush();
  return rc;
}
