// bench-ext4: figures for guestfs/ext4, printed, never asserted (STYLE: tests never assert on wall
// time). One base image (64 MiB, an empty /data) is made with create_image and copied twice (both
// copies fsynced, see below); then, in the same run:
//   1. in-process: ext4_image::open once, write_file N small files into /data, close;
//   2. debugfs: N `debugfs -w -R "write HOSTFILE /data/fN" IMAGE` calls on the other copy.
// Both times, the per-file cost and the ratio are printed (the target is >= 10x). Afterwards,
// outside the timing, both images are checked: N entries in /data and `e2fsck -fn` clean.
// Usage: bench-ext4 [--dir DIR] [--files N] [--bytes B]. Single-threaded.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "guestfs/ext4.hpp"

namespace {

namespace fs = std::filesystem;
using steady = std::chrono::steady_clock;
using banger::guestfs::ext4_image;

struct config {
  fs::path dir;
  int files = 100;
  std::size_t bytes = 200;
};

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "bench-ext4: %s\n", what.c_str());
  std::exit(1);
}

std::string find_tool(const std::string& name) {
  for (const char* d : {"/usr/sbin", "/sbin", "/usr/bin", "/bin"}) {
    auto p = fs::path(d) / name;
    if (::access(p.c_str(), X_OK) == 0)
      return p.string();
  }
  die(name + " not found: install e2fsprogs");
}

/// Runs argv with stdio on /dev/null; returns the exit code (-1 if killed).
int run_quiet(const std::vector<std::string>& argv) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  std::vector<char*> args;
  for (const auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0)
    die(fmt::format("posix_spawn {}: {}", argv[0], std::strerror(rc)));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

config parse(int argc, char** argv) {
  config c;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc)
        die("missing value for " + a);
      return argv[++i];
    };
    if (a == "--dir")
      c.dir = next();
    else if (a == "--files")
      c.files = std::stoi(next());
    else if (a == "--bytes")
      c.bytes = std::stoul(next());
    else
      die("usage: bench-ext4 [--dir DIR] [--files N] [--bytes B]");
  }
  if (c.files <= 0)
    die("--files must be positive");
  return c;
}

template <class T>
T must(banger::expected<T> r, const char* what) {
  if (!r)
    die(fmt::format("{}: {}", what, r.err().message));
  return std::move(r).value();
}
void must(banger::expected<void> r, const char* what) {
  if (!r)
    die(fmt::format("{}: {}", what, r.err().message));
}

void check_image(const fs::path& img, int files, const std::string& e2fsck) {
  auto im = must(ext4_image::open(img, false), "reopen for checking");
  auto entries = must(im.list("/data"), "list /data");
  int code = run_quiet({e2fsck, "-fn", img.string()});
  std::printf("  check %-12s %zu entries in /data, e2fsck -fn %s\n", img.filename().c_str(), entries.size(),
              code == 0 ? "clean" : "REPORTS ERRORS");
  if (static_cast<int>(entries.size()) != files || code != 0)
    die("image check failed: " + img.string());
}

} // namespace

int main(int argc, char** argv) {
  config cfg = parse(argc, argv);
  bool own_dir = cfg.dir.empty();
  if (own_dir) {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = (fs::path(tmp && *tmp ? tmp : "/tmp") / "bench-ext4.XXXXXX").string();
    if (!::mkdtemp(tmpl.data()))
      die("mkdtemp: " + std::string(std::strerror(errno)));
    cfg.dir = tmpl;
  }
  const std::string debugfs = find_tool("debugfs");
  const std::string e2fsck = find_tool("e2fsck");

  auto tree = cfg.dir / "tree";
  fs::create_directories(tree / "data");
  auto base = cfg.dir / "base.ext4";
  fs::remove(base);
  must(banger::guestfs::create_image(base, 64u << 20, tree), "create_image");
  auto img_lib = cfg.dir / "inprocess.ext4";
  auto img_dbg = cfg.dir / "debugfs.ext4";
  fs::copy_file(base, img_lib, fs::copy_options::overwrite_existing);
  fs::copy_file(base, img_dbg, fs::copy_options::overwrite_existing);
  // libext2fs fsyncs an image when it opens it writable: flush the fresh copies first so neither
  // contender is charged for writing back 64 MiB of page cache.
  for (const auto& p : {img_lib, img_dbg}) {
    int fd = ::open(p.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0 || ::fsync(fd) != 0)
      die("fsync " + p.string() + ": " + std::strerror(errno));
    ::close(fd);
  }
  std::string payload(cfg.bytes, '\0');
  for (std::size_t i = 0; i < payload.size(); ++i)
    payload[i] = static_cast<char>('a' + i % 26);
  auto host_file = cfg.dir / "payload";
  std::ofstream(host_file, std::ios::binary) << payload;

  std::printf("bench-ext4: %d files of %zu bytes into /data of a 64 MiB image (%s)\n", cfg.files, cfg.bytes,
              cfg.dir.c_str());

  auto seconds_since = [](steady::time_point t) { return std::chrono::duration<double>(steady::now() - t).count(); };
  auto t0 = steady::now();
  double open_s = 0, write_s = 0;
  {
    auto im = must(ext4_image::open(img_lib, true), "open");
    open_s = seconds_since(t0);
    for (int i = 0; i < cfg.files; ++i)
      must(im.write_file(fmt::format("/data/f{}", i), payload, 0644, 0, 0), "write_file");
    write_s = seconds_since(t0) - open_s;
    must(im.close(), "close");
  }
  double lib_s = seconds_since(t0);

  t0 = steady::now();
  for (int i = 0; i < cfg.files; ++i) {
    int code =
      run_quiet({debugfs, "-w", "-R", fmt::format("write {} /data/f{}", host_file.string(), i), img_dbg.string()});
    if (code != 0)
      die(fmt::format("debugfs write #{} exited {}", i, code));
  }
  double dbg_s = seconds_since(t0);

  std::printf("  in-process (libext2fs, 1 open): %8.2f ms total, %8.1f us/file\n", lib_s * 1e3,
              lib_s * 1e6 / cfg.files);
  std::printf("    (open %.2f ms, %d x write_file %.2f ms, close %.2f ms)\n", open_s * 1e3, cfg.files, write_s * 1e3,
              (lib_s - open_s - write_s) * 1e3);
  std::printf("  debugfs (%d subprocesses):      %8.2f ms total, %8.1f us/file\n", cfg.files, dbg_s * 1e3,
              dbg_s * 1e6 / cfg.files);
  std::printf("  speedup: %.1fx (target >= 10x)\n", dbg_s / lib_s);

  check_image(img_lib, cfg.files, e2fsck);
  check_image(img_dbg, cfg.files, e2fsck);
  if (own_dir)
    fs::remove_all(cfg.dir);
  return 0;
}
