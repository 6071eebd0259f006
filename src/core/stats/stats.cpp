#include "core/stats/stats.hpp"

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

void EncodeStatsReply(uint64_t request_id, const Counters& counters,
                      std::span<uint8_t, kStatsReplySize> out) noexcept {
  PutU64(request_id, out.data());
  for (std::size_t i = 0; i < kCounterCount; ++i)
    PutU64(counters.values[i], out.data() + 8 + 8 * i);
}

std::optional<StatsReply> DecodeStatsReply(std::span<const uint8_t> message) noexcept {
  if (message.size() < 16 || message.size() % 8 != 0 || message.size() > kMaxStatsReplySize) {
    return std::nullopt;
  }
  StatsReply reply{GetU64(message.data()), {}};
  // Counters go by position and are only ever appended: a node of another version sends the ones
  // it has; those this node lacks are dropped, those it lacks are 0.
  const std::size_t sent = message.size() / 8 - 1;
  for (std::size_t i = 0; i < kCounterCount && i < sent; ++i) {
    reply.counters.values[i] = GetU64(message.data() + 8 + 8 * i);
  }
  return reply;
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
