// The virtual machine monitor driver interface (DESIGN.md §6): what a VM is made of (vm_spec),
// what identifies a launched VMM process across daemon restarts (vmm_process), the kernel
// command line banger boots with, and the driver a VM actor calls to launch, query and stop one
// VMM. QEMU microvm is the implementation here (qemu.hpp); a Firecracker driver implements the
// same interface.
//
// Threads: every call blocks (fork/exec, QMP round trips with time limits, polling /proc), so the
// VM actor calls it from a detached actor or a worker thread. A driver holds no per-VM state:
// everything it needs to find a VMM again is in vmm_process, which the caller journals. Calls
// for different VMs may run concurrently; calls for the same VM are serialised by its actor.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace banger::vmm {

enum class accel { auto_, kvm, tcg };

std::string_view to_string(accel a); ///< "auto", "kvm", "tcg"

/// KVM usable for ordinary guests: /dev/kvm opens read-write AND /proc/cpuinfo has vmx or svm
/// (host-facts.md: a PVM /dev/kvm has neither and cannot run stock kernels).
bool kvm_usable();

/// Whether a /proc/cpuinfo text has the vmx or svm flag on a "flags" line (pure).
bool cpuinfo_has_hw_virt(std::string_view cpuinfo);

/// /proc/cpuinfo's first "cpu MHz" x 1000 (the TSC rate TCG guests are told), or 0 when absent.
long host_tsc_khz();

struct vm_spec {
  std::string name;                     ///< VM name (a DNS label), used for the guest hostname
  std::filesystem::path dir;            ///< per-VM runtime dir (exists, 0700): qmp.sock, agent.sock, qemu.stderr
  std::filesystem::path console_log;    ///< serial console file (appended to, never truncated)
  std::filesystem::path kernel, initrd; ///< initrd may be empty
  std::filesystem::path root_disk;      ///< qcow2 overlay -> virtio-blk /dev/vda
  std::filesystem::path work_disk;      ///< raw ext4 -> /dev/vdb (may be empty: none)
  unsigned vcpus = 1;
  unsigned memory_mib = 256;
  std::string tap;                                  ///< empty: no network device
  std::string mac;                                  ///< "52:54:00:xx:xx:xx"; derived from name when empty (derive_mac)
  std::string ip_cidr, gateway;                     ///< guest "172.30.0.5/24", "172.30.0.1"; empty: no ip= argument
  std::string init = "/usr/local/sbin/banger-init"; ///< empty: the image's own init
  std::string extra_cmdline;
  accel acceleration = accel::auto_;
  // Boot snapshots (docs/boot-snapshots.md). A template boots with `await_settings` and a shared
  // `memory_file`, and is saved (driver::save) once its init waits; a VM restored from it is
  // launched `incoming`, with the same file mapped privately, and resumed by driver::restore.
  std::filesystem::path memory_file; ///< guest RAM in this file; empty: anonymous memory
  bool memory_shared = false;        ///< the guest's writes go to memory_file (a template's)
  bool await_settings = false;       ///< banger.await and no per-VM settings on the command line
  bool incoming = false;             ///< waits for driver::restore instead of booting
};

/// Checks what launch relies on: name a DNS label, vcpus/memory in range, tap/mac/ip/gateway
/// well-formed, socket paths short enough for sockaddr_un, no newline in a path. Files are not
/// checked here (launch does, at the time of use). errc::bad_request naming the field.
expected<void> validate(const vm_spec& s);

/// "52:54:00:xx:xx:xx" from the first bytes of sha256(name): stable across restarts, unicast,
/// locally administered (QEMU's own prefix).
std::string derive_mac(std::string_view name);

/// What identifies a launched VMM process across daemon restarts (journaled by the caller). A
/// pid alone is not enough: after the VMM exits the pid may be reused by anything.
struct vmm_process {
  int pid = -1;
  std::uint64_t start_time = 0; ///< /proc/PID/stat field 22 (clock ticks after boot)
  std::string cmdline_sha256;   ///< lowercase hex sha256 of /proc/PID/cmdline's bytes
  std::filesystem::path qmp_socket, agent_socket;
  bool operator==(const vmm_process&) const = default;
};

/// The kernel command line banger boots with (pure): console=ttyS0 reboot=k panic=1 root=/dev/vda
/// rw quiet; under TCG tsc_early_khz=<host_khz> (when > 0) tsc=reliable no_timer_check;
/// init=INIT (unless empty); banger.hostname=NAME; ip=<addr>::<gw>:<mask>:<name>:eth0:off when
/// ip_cidr is set; banger.work=/dev/vdb when a work disk is; then extra_cmdline. With
/// await_settings, banger.await instead of the hostname and address (they come after a restore).
std::string kernel_cmdline(const vm_spec& s, bool tcg, long host_khz);

/// What a guest restored from a boot snapshot is told through its agent (configure), in
/// banger-init's command-line syntax: banger.hostname=NAME, banger.mac= (with a network device;
/// the snapshot's is some other VM's) and banger.ip= as kernel_cmdline would give it.
std::string restored_settings(const vm_spec& s);

class driver {
public:
  virtual ~driver() = default;
  virtual std::string_view name() const = 0; ///< "qemu"

  /// Starts the VMM in its own session (setsid: a daemon restart never kills it) with stdin
  /// /dev/null, stdout/stderr to dir/qemu.stderr (truncated) and no other inherited fd. Returns
  /// once QMP answers (qmp_capabilities + query-status). On failure no process is left behind
  /// and the message carries the VMM's stderr tail. errc::bad_request (spec), errc::not_found
  /// (a missing file, named), errc::unavailable (no VMM binary, KVM asked for but unusable),
  /// errc::conflict (a VMM already serves dir/qmp.sock), errc::operation_failed (the VMM failed
  /// or did not answer in time).
  virtual expected<vmm_process> launch(const vm_spec& s) = 0;

  /// Whether p.pid still is that VMM: alive (not a zombie), same start time, same cmdline hash.
  virtual bool matches(const vmm_process& p) const = 0;

  /// QMP query-status: "running", "paused", "shutdown", ... errc::not_running unless matches(p).
  virtual expected<std::string> status(const vmm_process& p) = 0;
  /// QMP system_powerdown (the ACPI power button); returns once QEMU accepted it, not when the
  /// guest is down (wait_exit). errc::not_running unless matches(p).
  virtual expected<void> powerdown(const vmm_process& p) = 0;
  /// QMP quit: QEMU exits at once (the guest gets no say) and removes its sockets. Returns once
  /// QEMU acknowledged it or hung up. errc::not_running unless matches(p).
  virtual expected<void> quit(const vmm_process& p) = 0;

  /// QMP stop: the guest's vCPUs freeze; its memory, devices, sockets and the VMM process stay.
  /// Idempotent (a paused guest stays paused). errc::not_running unless matches(p).
  virtual expected<void> pause(const vmm_process& p) = 0;
  /// QMP cont: a paused guest runs on from where it stopped. Idempotent. errc::not_running unless
  /// matches(p).
  virtual expected<void> resume(const vmm_process& p) = 0;

  /// Waits until the process has exited, reaping it when it is our child (waitpid on that pid
  /// only), polling /proc otherwise. True when it has exited (or never matched) within `limit`.
  virtual bool wait_exit(const vmm_process& p, std::chrono::milliseconds limit) = 0;

  /// What a boot snapshot of `s` depends on that the driver decides: the command line a
  /// template of `s` gets (accelerator, TSC rate, kernel, initrd, shape, devices), with the VM's
  /// own names, paths and addresses left out, and the VMM binary. Specs with the same shape boot
  /// the same guest up to where banger-init waits for its settings. Reads the host (KVM).
  virtual std::string guest_shape(const vm_spec& s) const = 0;

  /// Pauses the guest and writes its device state to `state` (created, or replaced). Its RAM is
  /// not in it: it stays in the spec's memory_file, which must be shared. The VMM stays paused
  /// (quit it next). errc::not_running unless matches(p); errc::operation_failed when QEMU
  /// refuses or does not finish within the QMP timeout.
  virtual expected<void> save(const vmm_process& p, const std::filesystem::path& state) = 0;
  /// For a VMM launched `incoming` with the memory_file of the save that wrote `state`: loads
  /// the device state and resumes the guest where it was saved. Same errors as save.
  virtual expected<void> restore(const vmm_process& p, const std::filesystem::path& state) = 0;

  /// Sends `signo` to p.pid, only if matches(p) (errc::not_running otherwise): never signals a
  /// process that merely reuses the pid.
  virtual expected<void> kill(const vmm_process& p, int signo) = 0;
};

struct qemu_options {
  std::filesystem::path binary;                    ///< empty: find_program("qemu-system-x86_64")
  std::chrono::milliseconds launch_timeout{10000}; ///< exec -> QMP answering
  std::chrono::milliseconds qmp_timeout{5000};     ///< each later QMP call, connect to answer
};

/// The QEMU microvm driver. A missing binary is reported by launch (errc::unavailable).
std::unique_ptr<driver> make_qemu_driver(std::filesystem::path qemu_binary = {});
std::unique_ptr<driver> make_qemu_driver(qemu_options opts);

} // namespace banger::vmm
