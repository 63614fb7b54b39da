// See proc.hpp.
#include "tests/support/proc.hpp"

#include "common/subprocess.hpp"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <unistd.h>

namespace banger::test {

namespace fs = std::filesystem;

run_result run(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
               std::chrono::milliseconds timeout) {
  process_options opts;
  opts.env = env;
  opts.timeout = timeout;
  auto p = run_process(argv, opts);
  return run_result{p.exit_code, p.timed_out, std::move(p.out), std::move(p.err)};
}

int spawn(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
          const fs::path& log_dir) {
  process_options opts;
  opts.env = env;
  int pid = spawn_process(argv, opts, log_dir / "spawn.out", log_dir / "spawn.err");
  if (pid < 0)
    throw std::runtime_error("fork failed");
  return pid;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

fs::path bin_dir() {
  const char* d = std::getenv("BANGER_BIN_DIR");
  if (d == nullptr)
    throw std::runtime_error("BANGER_BIN_DIR is not set (run the tests through ctest)");
  return d;
}

temp_dir::temp_dir(const std::string& prefix) {
  std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr)
    throw std::runtime_error("mkdtemp failed");
  path = buf.data();
}

temp_dir::~temp_dir() {
  std::error_code ec;
  fs::remove_all(path, ec);
}

} // namespace banger::test
