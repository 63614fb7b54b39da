// See link.hpp. A request is one rtnetlink message (nlmsghdr, ifinfomsg, attributes) sent to
// the kernel on a fresh NETLINK_ROUTE socket; its answer is one message: RTM_NEWLINK for a
// RTM_GETLINK, or NLMSG_ERROR (error 0 is the ack a NLM_F_ACK request asked for).
#include "helper/link.hpp"

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#include "common/process.hpp"

namespace banger::helper {

namespace {

constexpr const char* tun_path = "/dev/net/tun";

/// One rtnetlink link request under construction: header, ifinfomsg, then attributes.
class link_request {
public:
  link_request(std::uint16_t type, std::uint16_t flags, const ifinfomsg& ifi) : buf_(NLMSG_LENGTH(sizeof ifi)) {
    auto* h = header();
    h->nlmsg_type = type;
    h->nlmsg_flags = static_cast<std::uint16_t>(NLM_F_REQUEST | flags);
    h->nlmsg_seq = 1;
    std::memcpy(NLMSG_DATA(h), &ifi, sizeof ifi);
  }

  void attr(std::uint16_t type, const void* data, std::size_t len) {
    std::size_t off = NLMSG_ALIGN(buf_.size());
    buf_.resize(off + RTA_SPACE(len));
    auto* a = reinterpret_cast<rtattr*>(buf_.data() + off);
    a->rta_type = type;
    a->rta_len = static_cast<unsigned short>(RTA_LENGTH(len));
    std::memcpy(RTA_DATA(a), data, len);
  }

  const std::vector<char>& finish() {
    header()->nlmsg_len = static_cast<std::uint32_t>(buf_.size());
    return buf_;
  }

private:
  nlmsghdr* header() { return reinterpret_cast<nlmsghdr*>(buf_.data()); }
  std::vector<char> buf_;
};

/// The kernel's answer: `err` is the errno of a NLMSG_ERROR (0 for an ack), `msg` the reply.
struct nl_answer {
  int err = 0;
  std::vector<char> msg;
};

/// Sends `req` on a fresh rtnetlink socket and reads its one answer. `what` names the request
/// in messages about failing syscalls.
expected<nl_answer> transact(link_request& req, const std::string& what) {
  int raw = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (raw < 0)
    return make_error(errc::operation_failed,
                      "socket(AF_NETLINK, NETLINK_ROUTE) for " + what + ": " + errno_text(errno));
  unique_fd fd(raw);
  const auto& out = req.finish();
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(fd.get(), out.data(), out.size(), 0, reinterpret_cast<const sockaddr*>(&kernel), sizeof kernel) < 0)
    return make_error(errc::operation_failed, "sendto(rtnetlink) for " + what + ": " + errno_text(errno));
  std::vector<char> in(64 * 1024);
  for (;;) {
    ssize_t n = ::recv(fd.get(), in.data(), in.size(), MSG_TRUNC);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return make_error(errc::operation_failed, "recv(rtnetlink) for " + what + ": " + errno_text(errno));
    if (static_cast<std::size_t>(n) > in.size())
      return make_error(errc::operation_failed, "recv(rtnetlink) for " + what + ": answer of " + std::to_string(n) +
                                                  " bytes exceeds the buffer");
    int len = static_cast<int>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(in.data()); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_seq != 1)
        continue;
      nl_answer a;
      if (h->nlmsg_type == NLMSG_ERROR) {
        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr)))
          return make_error(errc::operation_failed, "rtnetlink answered " + what + " with a short error message");
        a.err = -static_cast<const nlmsgerr*>(NLMSG_DATA(h))->error;
        return a;
      }
      auto* begin = reinterpret_cast<const char*>(h);
      a.msg.assign(begin, begin + h->nlmsg_len);
      return a;
    }
  }
}

std::uint16_t attr_type(const rtattr* a) { return static_cast<std::uint16_t>(a->rta_type & NLA_TYPE_MASK); }

std::uint32_t attr_u32(const rtattr* a) {
  std::uint32_t v = 0;
  if (RTA_PAYLOAD(a) >= sizeof v)
    std::memcpy(&v, RTA_DATA(a), sizeof v);
  return v;
}

void parse_tun_data(rtattr* data, link_info& out) {
  int len = static_cast<int>(RTA_PAYLOAD(data));
  for (auto* a = static_cast<rtattr*>(RTA_DATA(data)); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    if (attr_type(a) == IFLA_TUN_TYPE && RTA_PAYLOAD(a) >= 1)
      out.tap = *static_cast<const std::uint8_t*>(RTA_DATA(a)) == IFF_TAP;
    else if (attr_type(a) == IFLA_TUN_OWNER)
      out.owner = attr_u32(a);
  }
}

void parse_linkinfo(rtattr* info, link_info& out) {
  int len = static_cast<int>(RTA_PAYLOAD(info));
  rtattr* data = nullptr;
  for (auto* a = static_cast<rtattr*>(RTA_DATA(info)); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    if (attr_type(a) == IFLA_INFO_KIND)
      out.kind.assign(static_cast<const char*>(RTA_DATA(a)),
                      strnlen(static_cast<const char*>(RTA_DATA(a)), RTA_PAYLOAD(a)));
    else if (attr_type(a) == IFLA_INFO_DATA)
      data = a;
  }
  if (data && out.kind == "tun")
    parse_tun_data(data, out);
}

link_info parse_link(std::vector<char>& msg) {
  auto* h = reinterpret_cast<nlmsghdr*>(msg.data());
  auto* ifi = static_cast<ifinfomsg*>(NLMSG_DATA(h));
  link_info out;
  out.exists = true;
  out.index = ifi->ifi_index;
  out.up = (ifi->ifi_flags & IFF_UP) != 0;
  int len = static_cast<int>(IFLA_PAYLOAD(h));
  for (auto* a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    if (attr_type(a) == IFLA_MASTER)
      out.master = static_cast<int>(attr_u32(a));
    else if (attr_type(a) == IFLA_LINKINFO)
      parse_linkinfo(a, out);
  }
  return out;
}

/// An fd on /dev/net/tun attached to tap `name` (TUNSETIFF, as `ip tuntap` sets it up).
expected<unique_fd> attach_tap(const std::string& name, int extra_flags) {
  int raw = ::open(tun_path, O_RDWR | O_CLOEXEC);
  if (raw < 0) {
    int e = errno;
    return make_error(errc::operation_failed, std::string("open ") + tun_path + " for tap " + name + ": " +
                                                errno_text(e) + (e == ENOENT ? "; load the tun module" : ""));
  }
  unique_fd tun(raw);
  ifreq ifr{};
  name.copy(ifr.ifr_name, IFNAMSIZ - 1);
  ifr.ifr_flags = static_cast<short>(IFF_TAP | IFF_NO_PI | extra_flags);
  if (::ioctl(tun.get(), TUNSETIFF, &ifr) != 0)
    return make_error(errc::operation_failed,
                      std::string("ioctl(TUNSETIFF) on ") + tun_path + " for tap " + name + ": " + errno_text(errno));
  return tun;
}

expected<void> tun_ioctl(const unique_fd& tun, unsigned long request, unsigned long arg, const char* request_name,
                         const std::string& name) {
  if (::ioctl(tun.get(), request, arg) != 0)
    return make_error(errc::operation_failed, std::string("ioctl(") + request_name + ") on " + tun_path + " for tap " +
                                                name + ": " + errno_text(errno));
  return {};
}

} // namespace

expected<link_info> read_link(const std::string& name) {
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  link_request req(RTM_GETLINK, 0, ifi);
  req.attr(IFLA_IFNAME, name.c_str(), name.size() + 1);
  std::uint32_t mask = RTEXT_FILTER_SKIP_STATS;
  req.attr(IFLA_EXT_MASK, &mask, sizeof mask);
  auto a = transact(req, "RTM_GETLINK " + name);
  if (!a)
    return std::move(a).err();
  if (a->err == ENODEV)
    return link_info{};
  if (a->err != 0)
    return make_error(errc::operation_failed, "rtnetlink RTM_GETLINK " + name + ": " + errno_text(a->err));
  if (a->msg.size() < NLMSG_LENGTH(sizeof(ifinfomsg)) ||
      reinterpret_cast<const nlmsghdr*>(a->msg.data())->nlmsg_type != RTM_NEWLINK)
    return make_error(errc::operation_failed, "rtnetlink answered RTM_GETLINK " + name + " with an unexpected message");
  return parse_link(a->msg);
}

std::string link_name(int index) {
  char buf[IF_NAMESIZE] = {};
  if (::if_indextoname(static_cast<unsigned>(index), buf) == nullptr)
    return "ifindex " + std::to_string(index);
  return buf;
}

expected<void> add_tap(const std::string& name, unsigned owner_uid) {
  auto tun = attach_tap(name, IFF_TUN_EXCL);
  if (!tun)
    return std::move(tun).err();
  // Until TUNSETPERSIST succeeds, closing `tun` removes the new tap again.
  if (auto ok = tun_ioctl(*tun, TUNSETOWNER, owner_uid, "TUNSETOWNER", name); !ok)
    return ok;
  return tun_ioctl(*tun, TUNSETPERSIST, 1, "TUNSETPERSIST 1", name);
}

expected<void> delete_tap_device(const std::string& name) {
  auto tun = attach_tap(name, 0);
  if (!tun)
    return std::move(tun).err();
  // Closing the last fd of a tap that is not persistent unregisters it.
  return tun_ioctl(*tun, TUNSETPERSIST, 0, "TUNSETPERSIST 0", name);
}

expected<void> set_master_and_up(int index, const std::string& name, int master_index, const std::string& master_name) {
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = index;
  ifi.ifi_flags = IFF_UP;
  ifi.ifi_change = IFF_UP;
  link_request req(RTM_NEWLINK, NLM_F_ACK, ifi);
  auto master = static_cast<std::uint32_t>(master_index);
  req.attr(IFLA_MASTER, &master, sizeof master);
  const std::string what = "RTM_NEWLINK " + name + " master " + master_name + " up";
  auto a = transact(req, what);
  if (!a)
    return std::move(a).err();
  if (a->err != 0)
    return make_error(errc::operation_failed, "rtnetlink " + what + ": " + errno_text(a->err));
  return {};
}

} // namespace banger::helper
