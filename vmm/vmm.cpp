// See vmm.hpp: the driver-independent parts (KVM detection, spec validation, the MAC and the
// kernel command line). Pure functions except kvm_usable and host_tsc_khz, which read the host.
#include "vmm/vmm.hpp"

#include <arpa/inet.h>
#include <cctype>
#include <charconv>
#include <cmath>
#include <fcntl.h>
#include <optional>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>

#include "common/process.hpp"
#include "common/sha256.hpp"
#include "common/text.hpp"
#include "vmm/process_identity.hpp"

namespace banger::vmm {

namespace {

/// The value after "key\t: " on the first line of `text` starting with `key`.
std::string_view cpuinfo_field(std::string_view text, std::string_view key) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto end = text.find('\n', pos);
    if (end == std::string_view::npos)
      end = text.size();
    auto line = text.substr(pos, end - pos);
    if (line.starts_with(key)) {
      auto colon = line.find(':');
      auto name = line.substr(0, colon);
      while (!name.empty() && (name.back() == ' ' || name.back() == '\t'))
        name.remove_suffix(1);
      if (colon != std::string_view::npos && name == key) {
        auto v = line.substr(colon + 1);
        while (!v.empty() && v.front() == ' ')
          v.remove_prefix(1);
        return v;
      }
    }
    pos = end + 1;
  }
  return {};
}

bool ipv4(const std::string& s, in_addr* out = nullptr) {
  in_addr a{};
  bool ok = ::inet_pton(AF_INET, s.c_str(), &a) == 1;
  if (ok && out)
    *out = a;
  return ok;
}

/// "a.b.c.d/n" -> address and prefix length; nullopt when malformed.
std::optional<std::pair<std::string, int>> parse_cidr(const std::string& cidr) {
  auto slash = cidr.find('/');
  if (slash == std::string::npos)
    return std::nullopt;
  auto addr = cidr.substr(0, slash);
  auto len = std::string_view(cidr).substr(slash + 1);
  int prefix = -1;
  auto [p, ec] = std::from_chars(len.data(), len.data() + len.size(), prefix);
  if (ec != std::errc() || p != len.data() + len.size() || len.empty() || prefix < 0 || prefix > 32 || !ipv4(addr))
    return std::nullopt;
  return std::pair{addr, prefix};
}

std::string prefix_mask(int prefix) {
  std::uint32_t m = prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix);
  return fmt::format("{}.{}.{}.{}", m >> 24, (m >> 16) & 0xff, (m >> 8) & 0xff, m & 0xff);
}

bool dns_label(std::string_view s) {
  if (s.empty() || s.size() > 63 || s.front() == '-' || s.back() == '-')
    return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-')
      return false;
  return true;
}

bool mac_address(std::string_view s) {
  if (s.size() != 17)
    return false;
  for (std::size_t i = 0; i < s.size(); ++i)
    if (i % 3 == 2 ? s[i] != ':' : !std::isxdigit(static_cast<unsigned char>(s[i])))
      return false;
  int first = std::stoi(std::string(s.substr(0, 2)), nullptr, 16);
  return (first & 1) == 0; // unicast
}

error bad(std::string_view name, std::string what) {
  return make_error(errc::bad_request, fmt::format("VM {}: {}", name.empty() ? "(unnamed)" : name, what));
}

} // namespace

std::string_view to_string(accel a) {
  switch (a) {
  case accel::auto_: return "auto";
  case accel::kvm: return "kvm";
  case accel::tcg: return "tcg";
  }
  return "auto";
}

bool cpuinfo_has_hw_virt(std::string_view cpuinfo) {
  auto flags = cpuinfo_field(cpuinfo, "flags");
  std::size_t pos = 0;
  while (pos < flags.size()) {
    auto end = flags.find(' ', pos);
    if (end == std::string_view::npos)
      end = flags.size();
    auto flag = flags.substr(pos, end - pos);
    if (flag == "vmx" || flag == "svm")
      return true;
    pos = end + 1;
  }
  return false;
}

bool kvm_usable() {
  unique_fd kvm(::open("/dev/kvm", O_RDWR | O_CLOEXEC));
  if (!kvm)
    return false;
  auto info = read_file("/proc/cpuinfo");
  return info && cpuinfo_has_hw_virt(*info);
}

long host_tsc_khz() {
  auto info = read_file("/proc/cpuinfo");
  if (!info)
    return 0;
  auto mhz = std::string(cpuinfo_field(*info, "cpu MHz"));
  try {
    return std::lround(std::stod(mhz) * 1000);
  } catch (const std::exception&) { // no or a garbled "cpu MHz": boot without tsc_early_khz
    return 0;
  }
}

std::string derive_mac(std::string_view name) {
  auto h = sha256_hex(name);
  return fmt::format("52:54:00:{}:{}:{}", h.substr(0, 2), h.substr(2, 2), h.substr(4, 2));
}

expected<void> validate(const vm_spec& s) {
  if (!dns_label(s.name))
    return bad(s.name, fmt::format("name {} is not a DNS label (1-63 letters, digits and '-', not at either end)",
                                   quoted(s.name)));
  if (s.dir.empty() || s.console_log.empty() || s.kernel.empty() || s.root_disk.empty())
    return bad(s.name, "the runtime dir, console log, kernel and root disk must all be set");
  for (const auto* p : {&s.dir, &s.console_log, &s.kernel, &s.initrd, &s.root_disk, &s.work_disk, &s.memory_file})
    if (p->string().find_first_of(std::string_view("\n\0", 2)) != std::string::npos)
      return bad(s.name, fmt::format("path {} contains a newline or NUL", quoted(p->string())));
  if ((s.dir / "agent.sock").string().size() >= sizeof(sockaddr_un{}.sun_path))
    return bad(s.name, fmt::format("runtime dir {} is too long for a unix socket path (at most {} bytes with "
                                   "/agent.sock); use a shorter state directory",
                                   s.dir.string(), sizeof(sockaddr_un{}.sun_path) - 1));
  if (s.vcpus < 1 || s.vcpus > 255)
    return bad(s.name, fmt::format("{} vCPUs: must be 1 to 255", s.vcpus));
  if (s.memory_mib < 32 || s.memory_mib > (1u << 20))
    return bad(s.name, fmt::format("{} MiB of memory: must be 32 MiB to 1 TiB", s.memory_mib));
  if (!s.tap.empty()) {
    bool ok = s.tap.size() <= 15;
    for (char c : s.tap)
      ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.');
    if (!ok)
      return bad(s.name, fmt::format("tap name {}: at most 15 letters, digits, '-', '_', '.'", quoted(s.tap)));
  }
  if (!s.mac.empty() && !mac_address(s.mac))
    return bad(s.name, fmt::format("MAC {} is not a unicast xx:xx:xx:xx:xx:xx address", quoted(s.mac)));
  if (!s.ip_cidr.empty() && !parse_cidr(s.ip_cidr))
    return bad(s.name, fmt::format("guest address {} is not a.b.c.d/prefix", quoted(s.ip_cidr)));
  if (!s.gateway.empty() && (s.ip_cidr.empty() || !ipv4(s.gateway)))
    return bad(s.name, fmt::format("gateway {} must be an IPv4 address and needs a guest address", quoted(s.gateway)));
  if (s.init.find_first_of(" \t\n") != std::string::npos)
    return bad(s.name, fmt::format("init {} contains whitespace", quoted(s.init)));
  if (s.extra_cmdline.find('\n') != std::string::npos)
    return bad(s.name, "the extra kernel command line contains a newline");
  if (s.incoming && (s.memory_file.empty() || s.memory_shared))
    return bad(s.name, "a VM restored from a boot snapshot maps the snapshot's memory file privately");
  return {};
}

namespace {
/// " KEY=<addr>::<gw>:<mask>:<name>:eth0:off", or "" without an address.
std::string ip_argument(const vm_spec& s, std::string_view key) {
  auto cidr = parse_cidr(s.ip_cidr);
  if (!cidr)
    return {};
  return fmt::format(" {}={}::{}:{}:{}:eth0:off", key, cidr->first, s.gateway, prefix_mask(cidr->second), s.name);
}
} // namespace

std::string restored_settings(const vm_spec& s) {
  std::string c = "banger.hostname=" + s.name;
  if (!s.tap.empty())
    c += " banger.mac=" + (s.mac.empty() ? derive_mac(s.name) : s.mac);
  return c + ip_argument(s, "banger.ip");
}

std::string kernel_cmdline(const vm_spec& s, bool tcg, long host_khz) {
  std::string c = "console=ttyS0 reboot=k panic=1 root=/dev/vda rw quiet";
  if (tcg) {
    // host-facts.md: without these some TCG boots hang calibrating the TSC.
    if (host_khz > 0)
      c += fmt::format(" tsc_early_khz={}", host_khz);
    c += " tsc=reliable no_timer_check";
  }
  if (!s.init.empty())
    c += " init=" + s.init;
  if (s.await_settings) {
    // A boot snapshot's template: nothing on the line may be one VM's (every VM restored from
    // it shares it); banger-init waits for the settings the agent's configure brings.
    c += " banger.await";
    if (!s.work_disk.empty())
      c += " banger.work=/dev/vdb";
    if (!s.extra_cmdline.empty())
      c += " " + s.extra_cmdline;
    return c;
  }
  c += " banger.hostname=" + s.name;
  // banger-init configures eth0 itself (ioctls, no subprocess): it gets `banger.ip=`, which the
  // initramfs leaves alone, saving the initramfs' own `ip` commands (five busybox execs, a
  // measurable part of a TCG boot). Any other init gets the standard `ip=` applied for it.
  const bool banger_init = s.init.ends_with("/banger-init");
  c += ip_argument(s, banger_init ? "banger.ip" : "ip");
  if (!s.work_disk.empty())
    c += " banger.work=/dev/vdb";
  if (!s.extra_cmdline.empty())
    c += " " + s.extra_cmdline;
  return c;
}

} // namespace banger::vmm
