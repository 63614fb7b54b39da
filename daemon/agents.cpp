// See agents.hpp.
#include "daemon/agents.hpp"

#include <future>

#include <capnp/rpc-twoparty.h>
#include <fmt/core.h>

#include "daemon/landing_capnp.hpp"

namespace banger::daemon {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

struct agent_pool::connection {
  fs::path socket;
  kj::Own<kj::AsyncIoStream> stream;
  kj::Own<capnp::TwoPartyClient> rpc;
  agent_rpc::Agent::Client agent;
  connection(fs::path s, kj::Own<kj::AsyncIoStream> st)
    : socket(std::move(s)), stream(kj::mv(st)), rpc(kj::heap<capnp::TwoPartyClient>(*stream)),
      agent(rpc->bootstrap().castAs<agent_rpc::Agent>()) {}
};

struct agent_pool::error_handler final : kj::TaskSet::ErrorHandler {
  void taskFailed(kj::Exception&&) override {}
};

/// What access()'s functions hold: the KJ thread's executor (refcounted, so it outlives the
/// loop and then refuses calls) and the pool, cleared by the pool's destructor on the KJ thread.
/// A worker's call is run on the KJ thread and checks `pool` there, so it never races the
/// destructor.
struct agent_pool::handle {
  kj::Own<const kj::Executor> executor;
  agent_pool* pool = nullptr;
};

agent_pool::agent_pool(kj::AsyncIoContext& io)
  : io_(io), handle_(std::make_shared<handle>()), errors_(kj::heap<error_handler>()) {
  handle_->executor = kj::getCurrentThreadExecutor().addRef();
  handle_->pool = this;
  tasks_ = kj::heap<kj::TaskSet>(*errors_);
}

agent_pool::~agent_pool() { handle_->pool = nullptr; }

namespace {
std::string describe(const kj::Exception& e) { return e.getDescription().cStr(); }
} // namespace

kj::Promise<expected<agent_rpc::Agent::Client>> agent_pool::get(const std::string& vm, const fs::path& socket) {
  auto it = conns_.find(vm);
  if (it != conns_.end() && it->second->socket == socket)
    return expected<agent_rpc::Agent::Client>(it->second->agent);
  // A new connection is handed out only once the agent has answered on it: the first session
  // after a daemon restart can meet the guest still closing the previous one, and wait_ready
  // reconnects until one answers.
  return wait_ready(vm, socket, new_connection_limit)
    .then([this, vm, socket](expected<void> ready) -> expected<agent_rpc::Agent::Client> {
      if (!ready)
        return ready.err();
      auto i = conns_.find(vm);
      if (i == conns_.end())
        return make_error(errc::unavailable, "the guest agent hung up right after answering");
      return i->second->agent;
    });
}

kj::Promise<expected<agent_rpc::Agent::Client>> agent_pool::connection_of(const std::string& vm,
                                                                          const fs::path& socket) {
  auto it = conns_.find(vm);
  if (it != conns_.end() && it->second->socket == socket)
    return expected<agent_rpc::Agent::Client>(it->second->agent);
  return io_.provider->getNetwork()
    .parseAddress(kj::str("unix:", socket.c_str()))
    .then([](kj::Own<kj::NetworkAddress> addr) { return addr->connect().attach(kj::mv(addr)); })
    .then(
      [this, vm, socket](kj::Own<kj::AsyncIoStream> stream) -> expected<agent_rpc::Agent::Client> {
        auto c = kj::heap<connection>(socket, kj::mv(stream));
        auto client = c->agent;
        // Forget the connection when the guest side goes away (poweroff, crash).
        tasks_->add(c->rpc->onDisconnect().then([this, vm, raw = c.get()] {
          auto i = conns_.find(vm);
          if (i != conns_.end() && i->second.get() == raw)
            conns_.erase(i);
        }));
        conns_[vm] = kj::mv(c);
        return client;
      },
      [socket](kj::Exception&& e) -> expected<agent_rpc::Agent::Client> {
        return make_error(errc::unavailable,
                          fmt::format("cannot connect to the guest agent at {}: {}", socket.string(), describe(e)));
      });
}

kj::Promise<expected<void>> agent_pool::wait_ready(const std::string& vm, const fs::path& socket,
                                                   std::chrono::milliseconds limit) {
  return attempt_ready(vm, socket, std::chrono::steady_clock::now() + limit, "");
}

kj::Promise<expected<void>> agent_pool::attempt_ready(const std::string& vm, const fs::path& socket,
                                                      std::chrono::steady_clock::time_point deadline,
                                                      std::string last) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  if (left <= 0ms)
    return expected<void>(
      make_error(errc::unavailable, fmt::format("the guest agent did not answer in time{}",
                                                last.empty() ? std::string{} : " (last error: " + last + ")")));
  auto retry = [this, vm, socket, deadline](std::string why) {
    return io_.provider->getTimer().afterDelay(200 * kj::MILLISECONDS).then([this, vm, socket, deadline, why] {
      return attempt_ready(vm, socket, deadline, why);
    });
  };
  return connection_of(vm, socket)
    .then([this, vm, left, retry](expected<agent_rpc::Agent::Client> c) mutable -> kj::Promise<expected<void>> {
      if (!c)
        return retry(c.err().message);
      // The guest may still be booting: the ping waits (up to the deadline) for its agent.
      auto ping = c->pingRequest().send().then(
        [](auto&&) { return expected<void>(); },
        [](kj::Exception&& e) { return expected<void>(make_error(errc::unavailable, describe(e))); });
      return io_.provider->getTimer()
        .timeoutAfter(left.count() * kj::MILLISECONDS, kj::mv(ping))
        .then(
          [this, vm, retry](expected<void> r) mutable -> kj::Promise<expected<void>> {
            if (r)
              return expected<void>();
            forget(vm);
            return retry(r.err().message);
          },
          [](kj::Exception&&) -> kj::Promise<expected<void>> {
            return expected<void>(make_error(errc::unavailable, "the guest agent did not answer in time"));
          });
    });
}

void agent_pool::forget(const std::string& vm) { conns_.erase(vm); }

std::uint64_t agent_pool::keep_landing(agent_rpc::WorkspaceLanding::Client l) {
  landings_.emplace(++next_landing_, kj::mv(l));
  return next_landing_;
}

agent_rpc::WorkspaceLanding::Client* agent_pool::landing(std::uint64_t id) {
  auto it = landings_.find(id);
  return it == landings_.end() ? nullptr : &it->second;
}

namespace {

/// Runs `start(pool)` on the KJ thread and blocks the calling thread for its result (at most
/// `limit` plus a margin). A pool that is gone, or a loop that has exited, answers unavailable.
template <class T, class F>
expected<T> blocking_call(const std::shared_ptr<agent_pool::handle>& h, std::chrono::milliseconds limit, F start) {
  auto result = std::make_shared<std::promise<expected<T>>>();
  auto fut = result->get_future();
  try {
    h->executor->executeSync([&] {
      if (!h->pool) {
        result->set_value(make_error(errc::unavailable, "the daemon is stopping"));
        return;
      }
      h->pool->add_task(start(*h->pool).then(
        [result](expected<T> r) { result->set_value(std::move(r)); },
        [result](kj::Exception&& e) { result->set_value(make_error(errc::unavailable, describe(e))); }));
    });
  } catch (const kj::Exception& e) {
    return make_error(errc::unavailable, "the daemon is stopping: " + describe(e));
  }
  if (fut.wait_for(limit + 10s) != std::future_status::ready)
    return make_error(errc::unavailable, "no answer from the guest agent");
  return fut.get();
}

/// One call on the VM's agent (connecting when needed), bounded by `limit`, from a worker thread.
template <class T, class F>
expected<T> call_agent(const std::shared_ptr<agent_pool::handle>& h, const std::string& vm, const fs::path& socket,
                       F call, std::chrono::milliseconds limit = 5s) {
  return blocking_call<T>(h, limit, [vm, socket, call, limit](agent_pool& pool) {
    return pool.get(vm, socket)
      .then([&pool, call, limit](expected<agent_rpc::Agent::Client> c) mutable -> kj::Promise<expected<T>> {
        if (!c)
          return expected<T>(c.err());
        return pool.timer().timeoutAfter(limit.count() * kj::MILLISECONDS, call(*c));
      });
  });
}

/// A workspace landing in the guest (workspace/land_remote.hpp), driven from a VM's worker:
/// each call runs on the KJ thread, where the capability is kept (agent_pool::keep_landing).
class agent_landing final : public workspace::remote_landing {
public:
  agent_landing(std::shared_ptr<agent_pool::handle> h, std::uint64_t id) : h_(std::move(h)), id_(id) {}
  ~agent_landing() override {
    (void)blocking_call<bool>(h_, 1s, [id = id_](agent_pool& pool) -> kj::Promise<expected<bool>> {
      pool.drop_landing(id);
      return expected<bool>(true);
    });
  }

  expected<void> push(const std::vector<workspace::landing_piece>& pieces) override {
    return checked(60s, [&](agent_rpc::WorkspaceLanding::Client& l) {
      auto req = l.pushRequest();
      fill_pieces(req.initPieces(static_cast<unsigned>(pieces.size())), pieces);
      return req.send();
    });
  }

  expected<std::vector<workspace::landed_stat>> seal() override {
    return call<std::vector<workspace::landed_stat>>(120s, [](agent_rpc::WorkspaceLanding::Client& l) {
      return l.sealRequest().send().then([](auto&& res) -> expected<std::vector<workspace::landed_stat>> {
        if (auto ok = failure_of(res); !ok)
          return ok.err();
        return stats_from(res.getStats());
      });
    });
  }

  expected<void> commit(const std::string& index) override {
    return checked(300s, [&](agent_rpc::WorkspaceLanding::Client& l) {
      auto req = l.commitRequest();
      req.setIndex(workspace::capnp_bytes(index));
      return req.send();
    });
  }

private:
  /// A call whose answer carries only a failure (`send` sends its request).
  template <class F>
  expected<void> checked(std::chrono::milliseconds limit, F send) {
    auto r = call<bool>(limit, [&](agent_rpc::WorkspaceLanding::Client& l) {
      return send(l).then([](auto&& res) -> expected<bool> {
        if (auto ok = failure_of(res); !ok)
          return ok.err();
        return true;
      });
    });
    return r ? expected<void>() : expected<void>(r.err());
  }

  template <class T, class F>
  expected<T> call(std::chrono::milliseconds limit, F f) {
    return blocking_call<T>(h_, limit, [this, limit, &f](agent_pool& pool) -> kj::Promise<expected<T>> {
      auto* l = pool.landing(id_);
      if (l == nullptr)
        return expected<T>(make_error(errc::unavailable, "the workspace landing in the guest is gone"));
      return pool.timer().timeoutAfter(limit.count() * kj::MILLISECONDS, f(*l));
    });
  }

  std::shared_ptr<agent_pool::handle> h_;
  std::uint64_t id_;
};

} // namespace

void agent_pool::add_task(kj::Promise<void> p) { tasks_->add(kj::mv(p)); }

actors::agent_access agent_pool::access() {
  auto h = handle_;
  actors::agent_access a;
  a.wait_ready = [h](const std::string& vm, const fs::path& socket, std::chrono::milliseconds limit) {
    auto r = blocking_call<bool>(h, limit, [vm, socket, limit](agent_pool& pool) {
      return pool.wait_ready(vm, socket, limit).then([](expected<void> ready) -> expected<bool> {
        if (!ready)
          return ready.err();
        return true;
      });
    });
    return r ? expected<void>() : expected<void>(r.err());
  };
  a.poweroff = [h](const std::string& vm, const fs::path& socket) {
    auto r = call_agent<bool>(h, vm, socket, [](agent_rpc::Agent::Client& agent) {
      return agent.poweroffRequest().send().then([](auto&& res) -> expected<bool> {
        if (auto ok = failure_of(res); !ok)
          return ok.err();
        return true;
      });
    });
    return r ? expected<void>() : expected<void>(r.err());
  };
  auto disk_call = [h](bool release) {
    return [h, release](const std::string& vm, const fs::path& socket) {
      auto r = call_agent<bool>(h, vm, socket, [release](agent_rpc::Agent::Client& agent) {
        auto done = [](auto&& res) -> expected<bool> {
          if (auto ok = failure_of(res); !ok)
            return ok.err();
          return true;
        };
        return release ? agent.releaseWorkDiskRequest().send().then(done)
                       : agent.attachWorkDiskRequest().send().then(done);
      });
      return r ? expected<void>() : expected<void>(r.err());
    };
  };
  a.release_work_disk = disk_call(true);
  a.attach_work_disk = disk_call(false);
  a.listening = [h](const std::string& vm, const fs::path& socket, std::uint16_t port) {
    return call_agent<bool>(h, vm, socket, [port](agent_rpc::Agent::Client& agent) {
      return agent.portsRequest().send().then([port](auto&& res) -> expected<bool> {
        if (auto ok = failure_of(res); !ok)
          return ok.err();
        for (auto p : res.getPorts()) // TCP only: the agent lists bound UDP sockets too
          if (p.getPort() == port && std::string_view(p.getProtocol().cStr()).starts_with("tcp"))
            return true;
        return false;
      });
    });
  };
  a.configure = [h](const std::string& vm, const fs::path& socket, const std::string& settings,
                    std::int64_t realtime_ns, const std::string& entropy) {
    auto r = call_agent<bool>(h, vm, socket, [settings, realtime_ns, entropy](agent_rpc::Agent::Client& agent) {
      auto req = agent.configureRequest();
      req.setSettings(settings);
      req.setRealtimeNs(realtime_ns);
      req.setEntropy(kj::arrayPtr(reinterpret_cast<const kj::byte*>(entropy.data()), entropy.size()));
      return req.send().then([](auto&& res) -> expected<bool> {
        if (auto ok = failure_of(res); !ok)
          return ok.err();
        return true;
      });
    });
    return r ? expected<void>() : expected<void>(r.err());
  };
  a.land_workspace = [h](const std::string& vm, const fs::path& socket,
                         const workspace::stream_begin& b) -> expected<std::unique_ptr<workspace::remote_landing>> {
    auto id = blocking_call<std::uint64_t>(h, 60s, [vm, socket, b](agent_pool& pool) {
      return pool.get(vm, socket)
        .then([&pool, b](expected<agent_rpc::Agent::Client> c) mutable -> kj::Promise<expected<std::uint64_t>> {
          if (!c)
            return expected<std::uint64_t>(c.err());
          auto req = c->landWorkspaceRequest();
          req.setGuestPath(b.guest_path);
          req.setBytes(b.bytes);
          req.setFiles(b.files);
          return pool.timer().timeoutAfter(60 * kj::SECONDS,
                                           req.send().then([&pool](auto&& res) -> expected<std::uint64_t> {
                                             if (auto ok = failure_of(res); !ok)
                                               return ok.err();
                                             return pool.keep_landing(res.getLanding());
                                           }));
        });
    });
    if (!id)
      return id.err();
    return std::unique_ptr<workspace::remote_landing>(std::make_unique<agent_landing>(h, *id));
  };
  a.forget = [h](const std::string& vm) {
    (void)blocking_call<bool>(h, 1s, [vm](agent_pool& pool) -> kj::Promise<expected<bool>> {
      pool.forget(vm);
      return expected<bool>(true);
    });
  };
  return a;
}

} // namespace banger::daemon
