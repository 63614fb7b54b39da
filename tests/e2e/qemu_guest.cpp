// See qemu_guest.hpp.
#include "tests/e2e/qemu_guest.hpp"

#include <boost/test/unit_test.hpp>

#include <cmath>
#include <csignal>
#include <cstdlib>
#include <fmt/format.h>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>

#include "tests/support/proc.hpp"

namespace banger::e2e {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using banger::test::run;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

namespace {

/// The value after `key` on the first line holding it, trimmed of ' ', ':' and tabs.
std::string field(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    auto at = line.find(key);
    if (at == std::string::npos)
      continue;
    auto v = line.substr(at + key.size());
    while (!v.empty() && (v.front() == ' ' || v.front() == ':' || v.front() == '\t'))
      v.erase(v.begin());
    while (!v.empty() && (v.back() == ' ' || v.back() == '\r'))
      v.pop_back();
    return v;
  }
  return {};
}

} // namespace

cached_deb cloud_kernel_deb() {
  auto deps = run({"apt-cache", "depends", "linux-image-cloud-amd64"});
  auto pkg = field(deps.out, "Depends:");
  BOOST_TEST_REQUIRE(!pkg.empty(), "cannot find the Debian cloud kernel package: `apt-cache depends "
                                   "linux-image-cloud-amd64` printed no Depends (run apt-get update?): "
                                     << deps.out << deps.err);
  auto show = run({"apt-cache", "show", "--no-all-versions", pkg});
  auto version = field(show.out, "Version:");
  BOOST_TEST_REQUIRE(!version.empty(), "`apt-cache show " << pkg << "` printed no Version: " << show.err);

  const char* env = std::getenv("BANGER_TEST_CACHE");
  fs::path cache = fs::path(env && *env ? env : "/var/cache/banger-test") / "kernels";
  fs::create_directories(cache);
  auto safe_version = version;
  for (auto& c : safe_version)
    if (c == ':')
      c = '%';
  auto path = cache / (pkg + "_" + safe_version + ".deb");
  if (!fs::exists(path)) {
    test::temp_dir dl("banger-kernel-download");
    ::chmod(dl.path.c_str(), 0755); // apt's _apt user downloads into it when it can
    auto r =
      run({"sh", "-c", "cd '" + dl.path.string() + "' && apt-get download -q '" + pkg + "=" + version + "'"}, {}, 300s);
    BOOST_TEST_REQUIRE(r.exit_code == 0, "apt-get download " << pkg << "=" << version
                                                             << " failed (no network or no Debian mirror?): " << r.err);
    fs::path got;
    for (auto& e : fs::directory_iterator(dl.path))
      if (e.path().extension() == ".deb")
        got = e.path();
    BOOST_TEST_REQUIRE(!got.empty(), "apt-get download left no .deb in " << dl.path);
    auto tmp = path.string() + fmt::format(".tmp-{}", ::getpid());
    fs::copy_file(got, tmp, fs::copy_options::overwrite_existing);
    fs::rename(tmp, path);
  }
  return {pkg, version, path};
}

long host_khz() {
  auto mhz = field(slurp("/proc/cpuinfo"), "cpu MHz");
  BOOST_TEST_REQUIRE(!mhz.empty(), "no cpu MHz in /proc/cpuinfo");
  return std::lround(std::stod(mhz) * 1000);
}

void make_overlay(const fs::path& base, const fs::path& overlay) {
  auto r = run({"qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", base.string(), overlay.string()});
  BOOST_TEST_REQUIRE(r.exit_code == 0, "qemu-img create failed (is qemu-utils installed?): " << r.err << r.out);
}

qemu_vm::qemu_vm(const vm_spec& s) : dir_(s.dir) {
  fs::remove(dir_ / "console.log");
  fs::remove(dir_ / "agent.sock");
  fs::remove(dir_ / "qmp.sock");
  // host-facts.md "A working QEMU microvm command", without a network device, with a work disk.
  std::vector<std::string> argv{
    "qemu-system-x86_64",
    "-M",
    "microvm",
    "-accel",
    "tcg,tb-size=128",
    "-cpu",
    "max",
    "-m",
    "128",
    "-smp",
    "1",
    "-no-reboot",
    "-nodefaults",
    "-no-user-config",
    "-display",
    "none",
    "-serial",
    "file:" + (dir_ / "console.log").string(),
    "-qmp",
    "unix:" + (dir_ / "qmp.sock").string() + ",server=on,wait=off",
    "-kernel",
    s.kernel.string(),
    "-initrd",
    s.initrd.string(),
    "-append",
    fmt::format("console=ttyS0 reboot=k panic=1 root=/dev/vda rw quiet tsc_early_khz={} tsc=reliable "
                "no_timer_check init={} banger.hostname={} banger.work=/dev/vdb",
                host_khz(), s.init, s.hostname),
    "-drive",
    "id=root,file=" + s.root_qcow2.string() + ",format=qcow2,if=none",
    "-device",
    "virtio-blk-device,drive=root",
    "-drive",
    "id=work,file=" + s.work_raw.string() + ",format=raw,if=none",
    "-device",
    "virtio-blk-device,drive=work",
    "-device",
    "virtio-serial-device",
    "-chardev",
    "socket,path=" + (dir_ / "agent.sock").string() + ",server=on,wait=off,id=ch0",
    "-device",
    "virtserialport,chardev=ch0,name=org.banger.agent.0"};
  started_ = std::chrono::steady_clock::now();
  pid_ = test::spawn(argv, {}, dir_);
}

qemu_vm::~qemu_vm() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

bool qemu_vm::wait_exit(std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (pid_ > 0) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return true;
    }
    if (std::chrono::steady_clock::now() >= deadline)
      return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

std::string qemu_vm::console() const { return slurp(dir_ / "console.log"); }

void agent_client::disconnect() {
  agent_ = nullptr;
  client_ = nullptr;
  stream_ = nullptr;
}

std::optional<std::string> agent_client::connect(kj::AsyncIoContext& io, qemu_vm& vm,
                                                 std::chrono::steady_clock::time_point deadline) {
  auto sock = vm.agent_socket();
  while (std::chrono::steady_clock::now() < deadline) {
    if (vm.wait_exit(0ms))
      return std::nullopt; // QEMU died: the caller shows the console
    if (!fs::exists(sock)) {
      std::this_thread::sleep_for(5ms);
      continue;
    }
    try {
      auto addr = io.provider->getNetwork().parseAddress(kj::str("unix:", sock.c_str())).wait(io.waitScope);
      stream_ = addr->connect().wait(io.waitScope);
      client_ = kj::heap<capnp::TwoPartyClient>(*stream_);
      agent_ = client_->bootstrap().castAs<agent_rpc::Agent>();
      // Until the guest opens its port QEMU leaves our bytes in the socket, so one attempt
      // answers as soon as the agent serves; the timeout only recovers from a lost attempt.
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      auto r = wait_for(io, agent().pingRequest().send(), std::min<std::chrono::milliseconds>(left, 15s));
      return std::string(r.getHostname().cStr());
    } catch (const kj::Exception&) {
      disconnect();
      std::this_thread::sleep_for(50ms);
    }
  }
  return std::nullopt;
}

namespace {

/// Collects what a process writes to one stream.
class collect_sink final : public agent_rpc::ByteSink::Server {
public:
  explicit collect_sink(std::string& out) : out_(out) {}
  kj::Promise<void> write(WriteContext c) override {
    auto d = c.getParams().getData();
    out_.append(reinterpret_cast<const char*>(d.begin()), d.size());
    return kj::READY_NOW;
  }
  kj::Promise<void> close(CloseContext) override { return kj::READY_NOW; }

private:
  std::string& out_;
};

} // namespace

exec_result agent_client::run(kj::AsyncIoContext& io, const std::vector<std::string>& argv) {
  exec_result r;
  auto req = agent().execRequest();
  auto spec = req.initSpec();
  auto a = spec.initArgv(static_cast<unsigned>(argv.size()));
  for (unsigned i = 0; i < argv.size(); ++i)
    a.set(i, argv[i]);
  spec.setCwd("/");
  req.setStdout(kj::heap<collect_sink>(r.out));
  req.setStderr(kj::heap<collect_sink>(r.err));
  auto resp = wait_for(io, req.send(), 60s);
  if (resp.getFailure().getCode() != 0) {
    r.failure_code = resp.getFailure().getCode();
    r.failure = resp.getFailure().getMessage();
    return r;
  }
  auto proc = resp.getProcess();
  auto st = wait_for(io, proc.waitRequest().send(), 300s).getStatus();
  r.signaled = st.isSignaled();
  r.code = st.isSignaled() ? st.getSignaled() : st.getExited();
  return r;
}

} // namespace banger::e2e
