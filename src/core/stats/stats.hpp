// Shield's per-node counters, their names as replied by SHIELD.stats and INFO, and the fixed
// binary form in which nodes exchange them over the cluster bus. No Redis here.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "core/common/errors.hpp"

namespace shield {

// Every counter, in reply order. Append new counters at the end, never in between: the cluster
// bus carries them by position, so nodes of different versions read each other's (below).
enum class Counter : std::size_t {
  kCalls,
  kAllowed,
  kDenied,
  kErrors,
  kTokensAbsorbed,
  kTokensRefunded,
  kBucketsReset,
  kAbsorbCalls,
  kInspectCalls,
  kAbsorbMultiCalls,
  kRefundCalls,
  kResetCalls,
  kStatsCalls,
  kThrottleCalls,
  kGcraCalls,
  kWindowCalls,
  kQuotaCalls,
  kPropagationErrors,
  kStatsResetCalls,
  kLimitCalls,
  kLimitRoCalls,
  kSettleCalls,
  // WAIT: calls that waited, those granted after waiting, those refused after waiting (their
  // wait could no longer be met, or CLIENT UNBLOCK), and the milliseconds every waiting call
  // waited, summed.
  kWaited,
  kGrantedAfterWait,
  kWaitTimeouts,
  kWaitTimeMs,
  kCount,
};
inline constexpr std::size_t kCounterCount = static_cast<std::size_t>(Counter::kCount);

inline constexpr std::array<std::string_view, kCounterCount> kCounterNames = {"calls",
                                                                              "allowed",
                                                                              "denied",
                                                                              "errors",
                                                                              "tokens_absorbed",
                                                                              "tokens_refunded",
                                                                              "buckets_reset",
                                                                              "absorb_calls",
                                                                              "inspect_calls",
                                                                              "absorb_multi_calls",
                                                                              "refund_calls",
                                                                              "reset_calls",
                                                                              "stats_calls",
                                                                              "throttle_calls",
                                                                              "gcra_calls",
                                                                              "window_calls",
                                                                              "quota_calls",
                                                                              "propagation_errors",
                                                                              "stats_reset_calls",
                                                                              "limit_calls",
                                                                              "limit_ro_calls",
                                                                              "settle_calls",
                                                                              "waited",
                                                                              "granted_after_wait",
                                                                              "wait_timeouts",
                                                                              "wait_time_ms"};

// A counter added to the enum without a name would reply an empty field.
constexpr bool EveryCounterIsNamed() {
  return std::ranges::none_of(kCounterNames, [](std::string_view name) { return name.empty(); });
}
static_assert(EveryCounterIsNamed(), "every Counter needs its name in kCounterNames");

// The largest value a counter takes: the largest integer a RESP reply can carry (2^63-1).
inline constexpr uint64_t kCounterMax = static_cast<uint64_t>(INT64_MAX);

// Counters that only grow, saturating at kCounterMax so that no client can wrap them around.
struct Counters {
  std::array<uint64_t, kCounterCount> values{};

  void Add(Counter counter, uint64_t amount) noexcept {
    uint64_t& value = values[static_cast<std::size_t>(counter)];
    value = amount >= kCounterMax - value ? kCounterMax : value + amount;
  }
  // Add(counter, 1), as every call counts itself: without a branch.
  void Add(Counter counter) noexcept {
    uint64_t& value = values[static_cast<std::size_t>(counter)];
    value += value < kCounterMax ? 1 : 0;
  }
  uint64_t Get(Counter counter) const noexcept { return values[static_cast<std::size_t>(counter)]; }
  // Adds every counter of `other` (a node's, into a cluster-wide sum).
  void AddAll(const Counters& other) noexcept {
    for (std::size_t i = 0; i < kCounterCount; ++i) Add(static_cast<Counter>(i), other.values[i]);
  }
};

// Cluster-bus messages. A request carries a request id; a reply carries the same id and the
// counters, 8 bytes each in Counter order. Both are little-endian records. A reply from a node of
// another version, with more or fewer counters, is read: the counters both know by position, 0
// for those it lacks (Shield 2.0 itself accepted only replies of its own size, so while a cluster
// rolls from 2.0, its nodes list upgraded ones as `timeout`).
inline constexpr uint8_t kStatsRequestType = 1;
inline constexpr uint8_t kStatsReplyType = 2;
inline constexpr std::size_t kStatsRequestSize = 8;
inline constexpr std::size_t kStatsReplySize = 8 + 8 * kCounterCount;
// The longest reply read: far more counters than any version will have.
inline constexpr std::size_t kMaxStatsReplySize = 8 + 8 * 1024;

void EncodeStatsRequest(uint64_t request_id, std::span<uint8_t, kStatsRequestSize> out) noexcept;
std::optional<uint64_t> DecodeStatsRequest(std::span<const uint8_t> message) noexcept;

void EncodeStatsReply(uint64_t request_id, const Counters& counters,
                      std::span<uint8_t, kStatsReplySize> out) noexcept;
struct StatsReply {
  uint64_t request_id;
  Counters counters;
};
std::optional<StatsReply> DecodeStatsReply(std::span<const uint8_t> message) noexcept;

// SHIELD.stats [CLUSTER [TIMEOUT <ms>]]; RESET is refused with the name of SHIELD.stats_reset.
enum class StatsMode { kNode, kCluster };
struct StatsArgs {
  Error error = Error::kNone;
  StatsMode mode = StatsMode::kNode;
  int64_t timeout_ms = 0;
};
// How long SHIELD.stats CLUSTER waits by default, and the bounds of TIMEOUT: long enough for a
// node across a busy network, short enough that a dashboard never hangs.
inline constexpr int64_t kDefaultStatsTimeoutMs = 1000;
inline constexpr int64_t kMaxStatsTimeoutMs = 60'000;
StatsArgs ParseStatsArgs(std::span<const std::string_view> args) noexcept;

}  // namespace shield
