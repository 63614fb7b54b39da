// Encoding of journal values: one capnp `Event` (schema/events.capnp) per event and one
// `Snapshot` per stream snapshot, each a single message serialised as unpacked flat words
// (capnp's standard segment table followed by the segments). Pure functions; any thread.
//
//   value = [segment table][segment 0 words ...]   (length is a multiple of 8 bytes)
//
// Payloads are mapped generically (schema/fields_capnp.hpp): each kind is the union member of its
// name in camelCase, each field the member's field of its name.
//
// Invariants: encode() never fails; decode() never throws: any kj::Exception raised while
// parsing is turned into an error naming the seq. A payload union member this build does not
// know decodes to unknown_event carrying the raw discriminant, and encoding an unknown_event
// writes that discriminant back, so unknown events survive a decode/encode round trip.
#include "journal/codec.hpp"

#include <capnp/any.h>
#include <capnp/dynamic.h>
#include <capnp/message.h>
#include <capnp/schema.h>
#include <capnp/serialize.h>
#include <kj/array.h>
#include <kj/exception.h>

#include <array>
#include <cstring>
#include <fmt/format.h>
#include <map>
#include <optional>
#include <type_traits>

#include "schema/events.capnp.h"
#include "schema/fields_capnp.hpp"

namespace banger::journal {

namespace {

capnp::Text::Reader text_of(const std::string& s) { return capnp::Text::Reader(s.data(), s.size()); }

std::string to_string(capnp::Text::Reader t) { return std::string(t.begin(), t.size()); }

/// Byte offset of the payload union's tag inside Event's data section.
std::size_t payload_tag_offset() {
  return static_cast<std::size_t>(
           capnp::Schema::from<schema::Event::Payload>().getProto().getStruct().getDiscriminantOffset()) *
         sizeof(std::uint16_t);
}

std::string flatten(capnp::MessageBuilder& message) {
  kj::Array<capnp::word> words = capnp::messageToFlatArray(message);
  auto bytes = words.asBytes();
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

/// Words small enough to decode from the stack; larger values go to the heap.
constexpr std::size_t stack_words = 64;

/// Views `bytes` as capnp words. RocksDB hands out values at arbitrary addresses, so a value
/// that is not 8-byte aligned is copied into `stack` (when it fits) or into `heap`.
kj::ArrayPtr<const capnp::word> as_words(std::string_view bytes, capnp::word (&stack)[stack_words],
                                         kj::Array<capnp::word>& heap) {
  std::size_t n = bytes.size() / sizeof(capnp::word);
  if (reinterpret_cast<std::uintptr_t>(bytes.data()) % alignof(capnp::word) == 0)
    return kj::arrayPtr(reinterpret_cast<const capnp::word*>(bytes.data()), n);
  capnp::word* dst = stack;
  if (n > stack_words) {
    heap = kj::heapArray<capnp::word>(n);
    dst = heap.begin();
  }
  std::memcpy(dst, bytes.data(), n * sizeof(capnp::word));
  return kj::arrayPtr(const_cast<const capnp::word*>(dst), n);
}

std::string describe(const kj::Exception& e) {
  auto d = e.getDescription();
  return std::string(d.begin(), d.size());
}

/// Each payload alternative's capnp union member (its kind in camelCase), that member's fields
/// in inspect order, and its decoder; built once, then only read.
struct member {
  capnp::StructSchema::Field union_field;
  std::vector<capnp::StructSchema::Field> fields;
  payload (*read)(capnp::DynamicStruct::Reader r, const member& m);
};

struct member_table {
  std::array<std::optional<member>, std::variant_size_v<payload>> by_index;
  std::map<std::uint16_t, std::size_t> by_tag; ///< union discriminant -> variant index
};

template <std::size_t I>
void add_member(member_table& t, capnp::StructSchema payload_schema) {
  using t_i = std::variant_alternative_t<I, payload>;
  if constexpr (!std::is_same_v<t_i, unknown_event>) {
    auto union_field = payload_schema.getFieldByName(capnp_fields::camel(t_i::kind));
    auto schema = union_field.getType().asStruct();
    auto read = [](capnp::DynamicStruct::Reader r, const member& m) -> payload {
      t_i v{};
      capnp_fields::read(r, m.fields, v);
      return v;
    };
    auto fields = capnp_fields::fields_for<t_i>(schema);
    // Every field of the member is the value's: none is left out of inspect().
    KJ_REQUIRE(fields.size() == schema.getFields().size(), "a payload's inspect() misses capnp fields",
               t_i::kind.data());
    t.by_index[I] = member{union_field, std::move(fields), read};
    t.by_tag[union_field.getProto().getDiscriminantValue()] = I;
  }
}

const member_table& members() {
  static const member_table table = [] {
    member_table t;
    auto schema = capnp::Schema::from<schema::Event::Payload>();
    [&]<std::size_t... I>(std::index_sequence<I...>) { (add_member<I>(t, schema), ...); }
    (std::make_index_sequence<std::variant_size_v<payload>>{});
    return t;
  }();
  return table;
}

} // namespace

std::string encode(const stored_event& e) {
  // Most events fit one small first segment; size it so no 8 KiB default is allocated.
  std::size_t hint = 16 + (e.stream.size() + e.op_id.size()) / 8;
  if (const auto* n = std::get_if<note>(&e.body))
    hint += n->text.size() / 8;
  capnp::MallocMessageBuilder message(static_cast<unsigned>(hint));
  auto root = message.initRoot<schema::Event>();
  root.setStream(text_of(e.stream));
  root.setVersion(e.version);
  root.setWallTimeNs(e.wall_time_ns);
  root.setOpId(text_of(e.op_id));
  auto body = root.getPayload();
  if (const auto* u = std::get_if<unknown_event>(&e.body)) {
    // Keep the tag we could not interpret; the member's body is lost (we never had it).
    auto data = capnp::toAny(root).getDataSection();
    std::size_t at = payload_tag_offset();
    data[at] = static_cast<kj::byte>(u->discriminant & 0xff);
    data[at + 1] = static_cast<kj::byte>(u->discriminant >> 8);
  } else {
    const auto& m = *members().by_index[e.body.index()];
    std::visit(
      [&](const auto& v) {
        using t = std::decay_t<decltype(v)>;
        if constexpr (!std::is_same_v<t, unknown_event>)
          capnp_fields::write(capnp::toDynamic(body).init(m.union_field).template as<capnp::DynamicStruct>(), m.fields,
                              v);
      },
      e.body);
  }
  return flatten(message);
}

expected<stored_event> decode(std::uint64_t seq, std::string_view bytes) {
  auto fail = [&](std::string_view why) {
    return make_error(errc::operation_failed,
                      fmt::format("journal: event seq {} does not decode ({}, {} bytes): the journal is damaged "
                                  "at that seq; keep a copy of the journal directory and restore it from a backup",
                                  seq, why, bytes.size()));
  };
  if (bytes.empty() || bytes.size() % sizeof(capnp::word) != 0)
    return fail("length is not a positive multiple of 8");
  capnp::word stack[stack_words];
  kj::Array<capnp::word> heap;
  auto words = as_words(bytes, stack, heap);
  try {
    capnp::FlatArrayMessageReader message(words);
    if (message.getEnd() != words.end())
      return fail("trailing bytes after the message");
    auto root = message.getRoot<schema::Event>();
    stored_event e;
    e.seq = seq;
    e.stream = to_string(root.getStream());
    e.version = root.getVersion();
    e.wall_time_ns = root.getWallTimeNs();
    e.op_id = to_string(root.getOpId());
    auto body = root.getPayload();
    auto tag = static_cast<std::uint16_t>(body.which());
    const auto& table = members();
    auto at = table.by_tag.find(tag);
    if (at == table.by_tag.end()) {
      e.body = unknown_event{tag};
    } else {
      const auto& m = *table.by_index[at->second];
      e.body = m.read(capnp::toDynamic(body).get(m.union_field).as<capnp::DynamicStruct>(), m);
    }
    return e;
  } catch (const kj::Exception& ex) {
    return fail(describe(ex));
  }
}

std::string encode_snapshot(const snapshot& s) {
  capnp::MallocMessageBuilder message(static_cast<unsigned>(8 + s.state.size() / 8));
  auto root = message.initRoot<schema::Snapshot>();
  root.setVersion(s.version);
  root.setState(capnp::Data::Reader(reinterpret_cast<const kj::byte*>(s.state.data()), s.state.size()));
  return flatten(message);
}

expected<snapshot> decode_snapshot(std::string_view bytes) {
  auto fail = [&](std::string_view why) {
    return make_error(errc::operation_failed,
                      fmt::format("snapshot does not decode ({}, {} bytes); overwrite it with a fresh snapshot "
                                  "(the stream's events are intact and can be folded again)",
                                  why, bytes.size()));
  };
  if (bytes.empty() || bytes.size() % sizeof(capnp::word) != 0)
    return fail("length is not a positive multiple of 8");
  capnp::word stack[stack_words];
  kj::Array<capnp::word> heap;
  auto words = as_words(bytes, stack, heap);
  try {
    capnp::FlatArrayMessageReader message(words);
    if (message.getEnd() != words.end())
      return fail("trailing bytes after the message");
    auto root = message.getRoot<schema::Snapshot>();
    auto state = root.getState();
    return snapshot{root.getVersion(), std::string(reinterpret_cast<const char*>(state.begin()), state.size())};
  } catch (const kj::Exception& ex) {
    return fail(describe(ex));
  }
}

} // namespace banger::journal
