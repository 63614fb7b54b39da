// Encoding of journal values: one capnp `Event` (schema/events.capnp) per event and one
// `Snapshot` per stream snapshot, each a single message serialised as unpacked flat words
// (capnp's standard segment table followed by the segments). Pure functions; any thread.
//
//   value = [segment table][segment 0 words ...]   (length is a multiple of 8 bytes)
//
// Invariants: encode() never fails; decode() never throws: any kj::Exception raised while
// parsing is turned into an error naming the seq. A payload union member this build does not
// know decodes to unknown_event carrying the raw discriminant, and encoding an unknown_event
// writes that discriminant back, so unknown events survive a decode/encode round trip.
#include "journal/codec.hpp"

#include <capnp/any.h>
#include <capnp/message.h>
#include <capnp/schema.h>
#include <capnp/serialize.h>
#include <kj/array.h>
#include <kj/exception.h>

#include <cstring>
#include <fmt/format.h>
#include <type_traits>

#include "schema/events.capnp.h"

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
  std::visit(
    [&](const auto& v) {
      using t = std::decay_t<decltype(v)>;
      if constexpr (std::is_same_v<t, daemon_started>) {
        auto b = body.initDaemonStarted();
        b.setVersion(text_of(v.version));
        b.setPid(v.pid);
        b.setBootId(text_of(v.boot_id));
      } else if constexpr (std::is_same_v<t, daemon_stopped>) {
        body.initDaemonStopped().setReason(text_of(v.reason));
      } else if constexpr (std::is_same_v<t, note>) {
        body.initNote().setText(text_of(v.text));
      } else if constexpr (std::is_same_v<t, artifact_started>) {
        body.initArtifactStarted().setSource(text_of(v.source));
      } else if constexpr (std::is_same_v<t, artifact_stage>) {
        body.initArtifactStage().setStage(text_of(v.stage));
      } else if constexpr (std::is_same_v<t, artifact_ready>) {
        auto b = body.initArtifactReady();
        b.setVersionId(text_of(v.version_id));
        b.setManifestSha256(text_of(v.manifest_sha256));
        b.setBytes(v.bytes);
        b.setSummary(text_of(v.summary));
      } else if constexpr (std::is_same_v<t, artifact_failed>) {
        auto b = body.initArtifactFailed();
        b.setStage(text_of(v.stage));
        b.setReason(text_of(v.reason));
      } else if constexpr (std::is_same_v<t, artifact_removed>) {
        body.initArtifactRemoved().setVersionId(text_of(v.version_id));
      } else if constexpr (std::is_same_v<t, vm_created>) {
        auto b = body.initVmCreated();
        b.setId(text_of(v.id));
        b.setImage(text_of(v.image));
        b.setImageVersion(text_of(v.image_version));
        b.setKernel(text_of(v.kernel));
        b.setKernelVersion(text_of(v.kernel_version));
        b.setVcpus(static_cast<std::uint32_t>(v.vcpus));
        b.setMemoryMib(static_cast<std::uint32_t>(v.memory_mib));
        b.setDiskMib(static_cast<std::uint32_t>(v.disk_mib));
      } else if constexpr (std::is_same_v<t, vm_configured>) {
        auto b = body.initVmConfigured();
        b.setVcpus(static_cast<std::uint32_t>(v.vcpus));
        b.setMemoryMib(static_cast<std::uint32_t>(v.memory_mib));
      } else if constexpr (std::is_same_v<t, vm_starting>) {
        body.initVmStarting().setKernelVersion(text_of(v.kernel_version));
      } else if constexpr (std::is_same_v<t, resource_intended>) {
        auto b = body.initResourceIntended();
        b.setKind(text_of(v.resource));
        b.setId(text_of(v.id));
      } else if constexpr (std::is_same_v<t, resource_acquired>) {
        auto b = body.initResourceAcquired();
        b.setKind(text_of(v.resource));
        b.setId(text_of(v.id));
        b.setDetail(text_of(v.detail));
      } else if constexpr (std::is_same_v<t, resource_released>) {
        auto b = body.initResourceReleased();
        b.setKind(text_of(v.resource));
        b.setId(text_of(v.id));
      } else if constexpr (std::is_same_v<t, vm_running>) {
        body.initVmRunning().setBootMs(v.boot_ms);
      } else if constexpr (std::is_same_v<t, vm_start_failed>) {
        auto b = body.initVmStartFailed();
        b.setStage(text_of(v.stage));
        b.setReason(text_of(v.reason));
      } else if constexpr (std::is_same_v<t, vm_stopping>) {
        body.initVmStopping().setHow(text_of(v.how));
      } else if constexpr (std::is_same_v<t, vm_stopped>) {
        body.initVmStopped().setReason(text_of(v.reason));
      } else if constexpr (std::is_same_v<t, vm_deleted>) {
        body.initVmDeleted();
      } else if constexpr (std::is_same_v<t, vm_command>) {
        auto b = body.initVmCommand();
        b.setCommand(text_of(v.command));
        b.setArgs(text_of(v.args));
        b.setRefused(text_of(v.refused));
      } else if constexpr (std::is_same_v<t, vm_adopted>) {
        auto b = body.initVmAdopted();
        b.setPid(v.pid);
        b.setBootId(text_of(v.boot_id));
      } else if constexpr (std::is_same_v<t, vm_deleting>) {
        body.initVmDeleting();
      } else {
        static_assert(std::is_same_v<t, unknown_event>);
        // Keep the tag we could not interpret; the member's body is lost (we never had it).
        auto data = capnp::toAny(root).getDataSection();
        std::size_t at = payload_tag_offset();
        data[at] = static_cast<kj::byte>(v.discriminant & 0xff);
        data[at + 1] = static_cast<kj::byte>(v.discriminant >> 8);
      }
    },
    e.body);
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
    switch (body.which()) {
    case schema::Event::Payload::DAEMON_STARTED: {
      auto b = body.getDaemonStarted();
      e.body = daemon_started{to_string(b.getVersion()), b.getPid(), to_string(b.getBootId())};
      break;
    }
    case schema::Event::Payload::DAEMON_STOPPED:
      e.body = daemon_stopped{to_string(body.getDaemonStopped().getReason())};
      break;
    case schema::Event::Payload::NOTE: e.body = note{to_string(body.getNote().getText())}; break;
    case schema::Event::Payload::ARTIFACT_STARTED:
      e.body = artifact_started{to_string(body.getArtifactStarted().getSource())};
      break;
    case schema::Event::Payload::ARTIFACT_STAGE:
      e.body = artifact_stage{to_string(body.getArtifactStage().getStage())};
      break;
    case schema::Event::Payload::ARTIFACT_READY: {
      auto b = body.getArtifactReady();
      e.body = artifact_ready{to_string(b.getVersionId()), to_string(b.getManifestSha256()), b.getBytes(),
                              to_string(b.getSummary())};
      break;
    }
    case schema::Event::Payload::ARTIFACT_FAILED: {
      auto b = body.getArtifactFailed();
      e.body = artifact_failed{to_string(b.getStage()), to_string(b.getReason())};
      break;
    }
    case schema::Event::Payload::ARTIFACT_REMOVED:
      e.body = artifact_removed{to_string(body.getArtifactRemoved().getVersionId())};
      break;
    case schema::Event::Payload::VM_CREATED: {
      auto b = body.getVmCreated();
      e.body = vm_created{to_string(b.getId()),
                          to_string(b.getImage()),
                          to_string(b.getImageVersion()),
                          to_string(b.getKernel()),
                          to_string(b.getKernelVersion()),
                          b.getVcpus(),
                          b.getMemoryMib(),
                          b.getDiskMib()};
      break;
    }
    case schema::Event::Payload::VM_CONFIGURED: {
      auto b = body.getVmConfigured();
      e.body = vm_configured{b.getVcpus(), b.getMemoryMib()};
      break;
    }
    case schema::Event::Payload::VM_STARTING:
      e.body = vm_starting{to_string(body.getVmStarting().getKernelVersion())};
      break;
    case schema::Event::Payload::RESOURCE_INTENDED: {
      auto b = body.getResourceIntended();
      e.body = resource_intended{to_string(b.getKind()), to_string(b.getId())};
      break;
    }
    case schema::Event::Payload::RESOURCE_ACQUIRED: {
      auto b = body.getResourceAcquired();
      e.body = resource_acquired{to_string(b.getKind()), to_string(b.getId()), to_string(b.getDetail())};
      break;
    }
    case schema::Event::Payload::RESOURCE_RELEASED: {
      auto b = body.getResourceReleased();
      e.body = resource_released{to_string(b.getKind()), to_string(b.getId())};
      break;
    }
    case schema::Event::Payload::VM_RUNNING: e.body = vm_running{body.getVmRunning().getBootMs()}; break;
    case schema::Event::Payload::VM_START_FAILED: {
      auto b = body.getVmStartFailed();
      e.body = vm_start_failed{to_string(b.getStage()), to_string(b.getReason())};
      break;
    }
    case schema::Event::Payload::VM_STOPPING: e.body = vm_stopping{to_string(body.getVmStopping().getHow())}; break;
    case schema::Event::Payload::VM_STOPPED: e.body = vm_stopped{to_string(body.getVmStopped().getReason())}; break;
    case schema::Event::Payload::VM_DELETED: e.body = vm_deleted{}; break;
    case schema::Event::Payload::VM_COMMAND: {
      auto b = body.getVmCommand();
      e.body = vm_command{to_string(b.getCommand()), to_string(b.getArgs()), to_string(b.getRefused())};
      break;
    }
    case schema::Event::Payload::VM_ADOPTED: {
      auto b = body.getVmAdopted();
      e.body = vm_adopted{b.getPid(), to_string(b.getBootId())};
      break;
    }
    case schema::Event::Payload::VM_DELETING: e.body = vm_deleting{}; break;
    default: e.body = unknown_event{static_cast<std::uint16_t>(body.which())}; break;
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
