// End-to-end test support: one QEMU microvm guest under TCG as an RAII resource (killed in
// every failure path), and a connection to the guest's banger-agent over the virtio-serial
// socket. The cached Debian cloud kernel (tests/support/kernel_cache) and the agent client
// (tests/support/agent_client) are shared with guestfs/ and guest/ tests. Test-thread only.
// Failures are Boost.Test REQUIRE failures with a message saying what is missing, never a pass.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/agent_client.hpp"
#include "tests/support/kernel_cache.hpp"
#include "tests/support/proc.hpp"

namespace banger::e2e {

using test::cloud_kernel_deb;
using test::exec_result;
using test::host_khz;
using test::slurp;
using test::wait_for;

struct vm_spec {
  std::filesystem::path dir; ///< holds console.log, agent.sock, qmp.sock
  std::filesystem::path kernel, initrd;
  std::filesystem::path root_qcow2; ///< overlay on the image's rootfs.ext4
  std::filesystem::path work_raw;   ///< the VM's work disk (a copy of work-seed.ext4)
  std::string init = "/usr/local/sbin/banger-init";
  std::string hostname = "e2e-vm";
};

/// One running QEMU process. Move-only; the destructor SIGKILLs and reaps it if it still runs.
class qemu_vm {
public:
  explicit qemu_vm(const vm_spec& spec);
  qemu_vm(const qemu_vm&) = delete;
  qemu_vm& operator=(const qemu_vm&) = delete;
  ~qemu_vm();

  /// Waits up to `limit` for QEMU to exit; true when it did.
  bool wait_exit(std::chrono::milliseconds limit);
  bool running() const { return pid_ > 0; }
  std::string console() const;
  std::filesystem::path agent_socket() const { return dir_ / "agent.sock"; }
  std::chrono::steady_clock::time_point started() const { return started_; }

private:
  std::filesystem::path dir_;
  int pid_ = -1;
  std::chrono::steady_clock::time_point started_;
};

/// `qemu-img create -f qcow2 -F raw -b base overlay`.
void make_overlay(const std::filesystem::path& base, const std::filesystem::path& overlay);

/// A connection to the guest agent through QEMU's virtio-serial socket.
class agent_client : public test::agent_connection {
public:
  /// Connects and pings until the agent answers (the guest reopens its port after each
  /// disconnect, so a failed attempt reconnects) or `deadline` passes, or QEMU dies.
  /// Returns the answered ping's hostname, or nullopt.
  std::optional<std::string> connect(kj::AsyncIoContext& io, qemu_vm& vm,
                                     std::chrono::steady_clock::time_point deadline);
  void disconnect() { close(); }
};

} // namespace banger::e2e
