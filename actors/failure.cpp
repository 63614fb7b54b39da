// See failure.hpp.
#include "actors/failure.hpp"

#include <caf/all.hpp>
#include <fmt/core.h>

namespace banger::actors {

namespace {
constexpr caf::atom_value banger_category = caf::atom("banger");
}

caf::error to_caf(const error& e) {
  return caf::error(static_cast<std::uint8_t>(e.code), banger_category, caf::make_message(e.message, e.op_id));
}

error from_caf(const caf::error& e, const caf::actor_system& sys, std::string_view what) {
  if (e.category() == banger_category) {
    error out{errc_from_number(e.code()), {}, {}};
    const auto& ctx = e.context();
    if (ctx.match_elements<std::string, std::string>()) {
      out.message = ctx.get_as<std::string>(0);
      out.op_id = ctx.get_as<std::string>(1);
    }
    return out;
  }
  return make_error(errc::unavailable, fmt::format("{}{}", what, sys.render(e)));
}

std::string describe(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "an exception that is not a std::exception";
  }
}

error internal_error(const std::string& who, const std::string& what, const std::string& op) {
  return error{errc::internal,
               fmt::format("internal error in {}: {}; this is a bug in banger: please report it with the op id and "
                           "`banger daemon logs`",
                           who, what),
               op};
}

void install_exception_handler(caf::scheduled_actor* self, failure_context ctx) {
  self->set_exception_handler([self, ctx = std::move(ctx)](caf::scheduled_actor*, std::exception_ptr& x) -> caf::error {
    auto op = ctx.current_op ? ctx.current_op() : std::string();
    auto e = internal_error(ctx.who, describe(x), op);
    auto as_caf = to_caf(e);
    // The request being handled, when it expects an answer and has none yet.
    if (auto rp = self->make_response_promise(); rp.pending())
      rp.deliver(as_caf);
    if (ctx.held)
      for (auto& rp : ctx.held())
        if (rp.pending())
          rp.deliver(as_caf);
    return as_caf; // the actor's exit reason
  });
}

} // namespace banger::actors
