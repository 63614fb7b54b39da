// See catalog.hpp. Detached; journal reads are short (the events since the last request).
#include "actors/catalog.hpp"

#include <map>

#include <caf/all.hpp>
#include <fmt/core.h>

#include "actors/failure.hpp"
#include "actors/vm/vm_actor.hpp"
#include "journal/journal.hpp"

namespace banger::actors {

namespace {

using namespace std::chrono_literals;
constexpr auto create_timeout = std::chrono::minutes(30);

/// An artifact's key in the catalog's maps: "image/default".
std::string key_of(artifact_kind k, const std::string& name) { return stream_of(k, name); }

struct catalog_state {
  catalog_deps deps;
  std::map<std::string, vm_state> vms;             ///< by name; deleted ones kept (their versions)
  std::map<std::string, artifact_state> artifacts; ///< by stream ("kernel/x", "image/y")
  std::uint64_t next_seq = 1;                      ///< the first event not applied yet
  std::map<std::string, unsigned> creating;        ///< artifact key -> creates in flight using it
  std::map<std::string, unsigned> removing;        ///< artifact key -> removals in flight
  std::string current_op;
};

using self_ptr = caf::stateful_actor<catalog_state>*;

bool exists(const vm_state& s) { return s.phase != vm_phase::absent && s.phase != vm_phase::deleted; }

/// Applies one event to the projection; events a fold already covered (version not beyond the
/// state's) are skipped, so the initial fold and the catch-up may overlap.
void apply_event(catalog_state& s, const journal::stored_event& e) {
  if (e.stream.rfind("vm/", 0) == 0) {
    auto name = e.stream.substr(3);
    auto [it, fresh] = s.vms.try_emplace(name);
    if (fresh)
      it->second.name = name;
    if (e.version > it->second.stream_version)
      it->second = apply(std::move(it->second), e);
  } else if (e.stream.rfind("kernel/", 0) == 0 || e.stream.rfind("image/", 0) == 0) {
    auto& st = s.artifacts[e.stream];
    if (e.version > st.stream_version)
      st = apply(std::move(st), e);
  }
}

/// Applies what was committed since the last look.
void catch_up(catalog_state& s) {
  const auto& j = *s.deps.journal;
  while (s.next_seq <= j.last_seq()) {
    auto r = j.read_all(s.next_seq, 4096);
    if (!r || r->next_seq <= s.next_seq)
      return; // a value that does not decode: verify reports it; the projection stays as it is
    for (const auto& e : r->events)
      apply_event(s, e);
    s.next_seq = r->next_seq;
  }
}

/// The first fold: every stream from its snapshot, then catch_up from the sequence number read
/// before it (overlap is skipped by version).
void load(catalog_state& s) {
  const auto& j = *s.deps.journal;
  s.next_seq = j.last_seq() + 1;
  auto streams = j.streams();
  if (!streams)
    return;
  for (const auto& stream : *streams) {
    if (stream.rfind("vm/", 0) == 0) {
      vm_state seed;
      seed.name = stream.substr(3);
      s.vms[seed.name] = journal::fold_stream(j, stream, seed);
    } else if (stream.rfind("kernel/", 0) == 0 || stream.rfind("image/", 0) == 0) {
      s.artifacts[stream] = journal::fold_stream(j, stream, artifact_state{});
    }
  }
  catch_up(s);
}

std::uint32_t users_of(const catalog_state& s, artifact_kind k, const std::string& name) {
  std::uint32_t n = 0;
  for (const auto& [_, v] : s.vms)
    if (exists(v) && (k == artifact_kind::kernel ? v.kernel : v.image) == name)
      ++n;
  if (auto it = s.creating.find(key_of(k, name)); it != s.creating.end())
    n += it->second;
  return n;
}

/// The version a create uses, refused while the artifact's removal is in flight.
expected<std::string> version_for_create(const catalog_state& s, artifact_kind k, const std::string& name) {
  if (auto v = validate_artifact_name(k, name); !v)
    return v.err();
  if (s.removing.count(key_of(k, name)))
    return make_error(errc::conflict, fmt::format("{} {} is being removed; wait for `banger {} rm {}` to finish",
                                                  to_string(k), name, to_string(k), name));
  auto it = s.artifacts.find(key_of(k, name));
  return current_version_of(it == s.artifacts.end() ? artifact_state{} : it->second, k, name);
}

void release(std::map<std::string, unsigned>& m, const std::string& key) {
  if (auto it = m.find(key); it != m.end() && --it->second == 0)
    m.erase(it);
}

caf::behavior catalog(self_ptr self, catalog_deps deps) {
  install_exception_handler(self, {"the catalog", [self] { return self->state.current_op; }, {}});
  self->state.deps = deps;
  load(self->state);
  return {
    [self](list_atom) {
      auto& s = self->state;
      catch_up(s);
      std::vector<vm_state> out;
      for (const auto& [_, v] : s.vms)
        if (exists(v))
          out.push_back(v);
      return out;
    },
    [self](caf::get_atom, const std::string& name) -> expected<vm_state> {
      auto& s = self->state;
      catch_up(s);
      auto it = s.vms.find(name);
      if (it == s.vms.end() || !exists(it->second))
        return make_error(errc::not_found, fmt::format("no VM named {}; see `banger vm list`", name));
      return it->second;
    },
    [self](vm_create_order& o) -> caf::result<expected<vm_state>> {
      auto& s = self->state;
      s.current_op = o.op_id;
      catch_up(s);
      auto image = version_for_create(s, artifact_kind::image, o.create.image);
      if (!image)
        return expected<vm_state>(image.err());
      auto kernel = version_for_create(s, artifact_kind::kernel, o.create.kernel);
      if (!kernel)
        return expected<vm_state>(kernel.err());
      o.create.image_version = *image;
      o.create.kernel_version = *kernel;
      // From here until the VM's actor answers, the create counts as a user of both.
      auto image_key = key_of(artifact_kind::image, o.create.image);
      auto kernel_key = key_of(artifact_kind::kernel, o.create.kernel);
      ++s.creating[image_key];
      ++s.creating[kernel_key];
      auto rp = self->make_response_promise<expected<vm_state>>();
      auto done = [self, rp, image_key, kernel_key](expected<vm_state> r) mutable {
        release(self->state.creating, image_key);
        release(self->state.creating, kernel_key);
        rp.deliver(std::move(r));
      };
      vm_request rq{o.create, o.op_id, o.progress, {}};
      self->request(*s.deps.registry, 10s, spawn_atom::value, std::string("vm"), o.name)
        .then(
          [self, rq, done](caf::actor& vm) mutable {
            self->request(vm, create_timeout, rq)
              .then([done](expected<vm_state>& r) mutable { done(std::move(r)); },
                    [self, done](caf::error& e) mutable { done(from_caf(e, self->system(), "VM actor: ")); });
          },
          [self, done](caf::error& e) mutable { done(from_caf(e, self->system(), "registry: ")); });
      return rp;
    },
    [self](caf::delete_atom, artifact_kind k, const std::string& name,
           const std::string& op) -> caf::result<artifact_reply> {
      auto& s = self->state;
      s.current_op = op;
      catch_up(s);
      // VMs made from it keep it (their disks and boots need its files), and so do creates in
      // flight; the artifact actor decides with that count.
      auto users = users_of(s, k, name);
      auto key = key_of(k, name);
      ++s.removing[key];
      auto rp = self->make_response_promise<artifact_reply>();
      auto done = [self, rp, key](artifact_reply r) mutable {
        release(self->state.removing, key);
        rp.deliver(std::move(r));
      };
      self->request(*s.deps.registry, 10s, spawn_atom::value, std::string(to_string(k)), name)
        .then(
          [self, op, users, done](caf::actor& a) mutable {
            self->request(a, 60s, artifact_request{artifact_cmd::remove{users}, op, {}})
              .then([done](artifact_reply& r) mutable { done(std::move(r)); },
                    [self, done](caf::error& e) mutable {
                      done(artifact_reply(from_caf(e, self->system(), "artifact actor: ")));
                    });
          },
          [self, done](caf::error& e) mutable { done(artifact_reply(from_caf(e, self->system(), "registry: "))); });
      return rp;
    },
  };
}

} // namespace

expected<std::string> current_version_of(const artifact_state& s, artifact_kind k, const std::string& name) {
  if (!s.current.empty())
    return s.current;
  if (k == artifact_kind::kernel)
    return make_error(errc::not_found, fmt::format("no kernel named {}; import one: `banger kernel import {} --apt "
                                                   "linux-image-cloud-amd64` (or `banger setup`)",
                                                   name, name));
  return make_error(errc::not_found, fmt::format("no image named {}; build one: `banger image build {} --busybox` "
                                                 "(or `banger setup` for a Debian image)",
                                                 name, name));
}

caf::actor spawn_catalog(caf::actor_system& sys, const catalog_deps& deps) {
  return sys.spawn<caf::detached>(catalog, deps);
}

} // namespace banger::actors
