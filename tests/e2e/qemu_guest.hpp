// End-to-end test support: the Debian cloud kernel package (downloaded once per version into a
// cache outside the build tree), one QEMU microvm guest under TCG as an RAII resource (killed
// in every failure path), and a Cap'n Proto client of the guest's banger-agent over the
// virtio-serial socket. Test-thread only. Failures are Boost.Test REQUIRE failures with a
// message saying what is missing, never a pass.
//
// Cache: $BANGER_TEST_CACHE (default /var/cache/banger-test)/kernels/<package>_<version>.deb,
// shared with guestfs/kernel.e2e.test.cpp.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

#include "schema/agent.capnp.h"

namespace banger::e2e {

struct cached_deb {
  std::string package, version;
  std::filesystem::path path;
};

/// linux-image-cloud-amd64's kernel package .deb, downloaded with `apt-get download` on first use.
cached_deb cloud_kernel_deb();

/// /proc/cpuinfo's "cpu MHz" × 1000, for tsc_early_khz (host-facts: required under TCG).
long host_khz();

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

std::string slurp(const std::filesystem::path& p);

struct exec_result {
  int failure_code = 0;
  std::string failure;
  bool signaled = false;
  int code = -1;
  std::string out, err;
};

/// A connection to the guest agent through QEMU's virtio-serial socket.
class agent_client {
public:
  /// Connects and pings until the agent answers (the guest reopens its port after each
  /// disconnect, so a failed attempt reconnects) or `deadline` passes, or QEMU dies.
  /// Returns the answered ping's hostname, or nullopt.
  std::optional<std::string> connect(kj::AsyncIoContext& io, qemu_vm& vm,
                                     std::chrono::steady_clock::time_point deadline);

  agent_rpc::Agent::Client& agent() { return KJ_ASSERT_NONNULL(agent_); }
  exec_result run(kj::AsyncIoContext& io, const std::vector<std::string>& argv);
  void disconnect();

private:
  kj::Own<kj::AsyncIoStream> stream_;
  kj::Own<capnp::TwoPartyClient> client_;
  kj::Maybe<agent_rpc::Agent::Client> agent_;
};

/// `promise` waited for at most `limit` (a kj exception on timeout).
template <class T>
T wait_for(kj::AsyncIoContext& io, kj::Promise<T>&& promise, std::chrono::milliseconds limit) {
  return io.provider->getTimer().timeoutAfter(limit.count() * kj::MILLISECONDS, kj::mv(promise)).wait(io.waitScope);
}
template <class T>
capnp::Response<T> wait_for(kj::AsyncIoContext& io, capnp::RemotePromise<T>&& promise,
                            std::chrono::milliseconds limit) {
  return wait_for(io, kj::Promise<capnp::Response<T>>(kj::mv(promise)), limit);
}

} // namespace banger::e2e
