// See artifacts.hpp.
//
// Progress: the artifact actor calls a progress_sink on a CAF thread. The sink only queues the
// update (coalescing byte counts within a stage) and wakes a pump on the KJ thread through a
// cross-thread fulfiller; the pump sends Progress.update with streaming flow control. CAF
// threads never block on the client.
#include "daemon/artifacts.hpp"

#include <algorithm>
#include <deque>
#include <mutex>

#include "actors/catalog.hpp"
#include "actors/image/artifact.hpp"
#include "actors/image/jobs.hpp"
#include "actors/messages.hpp"
#include "common/process.hpp"
#include "daemon/bridge.hpp"
#include "daemon/progress.hpp"
#include "fetch/blob_cache.hpp"
#include "journal/journal.hpp"

namespace banger::daemon {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using actors::artifact_kind;

namespace {

artifact_kind kind_of(rpc::ArtifactKind k) {
  return k == rpc::ArtifactKind::KERNEL ? artifact_kind::kernel : artifact_kind::image;
}

actors::artifact_store store_of(const daemon_context& ctx) {
  return actors::artifact_store{ctx.paths.state, ctx.agent_bin, ctx.init_bin, ctx.paths.cache};
}

expected<actors::artifact_source> source_of(rpc::ArtifactSource::Reader r) {
  actors::artifact_source s;
  using t = actors::artifact_source::type;
  switch (r.which()) {
  case rpc::ArtifactSource::DEB:
    s.kind = t::deb;
    s.path = r.getDeb();
    break;
  case rpc::ArtifactSource::APT:
    s.kind = t::apt;
    s.package = r.getApt();
    break;
  case rpc::ArtifactSource::VMLINUX:
    s.kind = t::vmlinux;
    s.path = r.getVmlinux().getPath();
    s.initrd = r.getVmlinux().getInitrd();
    s.modules = r.getVmlinux().getModules();
    break;
  case rpc::ArtifactSource::BUSYBOX: s.kind = t::busybox; break;
  case rpc::ArtifactSource::DEBOOTSTRAP:
    s.kind = t::debootstrap;
    if (r.getDebootstrap().getSuite().size() > 0)
      s.suite = r.getDebootstrap().getSuite();
    for (auto p : r.getDebootstrap().getPackages())
      s.packages.emplace_back(p);
    std::sort(s.packages.begin(), s.packages.end());
    break;
  case rpc::ArtifactSource::DIR:
    s.kind = t::dir;
    s.path = r.getDir();
    break;
  case rpc::ArtifactSource::TAR:
    s.kind = t::tar;
    s.path = r.getTar();
    break;
  case rpc::ArtifactSource::CATALOG:
    s.kind = t::catalog;
    s.url = r.getCatalog();
    break;
  case rpc::ArtifactSource::REGISTRY: {
    auto g = r.getRegistry();
    s.kind = t::registry;
    s.reference = g.getReference();
    s.platform = g.getPlatform();
    s.plain_http = g.getPlainHttp();
    s.username = g.getUsername();
    s.password = g.getPassword();
    break;
  }
  default: return make_error(errc::bad_request, "unknown artifact source (a newer banger client?)");
  }
  return s;
}

actors::artifact_state fold(const daemon_context& ctx, artifact_kind k, const std::string& name) {
  return journal::fold_stream(*ctx.journal, actors::stream_of(k, name), actors::artifact_state{});
}

void fill_version(rpc::ArtifactVersion::Builder b, const actors::artifact_version& v) {
  b.setId(v.id);
  b.setManifestSha256(v.manifest_sha256);
  b.setBytes(v.bytes);
  b.setSummary(v.summary);
  b.setSource(v.source);
  b.setCreatedNs(v.created_ns);
}

void fill_info(rpc::ArtifactInfo::Builder b, const daemon_context& ctx, artifact_kind k, const std::string& name,
               const actors::artifact_state& st) {
  b.setKind(k == artifact_kind::kernel ? rpc::ArtifactKind::KERNEL : rpc::ArtifactKind::IMAGE);
  b.setName(name);
  b.setCurrent(st.current);
  auto vs = b.initVersions(static_cast<unsigned>(st.versions.size()));
  for (unsigned i = 0; i < st.versions.size(); ++i)
    fill_version(vs[i], st.versions[i]);
  b.setBuilding(st.in_progress.value_or(""));
  b.setStage(st.stage);
  b.setLastFailure(st.last_failure.value_or(""));
  if (!st.current.empty())
    b.setPath(store_of(ctx).version_dir(k, name, st.current).string());
}

} // namespace

kj::Promise<void>
artifact_build(daemon_context& ctx, const std::string& op,
               capnp::CallContext<rpc::Daemon::ArtifactBuildParams, rpc::Daemon::ArtifactBuildResults> c) {
  auto p = c.getParams();
  auto k = kind_of(p.getKind());
  std::string name = p.getName();
  auto fail = [c, op](error e) mutable {
    e.op_id = op;
    set_error(c.getResults().initError(), e);
  };
  if (auto v = actors::validate_artifact_name(k, name); !v) {
    fail(v.err());
    return kj::READY_NOW;
  }
  auto source = source_of(p.getSource());
  if (!source) {
    fail(source.err());
    return kj::READY_NOW;
  }
  if (auto ok = actors::check_source(k, *source); !ok) {
    fail(ok.err());
    return kj::READY_NOW;
  }
  ctx.log.info(op, "{} {}: build from {}", actors::to_string(k), name, source->key());

  actors::artifact_request cmd{actors::artifact_cmd::build{*source}, op, {}};
  kj::Promise<void> progress_loop = kj::NEVER_DONE;
  if (p.hasProgress()) {
    auto q = std::make_shared<progress_queue>();
    cmd.progress = std::make_shared<std::function<void(const actors::progress_update&)>>(
      [q](const actors::progress_update& u) { q->push(u); });
    // A client that stops listening to progress does not end the build.
    progress_loop = pump_progress(q, p.getProgress()).catch_([](kj::Exception&&) {}).then([]() -> kj::Promise<void> {
      return kj::NEVER_DONE;
    });
  }
  auto& sys = *ctx.system;
  auto registry = *ctx.registry;
  return ask<caf::actor>(sys, registry, 10000ms, actors::spawn_atom::value, std::string(actors::to_string(k)), name)
    .then([&ctx, &sys, cmd, k, name, c, op, fail](expected<caf::actor> a) mutable -> kj::Promise<void> {
      if (!a) {
        fail(a.err());
        return kj::READY_NOW;
      }
      caf::actor target = *a;
      return ask<actors::artifact_reply>(sys, target, std::chrono::hours(6), cmd)
        .then([&ctx, k, name, c, op, fail](expected<actors::artifact_reply> asked) mutable {
          auto r = asked ? std::move(*asked) : actors::artifact_reply(asked.err());
          if (!r) {
            ctx.log.warn(op, "{} {}: {}", actors::to_string(k), name, r.err().message);
            fail(r.err());
            return;
          }
          ctx.log.info(op, "{} {}: version {} ready ({})", actors::to_string(k), name, r->result.version_id,
                       r->result.summary);
          auto res = c.getResults();
          auto st = fold(ctx, k, name);
          fill_info(res.initInfo(), ctx, k, name, st);
          if (const auto* v = st.current_version())
            fill_version(res.initVersion(), *v);
          res.setJoined(r->joined);
        });
    })
    .exclusiveJoin(kj::mv(progress_loop));
}

void artifact_list(daemon_context& ctx, const std::string& op,
                   capnp::CallContext<rpc::Daemon::ArtifactListParams, rpc::Daemon::ArtifactListResults> c) {
  auto k = kind_of(c.getParams().getKind());
  auto streams = ctx.journal->streams();
  if (!streams) {
    auto e = streams.err();
    e.op_id = op;
    set_error(c.getResults().initError(), e);
    return;
  }
  std::string prefix = std::string(actors::to_string(k)) + "/";
  std::vector<std::pair<std::string, actors::artifact_state>> items;
  for (const auto& s : *streams) {
    if (s.rfind(prefix, 0) != 0)
      continue;
    auto name = s.substr(prefix.size());
    auto st = fold(ctx, k, name);
    if (!st.current.empty() || st.in_progress)
      items.emplace_back(name, std::move(st));
  }
  auto out = c.getResults().initItems(static_cast<unsigned>(items.size()));
  for (unsigned i = 0; i < items.size(); ++i)
    fill_info(out[i], ctx, k, items[i].first, items[i].second);
}

void artifact_show(daemon_context& ctx, const std::string& op,
                   capnp::CallContext<rpc::Daemon::ArtifactShowParams, rpc::Daemon::ArtifactShowResults> c) {
  auto k = kind_of(c.getParams().getKind());
  std::string name = c.getParams().getName();
  auto res = c.getResults();
  if (auto v = actors::validate_artifact_name(k, name); !v) {
    auto e = v.err();
    e.op_id = op;
    set_error(res.initError(), e);
    return;
  }
  auto st = fold(ctx, k, name);
  if (st.current.empty() && !st.in_progress) {
    set_error(res.initError(), error{errc::not_found,
                                     fmt::format("no {} named \"{}\"; see `banger {} list`", actors::to_string(k), name,
                                                 actors::to_string(k)),
                                     op});
    return;
  }
  fill_info(res.initInfo(), ctx, k, name, st);
  if (!st.current.empty())
    if (auto m = read_file(store_of(ctx).version_dir(k, name, st.current) / "manifest.json"))
      res.setManifest(*m);
}

kj::Promise<void>
artifact_remove(daemon_context& ctx, const std::string& op,
                capnp::CallContext<rpc::Daemon::ArtifactRemoveParams, rpc::Daemon::ArtifactRemoveResults> c) {
  auto k = kind_of(c.getParams().getKind());
  std::string name = c.getParams().getName();
  if (auto v = actors::validate_artifact_name(k, name); !v) {
    auto e = v.err();
    e.op_id = op;
    set_error(c.getResults().initError(), e);
    return kj::READY_NOW;
  }
  // Through the catalog: it counts the VMs that use it and the creates in flight for it, and
  // refuses creates from it while the removal runs (actors/catalog.hpp).
  return ask<actors::artifact_reply>(*ctx.system, *ctx.catalog, 60000ms, caf::delete_atom::value, k, name, op)
    .then([&ctx, c, op, k, name](expected<actors::artifact_reply> asked) mutable {
      auto r = asked ? std::move(*asked) : actors::artifact_reply(asked.err());
      if (!r) {
        auto e = r.err();
        e.op_id = op;
        set_error(c.getResults().initError(), e);
        return;
      }
      ctx.log.info(op, "{} {} removed (version {})", actors::to_string(k), name, r->result.version_id);
      c.getResults().setRemoved(r->result.version_id);
    });
}

kj::Promise<void>
image_cache_prune(daemon_context& ctx, const std::string& op,
                  capnp::CallContext<rpc::Daemon::ImageCachePruneParams, rpc::Daemon::ImageCachePruneResults> c) {
  bool dry_run = c.getParams().getDryRun();
  fs::path dir = ctx.paths.cache / "blobs";
  return run_blocking(*ctx.system, [dir, dry_run] { return fetch::blob_cache(dir).prune(dry_run); })
    .then([&ctx, c, op, dry_run](expected<fetch::prune_report> r) mutable {
      auto res = c.getResults();
      if (!r) {
        auto e = r.err();
        e.op_id = op;
        set_error(res.initError(), e);
        return;
      }
      ctx.log.info(op, "image cache prune{}: {} blobs, {} partial downloads, {} bytes; {} in use, kept",
                   dry_run ? " (dry run)" : "", r->blobs, r->partials, r->bytes, r->busy);
      res.setBlobs(r->blobs);
      res.setPartials(r->partials);
      res.setBytes(r->bytes);
      res.setBusy(r->busy);
    });
}

kj::Promise<void>
kernel_export(daemon_context& ctx, const std::string& op,
              capnp::CallContext<rpc::Daemon::KernelExportParams, rpc::Daemon::KernelExportResults> c) {
  std::string name = c.getParams().getName();
  fs::path out = std::string(c.getParams().getPath());
  auto fail = [c, op](error e) mutable {
    e.op_id = op;
    set_error(c.getResults().initError(), e);
  };
  if (auto v = actors::validate_artifact_name(artifact_kind::kernel, name); !v) {
    fail(v.err());
    return kj::READY_NOW;
  }
  auto st = fold(ctx, artifact_kind::kernel, name);
  if (st.current.empty()) {
    fail(make_error(errc::not_found, fmt::format("no kernel named \"{}\"; see `banger kernel list`", name)));
    return kj::READY_NOW;
  }
  auto store = store_of(ctx);
  auto id = st.current;
  return run_blocking(*ctx.system,
                      [store, name, id, out] { return actors::export_kernel_bundle(store, name, id, out); })
    .then([&ctx, c, op, name, out, fail](expected<actors::export_result> r) mutable {
      if (!r) {
        fail(r.err());
        return;
      }
      ctx.log.info(op, "kernel {} exported to {}", name, out.string());
      c.getResults().setEntry(r->entry_json);
      c.getResults().setCatalog(r->catalog_path);
    });
}

} // namespace banger::daemon
