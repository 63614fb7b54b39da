// See vms.hpp.
#include "daemon/vms.hpp"

#include <random>

#include <fmt/core.h>

#include "actors/image/artifact.hpp"
#include "actors/vm/host.hpp"
#include "actors/vm/vm_actor.hpp"
#include "daemon/agents.hpp"
#include "daemon/artifacts.hpp"
#include "daemon/bridge.hpp"
#include "daemon/progress.hpp"
#include "journal/journal.hpp"
#include "schema/fields_capnp.hpp"

namespace banger::daemon {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using actors::vm_phase;
using actors::vm_state;

namespace {

constexpr auto command_timeout = std::chrono::minutes(30);

vm_state fold(const daemon_context& ctx, const std::string& name) {
  vm_state st;
  st.name = name;
  return journal::fold_stream(*ctx.journal, actors::vm_stream(name), std::move(st));
}

bool exists(const vm_state& s) { return s.phase != vm_phase::absent && s.phase != vm_phase::deleted; }

error not_found(const std::string& name) {
  return make_error(errc::not_found, fmt::format("no VM named {}; see `banger vm list`", name));
}

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
  if (s.phase == vm_phase::running || s.phase == vm_phase::paused || s.phase == vm_phase::stopping)
    if (const auto* r = s.find(actors::resource_kind::vmm); r && r->acquired)
      b.setPid(std::atoll(r->id.c_str()));
  b.setConsoleLog(actors::paths_of(ctx.host, s.name).console_log().string());
  auto rs = b.initResources(static_cast<unsigned>(s.resources.size()));
  for (unsigned i = 0; i < s.resources.size(); ++i)
    rs.set(i, fmt::format("{}:{}{}", actors::to_string(s.resources[i].kind), s.resources[i].id,
                          s.resources[i].acquired ? "" : " (intended)"));
}

/// The VM called `name`, when the name is valid, it exists and it runs.
expected<vm_state> running_vm(const daemon_context& ctx, const std::string& name) {
  if (auto ok = actors::validate_vm_name(name); !ok)
    return ok.err();
  auto st = fold(ctx, name);
  if (auto ok = actors::require_running(st); !ok)
    return ok.err();
  return st;
}

/// The current version of kernel or image `name`, or an error saying how to get one.
expected<std::string> current_version(const daemon_context& ctx, actors::artifact_kind k, const std::string& name) {
  if (auto v = actors::validate_artifact_name(k, name); !v)
    return v.err();
  auto st = journal::fold_stream(*ctx.journal, actors::stream_of(k, name), actors::artifact_state{});
  if (!st.current.empty())
    return st.current;
  if (k == actors::artifact_kind::kernel)
    return make_error(errc::not_found, fmt::format("no kernel named {}; import one: `banger kernel import {} --apt "
                                                   "linux-image-cloud-amd64` (or `banger setup`)",
                                                   name, name));
  return make_error(errc::not_found, fmt::format("no image named {}; build one: `banger image build {} --busybox` "
                                                 "(or `banger setup` for a Debian image)",
                                                 name, name));
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
  auto& sys = *ctx.system;
  return ask<caf::actor>(sys, *ctx.registry, 10000ms, actors::spawn_atom::value, std::string("vm"), name)
    .then([&sys, rq, done](expected<caf::actor> a) mutable -> kj::Promise<void> {
      if (!a) {
        done(expected<vm_state>(a.err()));
        return kj::READY_NOW;
      }
      return ask<expected<vm_state>>(sys, *a, command_timeout, rq).then([done](expected<expected<vm_state>> r) mutable {
        done(r ? std::move(*r) : expected<vm_state>(std::move(r).err()));
      });
    });
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

} // namespace

std::uint32_t vms_using(const daemon_context& ctx, std::string_view kind, const std::string& name) {
  auto streams = ctx.journal->streams();
  if (!streams)
    return 0;
  std::uint32_t n = 0;
  for (const auto& s : *streams) {
    if (s.rfind("vm/", 0) != 0)
      continue;
    auto st = fold(ctx, s.substr(3));
    if (exists(st) && (kind == "kernel" ? st.kernel : st.image) == name)
      ++n;
  }
  return n;
}

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
  auto image = current_version(ctx, actors::artifact_kind::image, rq.image);
  auto kernel = current_version(ctx, actors::artifact_kind::kernel, rq.kernel);
  if (!image || !kernel) {
    fail(c.getResults(), image ? kernel.err() : image.err(), op);
    return kj::READY_NOW;
  }
  rq.image_version = *image;
  rq.kernel_version = *kernel;
  rq.start = !p.getNoStart();
  ctx.log.info(op, "vm {}: create from image {} ({}) kernel {} ({}), {} vCPU, {} MiB, disk {} MiB", name, rq.image,
               rq.image_version, rq.kernel, rq.kernel_version, rq.vcpus, rq.memory_mib, rq.disk_mib);
  actors::vm_request req{rq, op, {}};
  auto progress = with_progress(p, req);
  return command(
           ctx, name, std::move(req),
           [&ctx, c, name, op](expected<vm_state> r) mutable { answer(ctx, c.getResults(), name, r, op, "create"); })
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
  actors::vm_request rq{std::move(*cmd), op, {}};
  auto progress = with_progress(p, rq);
  return command(
           ctx, name, std::move(rq),
           [&ctx, c, name, op, what](expected<vm_state> r) mutable { answer(ctx, c.getResults(), name, r, op, what); })
    .exclusiveJoin(kj::mv(progress));
}

void vm_list(daemon_context& ctx, const std::string& op,
             capnp::CallContext<DaemonRpc::VmListParams, DaemonRpc::VmListResults> c) {
  auto streams = ctx.journal->streams();
  if (!streams)
    return fail(c.getResults(), streams.err(), op);
  std::vector<vm_state> items;
  for (const auto& s : *streams)
    if (s.rfind("vm/", 0) == 0)
      if (auto st = fold(ctx, s.substr(3)); exists(st))
        items.push_back(std::move(st));
  auto out = c.getResults().initItems(static_cast<unsigned>(items.size()));
  for (unsigned i = 0; i < items.size(); ++i)
    fill_info(out[i], ctx, items[i]);
}

void vm_show(daemon_context& ctx, const std::string& op,
             capnp::CallContext<DaemonRpc::VmShowParams, DaemonRpc::VmShowResults> c) {
  std::string name = c.getParams().getName();
  if (auto ok = actors::validate_vm_name(name); !ok)
    return fail(c.getResults(), ok.err(), op);
  auto st = fold(ctx, name);
  if (!exists(st))
    return fail(c.getResults(), not_found(name), op);
  fill_info(c.getResults().initInfo(), ctx, st);
}

kj::Promise<void> vm_exec(daemon_context& ctx, const std::string& op,
                          capnp::CallContext<DaemonRpc::VmExecParams, DaemonRpc::VmExecResults> c) {
  auto p = c.getParams();
  std::string name = p.getName();
  if (auto st = running_vm(ctx, name); !st) {
    fail(c.getResults(), st.err(), op);
    return kj::READY_NOW;
  }
  if (!p.hasSpec() || p.getSpec().getArgv().size() == 0) {
    fail(c.getResults(), make_error(errc::bad_request, "nothing to run: give a command"), op);
    return kj::READY_NOW;
  }
  auto socket = actors::paths_of(ctx.host, name).agent_socket();
  ctx.log.info(op, "vm {}: exec {}", name, std::string(p.getSpec().getArgv()[0]));
  return ctx.agents->get(name, socket)
    .then([c, op, name](expected<agent_rpc::Agent::Client> a) mutable -> kj::Promise<void> {
      if (!a) {
        fail(c.getResults(), a.err(), op);
        return kj::READY_NOW;
      }
      auto params = c.getParams();
      auto req = a->execRequest();
      req.setSpec(params.getSpec());
      req.setStdout(params.getStdout());
      req.setStderr(params.getStderr());
      return req.send().then(
        [c, op](auto&& r) mutable {
          if (r.getFailure().getCode() != 0) {
            fail(c.getResults(),
                 error{errc_from_number(r.getFailure().getCode()), r.getFailure().getMessage().cStr(), op}, op);
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

void vm_ssh_target(daemon_context& ctx, const std::string& op,
                   capnp::CallContext<DaemonRpc::VmSshTargetParams, DaemonRpc::VmSshTargetResults> c) {
  std::string name = c.getParams().getName();
  auto found = running_vm(ctx, name);
  if (!found)
    return fail(c.getResults(), found.err(), op);
  const auto& st = *found;
  if (st.ip().empty())
    return fail(c.getResults(), make_error(errc::unavailable, fmt::format("VM {} has no network address", name)), op);
  std::error_code ec;
  std::string alias = name + ".vm";
  bool known = false;
  if (auto kh = read_file(ctx.host.known_hosts))
    known = kh->find("\n" + alias + " ") != std::string::npos || kh->rfind(alias + " ", 0) == 0;
  if (!known)
    return fail(c.getResults(),
                make_error(errc::unavailable,
                           fmt::format("VM {} has no ssh host key on record: its image has no sshd (busybox images do "
                                       "not); use `banger vm exec {}` or an image built with --debootstrap",
                                       name, name)),
                op);
  auto t = c.getResults().initTarget();
  t.setIp(st.ip());
  t.setUser("root");
  t.setIdentityFile(ctx.ssh_key.string());
  t.setKnownHostsFile(ctx.host.known_hosts.string());
  t.setHostKeyAlias(alias);
}

} // namespace banger::daemon
