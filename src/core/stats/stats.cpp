#include "core/stats/stats.hpp"

#include <cstring>

#include "core/common/args.hpp"

namespace shield {
namespace {

void PutU64(uint64_t value, uint8_t* out) noexcept {
  for (std::size_t i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(value >> (8 * i));
}

uint64_t GetU64(const uint8_t* in) noexcept {
  uint64_t value = 0;
  for (std::size_t i = 0; i < 8; ++i) value |= static_cast<uint64_t>(in[i]) << (8 * i);
  return value;
}

}  // namespace

void EncodeStatsRequest(uint64_t request_id, std::span<uint8_t, kStatsRequestSize> out) noexcept {
  PutU64(request_id, out.data());
}

std::optional<uint64_t> DecodeStatsRequest(std::span<const uint8_t> message) noexcept {
  if (message.size() != kStatsRequestSize) return std::nullopt;
  return GetU64(message.data());
}

std::optional<std::size_t> CounterFields::Find(std::string_view name) const noexcept {
  for (std::size_t field = 0; field < size(); ++field) {
    if (Name(field) == name) return field;
  }
  return std::nullopt;
}

namespace {

// Shield 2.0's reply: its counters by position, each looked up by name (0 for one this node no
// longer has).
std::size_t EncodeShield20Reply(uint64_t request_id, const Counters& counters,
                                const CounterFields& fields, uint8_t* out) noexcept {
  PutU64(request_id, out);
  for (std::size_t i = 0; i < kShield20Fields.size(); ++i) {
    const auto field = fields.Find(kShield20Fields[i]);
    PutU64(field ? fields.Value(counters, *field) : 0, out + 8 + 8 * i);
  }
  return kShield20ReplySize;
}

// Reads a message field by field, each read checked against the end.
class Reader {
 public:
  explicit Reader(std::span<const uint8_t> message) noexcept : message_(message) {}
  bool U64(uint64_t& out) noexcept {
    return Take(8, [&](const uint8_t* at) { out = GetU64(at); });
  }
  bool U32(uint32_t& out) noexcept {
    return Take(4, [&](const uint8_t* at) {
      out = static_cast<uint32_t>(at[0]) | static_cast<uint32_t>(at[1]) << 8 |
            static_cast<uint32_t>(at[2]) << 16 | static_cast<uint32_t>(at[3]) << 24;
    });
  }
  bool Name(std::string_view& out) noexcept {
    if (at_ >= message_.size()) return false;
    const std::size_t len = message_[at_++];
    return Take(len, [&](const uint8_t* at) { out = {reinterpret_cast<const char*>(at), len}; });
  }
  bool AtEnd() const noexcept { return at_ == message_.size(); }

 private:
  template <typename Read>
  bool Take(std::size_t len, Read read) noexcept {
    if (message_.size() - at_ < len) return false;
    read(message_.data() + at_);
    at_ += len;
    return true;
  }
  std::span<const uint8_t> message_;
  std::size_t at_ = 0;
};

std::optional<StatsReply> DecodeNamedReply(std::span<const uint8_t> message,
                                           const CounterFields& fields) noexcept {
  Reader reader(message);
  StatsReply reply{0, {}};
  uint64_t magic = 0;
  uint32_t count = 0;
  if (!reader.U64(reply.request_id) || !reader.U64(magic) || magic != kNamedReplyMagic ||
      !reader.U32(count)) {
    return std::nullopt;
  }
  for (uint32_t i = 0; i < count; ++i) {
    std::string_view name;
    uint64_t value = 0;
    if (!reader.Name(name) || !reader.U64(value)) return std::nullopt;
    if (const auto field = fields.Find(name)) fields.Slot(reply.counters, *field) = value;
  }
  if (!reader.AtEnd()) return std::nullopt;
  return reply;
}

std::optional<StatsReply> DecodeShield20Reply(std::span<const uint8_t> message,
                                              const CounterFields& fields) noexcept {
  if (message.size() != kShield20ReplySize) return std::nullopt;
  StatsReply reply{GetU64(message.data()), {}};
  for (std::size_t i = 0; i < kShield20Fields.size(); ++i) {
    if (const auto field = fields.Find(kShield20Fields[i])) {
      fields.Slot(reply.counters, *field) = GetU64(message.data() + 8 + 8 * i);
    }
  }
  return reply;
}

}  // namespace

std::size_t EncodeStatsReply(uint64_t request_id, const Counters& counters,
                             const CounterFields& fields,
                             std::span<uint8_t, kMaxStatsReplySize> out) noexcept {
  if ((request_id & kNamedReplyBit) == 0) {
    return EncodeShield20Reply(request_id, counters, fields, out.data());
  }
  uint8_t* at = out.data();
  PutU64(request_id, at);
  PutU64(kNamedReplyMagic, at + 8);
  at += 20;  // the field count goes at 16, once known
  uint32_t count = 0;
  for (std::size_t field = 0; field < fields.size(); ++field) {
    const std::string_view name = fields.Name(field);
    // Every name is far shorter (the command table asserts it), and so the reply far smaller.
    if (name.size() > kMaxCounterNameLength ||
        static_cast<std::size_t>(out.data() + out.size() - at) < 1 + name.size() + 8) {
      continue;
    }
    *at++ = static_cast<uint8_t>(name.size());
    std::memcpy(at, name.data(), name.size());
    PutU64(fields.Value(counters, field), at + name.size());
    at += name.size() + 8;
    ++count;
  }
  for (std::size_t i = 0; i < 4; ++i) out[16 + i] = static_cast<uint8_t>(count >> (8 * i));
  return static_cast<std::size_t>(at - out.data());
}

std::optional<StatsReply> DecodeStatsReply(std::span<const uint8_t> message,
                                           const CounterFields& fields) noexcept {
  if (message.size() > kMaxStatsReplySize) return std::nullopt;
  if (auto named = DecodeNamedReply(message, fields)) return named;
  return DecodeShield20Reply(message, fields);
}

StatsArgs ParseStatsArgs(std::span<const std::string_view> args) noexcept {
  if (args.empty()) return {};
  if (EqualsIgnoringCase(args[0], "RESET")) return {Error::kStatsResetMoved};
  if (!EqualsIgnoringCase(args[0], "CLUSTER")) return {Error::kSyntax};
  if (args.size() == 1) return {Error::kNone, StatsMode::kCluster, kDefaultStatsTimeoutMs};
  if (args.size() != 3 || !EqualsIgnoringCase(args[1], "TIMEOUT")) return {Error::kSyntax};
  const auto timeout = ParsePositive(args[2]);
  if (!timeout || *timeout > kMaxStatsTimeoutMs) return {Error::kTimeout};
  return {Error::kNone, StatsMode::kCluster, *timeout};
}

}  // namespace shield
