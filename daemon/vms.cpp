// See vms.hpp.
#include "daemon/vms.hpp"

#include <random>

#include <fmt/core.h>

#include "actors/catalog.hpp"
#include "actors/image/artifact.hpp"
#include "actors/vm/host.hpp"
#include "actors/vm/vm_actor.hpp"
#include "daemon/agents.hpp"
#include "daemon/artifacts.hpp"
#include "daemon/bridge.hpp"
#include "daemon/progress.hpp"
#include "guestfs/image.hpp"
#include "journal/journal.hpp"
#include "schema/fields_capnp.hpp"
#include "workspace/file_sync.hpp"
#include "workspace/pieces_capnp.hpp"
#include "workspace/rules.hpp"

namespace banger::daemon {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using actors::vm_phase;
using actors::vm_state;

namespace {

constexpr auto command_timeout = std::chrono::minutes(30);

bool exists(const vm_state& s) { return s.phase != vm_phase::absent && s.phase != vm_phase::deleted; }

template <class Builder>
void fail(Builder res, error e, const std::string& op) {
  e.op_id = op;
  set_error(res.initError(), e);
}

void fill_info(rpc::VmInfo::Builder b, const daemon_context& ctx, const vm_state& s) {
  b.setName(s.name);
  b.setId(s.id);
  b.setState(std::string(actors::to_string(s.phase)));
  b.setImage(s.image);
  b.setImageVersion(s.image_version);
  b.setKernel(s.kernel);
  b.setKernelVersion(s.kernel_version);
  b.setVcpus(s.vcpus);
  b.setMemoryMib(s.memory_mib);
  b.setDiskMib(s.disk_mib);
  b.setIp(s.ip());
  b.setCreatedNs(s.created_ns);
  b.setStateSinceNs(s.since_ns);
  b.setLastError(s.last_error);
  if (actors::vmm_expected(s.phase) || s.phase == vm_phase::stopping)
    if (const auto* r = s.find(actors::resource_kind::vmm); r && r->acquired)
      b.setPid(std::atoll(r->id.c_str()));
  b.setConsoleLog(actors::paths_of(ctx.host, s.name).console_log().string());
  auto rs = b.initResources(static_cast<unsigned>(s.resources.size()));
  for (unsigned i = 0; i < s.resources.size(); ++i)
    rs.set(i, fmt::format("{}:{}{}", actors::to_string(s.resources[i].kind), s.resources[i].id,
                          s.resources[i].acquired ? "" : " (intended)"));
  auto w = b.initWorkspace();
  w.setHostPath(s.workspace.host_path);
  w.setGuestPath(s.workspace.guest_path);
  w.setHead(s.workspace.head);
  w.setBranch(s.workspace.branch);
  w.setDigest(s.workspace.digest);
  w.setFiles(s.workspace.files);
  w.setBytes(s.workspace.bytes);
  w.setPreparedNs(s.workspace.prepared_ns);
  w.setPending(s.workspace_pending());
  w.setIncludeUntracked(s.workspace.include_untracked);
}

/// The VM called `name` as the catalog has it (current to the last commit), when the name is valid
/// and it exists.
kj::Promise<expected<vm_state>> vm_named(daemon_context& ctx, const std::string& name) {
  if (auto ok = actors::validate_vm_name(name); !ok)
    return expected<vm_state>(ok.err());
  return ask<expected<vm_state>>(*ctx.system, *ctx.catalog, 10000ms, caf::get_atom::value, name)
    .then([](expected<expected<vm_state>> r) { return r ? std::move(*r) : expected<vm_state>(r.err()); });
}

/// The same, when it also runs (require_running: what needs the guest).
kj::Promise<expected<vm_state>> running_vm(daemon_context& ctx, const std::string& name) {
  return vm_named(ctx, name).then([](expected<vm_state> st) -> expected<vm_state> {
    if (!st)
      return st;
    if (auto ok = actors::require_running(*st); !ok)
      return ok.err();
    return st;
  });
}

std::string random_hex(std::size_t n) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string out;
  while (out.size() < n)
    out += fmt::format("{:016x}", rng());
  return out.substr(0, n);
}

/// Sends `rq` to the VM's actor (spawned on demand) and calls `done` with its reply.
template <class F>
kj::Promise<void> command(daemon_context& ctx, const std::string& name, actors::vm_request rq, F done) {
  return vm_request_to(ctx, name, std::move(rq)).then([done](expected<vm_state> r) mutable { done(std::move(r)); });
}

/// The reply of a command into `res`: the error, or the VM (none once it is deleted).
template <class Results>
void answer(daemon_context& ctx, Results res, const std::string& name, const expected<vm_state>& r,
            const std::string& op, std::string_view what) {
  if (!r) {
    ctx.log.warn(op, "vm {}: {}: {}", name, what, r.err().message);
    return fail(res, r.err(), op);
  }
  ctx.log.info(op, "vm {}: {} ({})", name, what, actors::to_string(r->phase));
  if (exists(*r))
    fill_info(res.initInfo(), ctx, *r);
}

/// Wires the call's Progress capability (if any) into the request; returns the pump to join.
template <class Params>
kj::Promise<void> with_progress(Params p, actors::vm_request& rq) {
  if (!p.hasProgress())
    return kj::NEVER_DONE;
  auto [sink, loop] = progress_to(p.getProgress());
  rq.progress = sink;
  return kj::mv(loop);
}

/// What runs, where and with what environment when the caller does not say: the image's
/// Entrypoint + Cmd, else a login shell; in the VM's workspace, else in its image's WorkingDir;
/// with the image's Env under the caller's.
struct exec_defaults {
  std::string workspace;
  std::string working_dir;
  std::vector<std::string> env;
  std::vector<std::string> command{"sh", "-l"};
};

/// The VM's exec defaults: its workspace, and what a pulled image's config asks for (read from
/// the image version's manifest; an image without a config, or one that cannot be read, adds
/// nothing).
exec_defaults defaults_of(const daemon_context& ctx, const vm_state& st) {
  exec_defaults d;
  d.workspace = st.workspace.guest_path;
  if (st.image.empty() || st.image_version.empty())
    return d;
  auto m = guestfs::read_image_manifest(ctx.paths.state / "images" / st.image / st.image_version);
  if (m) {
    d.working_dir = m->config.working_dir;
    d.env = m->config.env;
    if (!m->config.entrypoint.empty() || !m->config.cmd.empty()) {
      d.command = m->config.entrypoint;
      d.command.insert(d.command.end(), m->config.cmd.begin(), m->config.cmd.end());
    }
  }
  return d;
}

/// Runs the exec through the VM's agent with `defaults` where the call left things unsaid.
kj::Promise<void> exec_in(daemon_context& ctx, const std::string& op, const std::string& name, exec_defaults defaults,
                          capnp::CallContext<DaemonRpc::VmExecParams, DaemonRpc::VmExecResults> c);
void ssh_target_of(daemon_context& ctx, const std::string& op, const std::string& name, const vm_state& st,
                   DaemonRpc::VmSshTargetResults::Builder res);

} // namespace

kj::Promise<void> vm_create(daemon_context& ctx, const std::string& op,
                            capnp::CallContext<DaemonRpc::VmCreateParams, DaemonRpc::VmCreateResults> c) {
  auto p = c.getParams();
  auto spec = p.getSpec();
  std::string name = spec.getName();
  if (name.empty())
    name = "vm-" + random_hex(6);
  actors::vm_cmd::create rq;
  rq.id = random_hex(8);
  rq.image = spec.getImage().size() ? std::string(spec.getImage()) : "default";
  rq.kernel = spec.getKernel().size() ? std::string(spec.getKernel()) : "default";
  rq.vcpus = spec.getVcpus() ? spec.getVcpus() : 1;
  rq.memory_mib = spec.getMemoryMib() ? spec.getMemoryMib() : 512;
  rq.disk_mib = spec.getDiskMib() ? spec.getDiskMib() : 2048;
  // Validated here before anything is journaled; the actor's decide_create checks again.
  if (auto ok = actors::validate_vm_name(name); !ok) {
    fail(c.getResults(), ok.err(), op);
    return kj::READY_NOW;
  }
  if (auto ok = actors::validate_vm_shape(rq.vcpus, rq.memory_mib, rq.disk_mib); !ok) {
    fail(c.getResults(), ok.err(), op);
    return kj::READY_NOW;
  }
  rq.start = !p.getNoStart();
  ctx.log.info(op, "vm {}: create from image {} kernel {}, {} vCPU, {} MiB, disk {} MiB", name, rq.image, rq.kernel,
               rq.vcpus, rq.memory_mib, rq.disk_mib);
  // The catalog picks the image's and kernel's current versions and creates the VM through its
  // actor, atomically with any `image rm` / `kernel rm` (catalog.hpp).
  actors::vm_create_order order{name, rq, op, {}};
  kj::Promise<void> progress = kj::NEVER_DONE;
  if (p.hasProgress()) {
    auto [sink, loop] = progress_to(p.getProgress());
    order.progress = sink;
    progress = kj::mv(loop);
  }
  return ask<expected<vm_state>>(*ctx.system, *ctx.catalog, command_timeout, std::move(order))
    .then([&ctx, c, name, op](expected<expected<vm_state>> r) mutable {
      answer(ctx, c.getResults(), name, r ? std::move(*r) : expected<vm_state>(r.err()), op, "create");
    })
    .exclusiveJoin(kj::mv(progress));
}

kj::Promise<void> vm_command(daemon_context& ctx, const std::string& op,
                             capnp::CallContext<DaemonRpc::VmCommandParams, DaemonRpc::VmCommandResults> c) {
  auto p = c.getParams();
  std::string name = p.getName();
  if (auto ok = actors::validate_vm_name(name); !ok) {
    fail(c.getResults(), ok.err(), op);
    return kj::READY_NOW;
  }
  std::optional<actors::vm_command> cmd;
  try {
    cmd = capnp_fields::read_union<actors::vm_command>(capnp::toDynamic(p.getCommand()));
  } catch (const kj::Exception& e) {
    fail(c.getResults(), make_error(errc::bad_request, fmt::format("VM command: {}", e.getDescription().cStr())), op);
    return kj::READY_NOW;
  }
  if (!cmd) {
    fail(c.getResults(),
         make_error(errc::bad_request, "a VM command this bangerd does not know: is the CLI newer than the daemon? "
                                       "`banger daemon stop` and run the command again"),
         op);
    return kj::READY_NOW;
  }
  std::string what(actors::name_of(*cmd));
  actors::vm_request rq{std::move(*cmd), op, {}, {}};
  auto progress = with_progress(p, rq);
  return command(
           ctx, name, std::move(rq),
           [&ctx, c, name, op, what](expected<vm_state> r) mutable { answer(ctx, c.getResults(), name, r, op, what); })
    .exclusiveJoin(kj::mv(progress));
}

kj::Promise<void> vm_list(daemon_context& ctx, const std::string& op,
                          capnp::CallContext<DaemonRpc::VmListParams, DaemonRpc::VmListResults> c) {
  return ask<std::vector<vm_state>>(*ctx.system, *ctx.catalog, 10000ms, actors::list_atom::value)
    .then([&ctx, c, op](expected<std::vector<vm_state>> items) mutable {
      if (!items)
        return fail(c.getResults(), items.err(), op);
      auto out = c.getResults().initItems(static_cast<unsigned>(items->size()));
      for (unsigned i = 0; i < items->size(); ++i)
        fill_info(out[i], ctx, (*items)[i]);
    });
}

kj::Promise<void> vm_show(daemon_context& ctx, const std::string& op,
                          capnp::CallContext<DaemonRpc::VmShowParams, DaemonRpc::VmShowResults> c) {
  return vm_named(ctx, c.getParams().getName()).then([&ctx, c, op](expected<vm_state> st) mutable {
    if (!st)
      return fail(c.getResults(), st.err(), op);
    fill_info(c.getResults().initInfo(), ctx, *st);
  });
}

kj::Promise<void> vm_exec(daemon_context& ctx, const std::string& op,
                          capnp::CallContext<DaemonRpc::VmExecParams, DaemonRpc::VmExecResults> c) {
  auto p = c.getParams();
  std::string name = p.getName();
  if (!p.hasSpec()) { // an empty argv is fine: it runs the image's default command
    fail(c.getResults(), make_error(errc::bad_request, "nothing to run: no exec spec"), op);
    return kj::READY_NOW;
  }
  return running_vm(ctx, name).then([&ctx, c, op, name](expected<vm_state> st) mutable -> kj::Promise<void> {
    if (!st) {
      fail(c.getResults(), st.err(), op);
      return kj::READY_NOW;
    }
    return exec_in(ctx, op, name, defaults_of(ctx, *st), c);
  });
}

namespace {

kj::Promise<void> exec_in(daemon_context& ctx, const std::string& op, const std::string& name, exec_defaults defaults,
                          capnp::CallContext<DaemonRpc::VmExecParams, DaemonRpc::VmExecResults> c) {
  auto socket = actors::paths_of(ctx.host, name).agent_socket();
  auto given_argv = c.getParams().getSpec().getArgv();
  ctx.log.info(op, "vm {}: exec {}", name,
               given_argv.size() ? std::string(given_argv[0]) : "(the image's default command)");
  return ctx.agents->get(name, socket)
    .then([c, op, name, defaults](expected<agent_rpc::Agent::Client> a) mutable -> kj::Promise<void> {
      if (!a) {
        fail(c.getResults(), a.err(), op);
        return kj::READY_NOW;
      }
      auto params = c.getParams();
      auto req = a->execRequest();
      req.setSpec(params.getSpec());
      if (params.getSpec().getArgv().size() == 0) { // no command given: the image's, or a shell
        auto argv = req.getSpec().initArgv(static_cast<unsigned>(defaults.command.size()));
        for (unsigned i = 0; i < defaults.command.size(); ++i)
          argv.set(i, defaults.command[i]);
      }
      const auto& workspace = defaults.workspace;
      std::string cwd = params.getSpec().getCwd();
      if (cwd.empty() && !workspace.empty())
        req.getSpec().setCwd(workspace); // a VM with a workspace: commands start in it
      else if (cwd.empty() && !defaults.working_dir.empty())
        req.getSpec().setCwd(defaults.working_dir);
      if (!defaults.env.empty()) { // the image's Env first: the caller's entries override it
        auto given = params.getSpec().getEnv();
        auto env = req.getSpec().initEnv(static_cast<unsigned>(defaults.env.size() + given.size()));
        unsigned i = 0;
        for (const auto& kv : defaults.env)
          env.set(i++, kv);
        for (auto kv : given)
          env.set(i++, kv);
      }
      // A command in the workspace goes through mise when the guest has it (the agent decides).
      if (!workspace.empty() && (cwd.empty() || cwd == workspace || cwd.rfind(workspace + "/", 0) == 0))
        req.getSpec().setWorkspace(workspace);
      req.setStdout(params.getStdout());
      req.setStderr(params.getStderr());
      return req.send().then(
        [c, op](auto&& r) mutable {
          if (auto ok = failure_of(r); !ok) {
            fail(c.getResults(), ok.err(), op);
            return;
          }
          c.getResults().setProcess(r.getProcess());
        },
        [c, op, name](kj::Exception&& e) mutable {
          fail(c.getResults(),
               make_error(errc::unavailable,
                          fmt::format("VM {}: the guest agent connection failed: {}", name, e.getDescription().cStr())),
               op);
        });
    });
}

} // namespace

kj::Promise<void> vm_ssh_target(daemon_context& ctx, const std::string& op,
                                capnp::CallContext<DaemonRpc::VmSshTargetParams, DaemonRpc::VmSshTargetResults> c) {
  std::string name = c.getParams().getName();
  return running_vm(ctx, name).then([&ctx, c, op, name](expected<vm_state> found) mutable {
    if (!found)
      return fail(c.getResults(), found.err(), op);
    ssh_target_of(ctx, op, name, *found, c.getResults());
  });
}

namespace {

void ssh_target_of(daemon_context& ctx, const std::string& op, const std::string& name, const vm_state& st,
                   DaemonRpc::VmSshTargetResults::Builder res) {
  if (st.ip().empty())
    return fail(res, make_error(errc::unavailable, fmt::format("VM {} has no network address", name)), op);
  std::error_code ec;
  std::string alias = name + ".vm";
  bool known = false;
  if (auto kh = read_file(ctx.host.known_hosts))
    known = kh->find("\n" + alias + " ") != std::string::npos || kh->rfind(alias + " ", 0) == 0;
  if (!known)
    return fail(res,
                make_error(errc::unavailable,
                           fmt::format("VM {} has no ssh host key on record: its image has no sshd (busybox images do "
                                       "not); use `banger vm exec {}` or an image built with --debootstrap",
                                       name, name)),
                op);
  auto t = res.initTarget();
  t.setIp(st.ip());
  t.setUser("root");
  t.setIdentityFile(ctx.ssh_key.string());
  t.setKnownHostsFile(ctx.host.known_hosts.string());
  t.setHostKeyAlias(alias);
  t.setWorkspace(st.workspace.guest_path);
}

} // namespace

namespace {

/// A vmSyncFiles in progress: the files, written one agent call at a time.
struct sync_job {
  agent_rpc::Agent::Client agent;
  std::vector<workspace::synced_file> files;
  std::size_t next = 0;
  std::uint32_t written = 0;
  std::vector<std::string> kept;
};

kj::Promise<expected<void>> write_synced(std::shared_ptr<sync_job> j) {
  if (j->next == j->files.size())
    return expected<void>{};
  const auto& f = j->files[j->next++];
  auto write = [j, &f]() -> kj::Promise<expected<void>> {
    auto req = j->agent.writeFileRequest();
    req.setPath(f.guest_path);
    req.setData(workspace::capnp_bytes(f.data));
    req.setMode(f.mode);
    req.setUid(0);
    req.setGid(0);
    req.setMakeParents(true);
    return req.send().then([j, &f](auto&& r) -> kj::Promise<expected<void>> {
      if (auto ok = failure_of(r); !ok) {
        auto e = ok.err();
        e.message = "writing " + f.guest_path + ": " + e.message;
        return expected<void>(std::move(e));
      }
      ++j->written;
      return write_synced(j);
    });
  };
  if (!f.keep_existing)
    return write();
  // Written where there is nothing, or over a file banger wrote (its marker first); anything
  // else there (the user's own file, too big to read, a directory) stays as it is.
  auto read = j->agent.readFileRequest();
  read.setPath(f.guest_path);
  read.setMaxBytes(1u << 20);
  return read.send().then([j, &f, write](auto&& r) mutable -> kj::Promise<expected<void>> {
    auto read_ok = failure_of(r);
    auto data = r.getData();
    std::string_view have(data.asChars().begin(), data.size());
    if (read_ok ? have.rfind(workspace::identity_marker, 0) == 0 : read_ok.err().code == errc::not_found)
      return write();
    j->kept.push_back(f.guest_path);
    return write_synced(j);
  });
}

/// The files of a vmSyncFiles call, checked as the helper checks its requests: the count and
/// size limits, every guest path strictly below /root, modes without special bits.
expected<std::vector<workspace::synced_file>> synced_files_of(capnp::List<rpc::SyncedFile>::Reader list) {
  if (list.size() > workspace::max_sync_files)
    return make_error(errc::bad_request,
                      fmt::format("{} files to sync; at most {} are taken", list.size(), workspace::max_sync_files));
  std::vector<workspace::synced_file> out;
  std::uint64_t bytes = 0;
  for (auto f : list) {
    workspace::synced_file x{f.getGuestPath(), std::string(f.getData().asChars().begin(), f.getData().size()),
                             f.getMode(), f.getKeepExisting()};
    if (auto ok = workspace::validate_guest_path(x.guest_path); !ok)
      return make_error(errc::bad_request, fmt::format("synced file: {}", ok.err().message));
    if (x.mode > 0777)
      return make_error(errc::bad_request,
                        fmt::format("synced file {}: mode {:o} is not a permission mode", x.guest_path, x.mode));
    bytes += x.data.size();
    if (bytes > workspace::max_sync_bytes)
      return make_error(errc::bad_request, fmt::format("the synced files pass {} bytes; at most that is taken",
                                                       workspace::max_sync_bytes));
    out.push_back(std::move(x));
  }
  return out;
}

} // namespace

kj::Promise<void> vm_sync_files(daemon_context& ctx, const std::string& op,
                                capnp::CallContext<DaemonRpc::VmSyncFilesParams, DaemonRpc::VmSyncFilesResults> c) {
  std::string name = c.getParams().getName();
  auto files = synced_files_of(c.getParams().getFiles());
  if (!files) {
    fail(c.getResults(), files.err(), op);
    return kj::READY_NOW;
  }
  auto job = std::make_shared<sync_job>(sync_job{nullptr, std::move(*files), 0, 0, {}});
  return running_vm(ctx, name)
    .then([&ctx, name](expected<vm_state> st) -> kj::Promise<expected<agent_rpc::Agent::Client>> {
      if (!st)
        return expected<agent_rpc::Agent::Client>(st.err());
      return ctx.agents->get(name, actors::paths_of(ctx.host, name).agent_socket());
    })
    .then([job](expected<agent_rpc::Agent::Client> a) -> kj::Promise<expected<void>> {
      if (!a)
        return expected<void>(a.err());
      job->agent = kj::mv(*a);
      return write_synced(job);
    })
    .then(
      [&ctx, c, op, name, job](expected<void> done) mutable {
        if (!done)
          return fail(c.getResults(), done.err(), op);
        ctx.log.info(op, "vm {}: synced {} files ({} kept as the guest has them)", name, job->written,
                     job->kept.size());
        c.getResults().setWritten(job->written);
        auto kept = c.getResults().initKept(static_cast<unsigned>(job->kept.size()));
        for (unsigned i = 0; i < job->kept.size(); ++i)
          kept.set(i, job->kept[i]);
      },
      [c, op, name](kj::Exception&& e) mutable {
        fail(c.getResults(),
             make_error(errc::unavailable,
                        fmt::format("VM {}: the guest agent connection failed: {}", name, e.getDescription().cStr())),
             op);
      });
}

kj::Promise<expected<vm_state>> vm_request_to(daemon_context& ctx, const std::string& name, actors::vm_request rq) {
  auto& sys = *ctx.system;
  return ask<caf::actor>(sys, *ctx.registry, 10000ms, actors::spawn_atom::value, std::string("vm"), name)
    .then([&sys, rq](expected<caf::actor> a) mutable -> kj::Promise<expected<vm_state>> {
      if (!a)
        return expected<vm_state>(a.err());
      return ask<expected<vm_state>>(sys, *a, command_timeout, rq).then([](expected<expected<vm_state>> r) {
        return r ? std::move(*r) : expected<vm_state>(std::move(r).err());
      });
    });
}

void fill_vm_info(rpc::VmInfo::Builder b, const daemon_context& ctx, const vm_state& s) { fill_info(b, ctx, s); }

namespace {

/// `call(agent)` on the running VM `name`'s agent, over the daemon's connection, bounded at
/// 5 s; a missing VM, a failed connection, an exception or silence (`what` names the call) is
/// the RPC's error.
template <class Context, class F>
kj::Promise<void> on_agent(daemon_context& ctx, const std::string& op, const std::string& name, const char* what,
                           Context c, F call) {
  return running_vm(ctx, name).then(
    [&ctx, c, op, name, what, call](expected<vm_state> st) mutable -> kj::Promise<void> {
      if (!st) {
        fail(c.getResults(), st.err(), op);
        return kj::READY_NOW;
      }
      auto socket = actors::paths_of(ctx.host, name).agent_socket();
      return ctx.agents->get(name, socket)
        .then([&ctx, c, op, name, what, call](expected<agent_rpc::Agent::Client> a) mutable -> kj::Promise<void> {
          if (!a) {
            fail(c.getResults(), a.err(), op);
            return kj::READY_NOW;
          }
          return ctx.agents->timer()
            .timeoutAfter(5 * kj::SECONDS, call(*a, c))
            .catch_([c, op, name, what](kj::Exception&& e) mutable {
              fail(c.getResults(),
                   make_error(errc::unavailable,
                              fmt::format("VM {}'s agent did not answer {}: {}; see `banger vm logs {}`", name, what,
                                          e.getDescription().cStr(), name)),
                   op);
            });
        });
    });
}

} // namespace

kj::Promise<void> vm_ping(daemon_context& ctx, const std::string& op,
                          capnp::CallContext<DaemonRpc::VmPingParams, DaemonRpc::VmPingResults> c) {
  std::string name = c.getParams().getName();
  return on_agent(ctx, op, name, "a ping", c, [](agent_rpc::Agent::Client& agent, auto call) {
    auto t0 = std::chrono::steady_clock::now(); // the ping alone, not the connection
    return agent.pingRequest().send().then([call, t0](auto&& r) mutable {
      auto rtt = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0);
      auto res = call.getResults();
      res.setVersion(r.getVersion());
      res.setUptimeMs(r.getUptimeMs());
      res.setHostname(r.getHostname());
      res.setRttUs(static_cast<std::uint64_t>(rtt.count()));
    });
  });
}

kj::Promise<void> vm_ports(daemon_context& ctx, const std::string& op,
                           capnp::CallContext<DaemonRpc::VmPortsParams, DaemonRpc::VmPortsResults> c) {
  std::string name = c.getParams().getName();
  return on_agent(ctx, op, name, "a ports call", c, [op](agent_rpc::Agent::Client& agent, auto call) {
    return agent.portsRequest().send().then([call, op](auto&& r) mutable {
      if (auto ok = failure_of(r); !ok)
        return fail(call.getResults(), ok.err(), op);
      call.getResults().setPorts(r.getPorts());
    });
  });
}

} // namespace banger::daemon
