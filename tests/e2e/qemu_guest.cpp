// See qemu_guest.hpp.
#include "tests/e2e/qemu_guest.hpp"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <csignal>
#include <fmt/format.h>
#include <sys/wait.h>
#include <thread>

namespace banger::e2e {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using banger::test::run;

void make_overlay(const fs::path& base, const fs::path& overlay) {
  auto r = run({"qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", base.string(), overlay.string()});
  BOOST_TEST_REQUIRE(r.exit_code == 0, "qemu-img create failed (is qemu-utils installed?): " << r.err << r.out);
}

qemu_vm::qemu_vm(const vm_spec& s) : dir_(s.dir) {
  fs::remove(dir_ / "console.log");
  fs::remove(dir_ / "agent.sock");
  fs::remove(dir_ / "qmp.sock");
  // host-facts.md "A working QEMU microvm command", without a network device, with a work disk.
  auto argv = test::microvm_argv(dir_ / "console.log", s.kernel, s.initrd,
                                 fmt::format("init={} banger.hostname={} banger.work=/dev/vdb", s.init, s.hostname));
  argv.insert(argv.end(), {
                            "-qmp",
                            "unix:" + (dir_ / "qmp.sock").string() + ",server=on,wait=off",
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
                            "virtserialport,chardev=ch0,name=org.banger.agent.0",
                          });
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
      open(io, sock);
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

} // namespace banger::e2e
