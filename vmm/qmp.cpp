// See qmp.hpp.
#include "vmm/qmp.hpp"

#include <cerrno>
#include <cstring>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace banger::vmm {

namespace {

using json = nlohmann::json;

/// Lines longer than this are not QMP answers to anything banger asks (query-status is ~60 B).
constexpr std::size_t max_line = 1 << 20;

} // namespace

expected<qmp_client> qmp_client::connect(const std::filesystem::path& socket, clock::time_point deadline) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const auto& p = socket.native();
  if (p.size() >= sizeof addr.sun_path)
    return make_error(errc::bad_request, fmt::format("QMP socket path {} is too long", p));
  std::memcpy(addr.sun_path, p.c_str(), p.size() + 1);
  unique_fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd)
    return make_error(errc::operation_failed, fmt::format("socket(AF_UNIX): {}", errno_text(errno)));
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    return make_error(err == ENOENT || err == ECONNREFUSED ? errc::unavailable : errc::operation_failed,
                      fmt::format("connect {}: {}", p, errno_text(err)));
  }
  qmp_client c(std::move(fd), socket);
  auto greeting = c.read_line(deadline);
  if (!greeting)
    return std::move(greeting).err();
  auto g = json::parse(*greeting, nullptr, false);
  if (!g.is_object() || !g.contains("QMP"))
    return make_error(errc::operation_failed, fmt::format("{}: not a QMP greeting: {}", p, greeting->substr(0, 200)));
  auto caps = c.execute("qmp_capabilities", deadline);
  if (!caps)
    return std::move(caps).err();
  return c;
}

expected<void> qmp_client::send_line(const std::string& line) {
  std::size_t off = 0;
  while (off < line.size()) {
    // MSG_NOSIGNAL: a QEMU that just exited must not kill the caller with SIGPIPE.
    ssize_t n = ::send(fd_.get(), line.data() + off, line.size() - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      int err = errno;
      return make_error(err == EPIPE || err == ECONNRESET ? errc::not_running : errc::operation_failed,
                        fmt::format("send to {}: {}", socket_.string(), errno_text(err)));
    }
    off += static_cast<std::size_t>(n);
  }
  return {};
}

expected<std::string> qmp_client::read_line(clock::time_point deadline) {
  for (;;) {
    auto nl = buf_.find('\n');
    if (nl != std::string::npos) {
      auto line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      if (!line.empty() && line.back() == '\r')
        line.pop_back();
      if (line.empty())
        continue;
      return line;
    }
    if (buf_.size() > max_line)
      return make_error(errc::operation_failed,
                        fmt::format("{}: QMP line longer than {} bytes", socket_.string(), max_line));
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
    if (left <= 0)
      return make_error(errc::operation_failed, fmt::format("{}: QEMU did not answer in time", socket_.string()));
    pollfd pfd{fd_.get(), POLLIN, 0};
    int r = ::poll(&pfd, 1, static_cast<int>(left));
    if (r < 0) {
      if (errno == EINTR)
        continue;
      return make_error(errc::operation_failed, fmt::format("poll {}: {}", socket_.string(), errno_text(errno)));
    }
    if (r == 0)
      continue; // the deadline check above reports it
    char chunk[4096];
    ssize_t n = ::read(fd_.get(), chunk, sizeof chunk);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN)
        continue;
      int err = errno;
      return make_error(err == ECONNRESET ? errc::not_running : errc::operation_failed,
                        fmt::format("read {}: {}", socket_.string(), errno_text(err)));
    }
    if (n == 0)
      return make_error(errc::not_running, fmt::format("{}: QEMU closed the QMP connection", socket_.string()));
    buf_.append(chunk, static_cast<std::size_t>(n));
  }
}

expected<std::string> qmp_client::execute(std::string_view command, clock::time_point deadline,
                                          std::string_view arguments_json) {
  json req = {{"execute", command}};
  if (!arguments_json.empty()) {
    auto args = json::parse(arguments_json, nullptr, false);
    // The arguments come from this library's own code: malformed ones are a bug.
    if (!args.is_object())
      return make_error(errc::internal, fmt::format("QMP {}: arguments are not a JSON object", command));
    req["arguments"] = std::move(args);
  }
  if (auto s = send_line(req.dump() + "\n"); !s)
    return std::move(s).err();
  for (;;) {
    auto line = read_line(deadline);
    if (!line)
      return std::move(line).err();
    auto msg = json::parse(*line, nullptr, false);
    if (!msg.is_object())
      return make_error(errc::operation_failed, fmt::format("{}: QMP sent something that is not a JSON object: {}",
                                                            socket_.string(), line->substr(0, 200)));
    if (msg.contains("event"))
      continue;
    if (auto r = msg.find("return"); r != msg.end())
      return r->dump();
    if (auto e = msg.find("error"); e != msg.end()) {
      std::string cls = e->is_object() ? e->value("class", "") : "";
      std::string desc = e->is_object() ? e->value("desc", "") : e->dump();
      return make_error(errc::operation_failed, fmt::format("QMP {} failed: {} ({})", command, desc, cls));
    }
    return make_error(errc::operation_failed,
                      fmt::format("{}: unexpected QMP message: {}", socket_.string(), line->substr(0, 200)));
  }
}

} // namespace banger::vmm
