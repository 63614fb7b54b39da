// See agent_client.hpp.
#include "tests/support/agent_client.hpp"

namespace banger::test {

using namespace std::chrono_literals;

kj::Promise<void> collect_sink::write(WriteContext c) {
  auto d = c.getParams().getData();
  out_.append(reinterpret_cast<const char*>(d.begin()), d.size());
  return kj::READY_NOW;
}

void agent_connection::open(kj::AsyncIoContext& io, const std::filesystem::path& socket) {
  close();
  auto addr = io.provider->getNetwork().parseAddress(kj::str("unix:", socket.c_str())).wait(io.waitScope);
  stream_ = addr->connect().wait(io.waitScope);
  client_ = kj::heap<capnp::TwoPartyClient>(*stream_);
  agent_ = client_->bootstrap().castAs<agent_rpc::Agent>();
}

void agent_connection::close() {
  agent_ = nullptr;
  client_ = nullptr;
  stream_ = nullptr;
}

exec_result agent_connection::run(kj::AsyncIoContext& io, const std::vector<std::string>& argv,
                                  const std::string& stdin_data, bool tty, const std::string& cwd,
                                  const std::vector<std::string>& env, const std::string& workspace) {
  exec_result r;
  auto req = agent().execRequest();
  auto spec = req.initSpec();
  auto a = spec.initArgv(static_cast<unsigned>(argv.size()));
  for (unsigned i = 0; i < argv.size(); ++i)
    a.set(i, argv[i]);
  spec.setTty(tty);
  spec.setStdin(!stdin_data.empty());
  spec.setCwd(cwd);
  auto e = spec.initEnv(static_cast<unsigned>(env.size()));
  for (unsigned i = 0; i < env.size(); ++i)
    e.set(i, env[i]);
  spec.setWorkspace(workspace);
  req.setStdout(kj::heap<collect_sink>(r.out));
  req.setStderr(kj::heap<collect_sink>(r.err));
  auto resp = wait_for(io, req.send(), 60s);
  if (resp.getFailure().getCode() != 0) {
    r.failure_code = resp.getFailure().getCode();
    r.failure = resp.getFailure().getMessage();
    return r;
  }
  auto proc = resp.getProcess();
  if (!stdin_data.empty()) {
    auto w = proc.writeStdinRequest();
    w.setData(kj::arrayPtr(reinterpret_cast<const kj::byte*>(stdin_data.data()), stdin_data.size()));
    wait_for(io, w.send(), 60s);
    wait_for(io, proc.closeStdinRequest().send(), 60s);
  }
  auto st = wait_for(io, proc.waitRequest().send(), 300s).getStatus();
  r.signaled = st.isSignaled();
  r.code = st.isSignaled() ? st.getSignaled() : st.getExited();
  return r;
}

} // namespace banger::test
