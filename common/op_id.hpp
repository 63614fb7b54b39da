// Operation ids: "op-" + 6 lowercase hex digits, given to every RPC at the daemon's entry and
// carried on its log lines, its events and its errors.
#pragma once

#include <random>
#include <string>
#include <string_view>

namespace banger {

/// Makes op ids from an owned generator; one per thread that needs one (not thread-safe).
class op_id_source {
public:
  explicit op_id_source(std::uint64_t seed) : rng_(seed) {}
  op_id_source() : rng_(std::random_device{}()) {}
  std::string next();

private:
  std::mt19937_64 rng_;
};

bool is_op_id(std::string_view s);

} // namespace banger
