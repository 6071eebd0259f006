// Shield's per-node counters: the totals that every command shares, and one count of calls per
// command, by the command's row in the command table (the glue's: the core knows only a row's
// index and its counter's name). Their names as SHIELD.stats and INFO reply them, and the form in
// which nodes exchange them over the cluster bus. No Redis here.
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

// The totals, in reply order (each command's own count of calls follows them).
enum class Counter : std::size_t {
  kCalls,
  kAllowed,
  kDenied,
  kErrors,
  kTokensAbsorbed,
  kTokensRefunded,
  kBucketsReset,
  kPropagationErrors,
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

inline constexpr std::array<std::string_view, kCounterCount> kCounterNames = {
    "calls",           "allowed",
    "denied",          "errors",
    "tokens_absorbed", "tokens_refunded",
    "buckets_reset",   "propagation_errors",
    "waited",          "granted_after_wait",
    "wait_timeouts",   "wait_time_ms"};

// A counter added to the enum without a name would reply an empty field.
constexpr bool EveryCounterIsNamed() {
  return std::ranges::none_of(kCounterNames, [](std::string_view name) { return name.empty(); });
}
static_assert(EveryCounterIsNamed(), "every Counter needs its name in kCounterNames");

// Room for one count of calls per row of the command table (which asserts that it fits): twice
// today's commands, so that adding one never touches this.
inline constexpr std::size_t kMaxCommands = 32;

// The largest value a counter takes: the largest integer a RESP reply can carry (2^63-1).
inline constexpr uint64_t kCounterMax = static_cast<uint64_t>(INT64_MAX);

// Counters that only grow, saturating at kCounterMax so that no client can wrap them around.
struct Counters {
  std::array<uint64_t, kCounterCount> values{};
  std::array<uint64_t, kMaxCommands> command_calls{};  // by row of the command table
  std::size_t current_command = 0;                     // the command of the call counted last

  void Add(Counter counter, uint64_t amount) noexcept {
    uint64_t& value = values[static_cast<std::size_t>(counter)];
    value = amount >= kCounterMax - value ? kCounterMax : value + amount;
  }
  // Add(counter, 1), as every call counts itself: without a branch.
  void Add(Counter counter) noexcept { AddOne(values[static_cast<std::size_t>(counter)]); }
  uint64_t Get(Counter counter) const noexcept { return values[static_cast<std::size_t>(counter)]; }
  // One call of the command of row `command` (< kMaxCommands): `calls` and its own count.
  void CountCall(std::size_t command) noexcept {
    Add(Counter::kCalls);
    AddOne(command_calls[command]);
    current_command = command;
  }
  // Zeroes every counter, then counts again the call being counted (SHIELD.stats_reset's own),
  // so that a reset shows: `calls` and that command's count read 1.
  void ResetCountingThisCall() noexcept {
    const std::size_t command = current_command;
    *this = Counters{};
    CountCall(command);
  }
  // Adds every counter of `other` (a node's, into a cluster-wide sum).
  void AddAll(const Counters& other) noexcept {
    for (std::size_t i = 0; i < kCounterCount; ++i) Add(static_cast<Counter>(i), other.values[i]);
    for (std::size_t i = 0; i < kMaxCommands; ++i)
      AddSaturating(command_calls[i], other.command_calls[i]);
  }

 private:
  static void AddOne(uint64_t& value) noexcept { value += value < kCounterMax ? 1 : 0; }
  static void AddSaturating(uint64_t& value, uint64_t amount) noexcept {
    value = amount >= kCounterMax - value ? kCounterMax : value + amount;
  }
};

// The fields a node reports, in reply order: the totals (kCounterNames), then one count of calls
// per command, named by `commands` (the command table's counter names, in its order).
class CounterFields {
 public:
  explicit constexpr CounterFields(std::span<const std::string_view> commands) noexcept
      : commands_(commands) {}
  std::size_t size() const noexcept { return kCounterCount + commands_.size(); }
  std::string_view Name(std::size_t field) const noexcept {
    return field < kCounterCount ? kCounterNames[field] : commands_[field - kCounterCount];
  }
  uint64_t Value(const Counters& counters, std::size_t field) const noexcept {
    return field < kCounterCount ? counters.values[field]
                                 : counters.command_calls[field - kCounterCount];
  }
  uint64_t& Slot(Counters& counters, std::size_t field) const noexcept {
    return field < kCounterCount ? counters.values[field]
                                 : counters.command_calls[field - kCounterCount];
  }
  // The field of that name, or nullopt (a counter this node does not have).
  std::optional<std::size_t> Find(std::string_view name) const noexcept;

 private:
  std::span<const std::string_view> commands_;
};

// Cluster-bus messages of SHIELD.stats CLUSTER, little-endian records. A request (type 1) is the
// 8-byte request id. A reply (type 2) carries the same id and the counters:
// - to a request whose id has kNamedReplyBit (every version since 2.1 sets it): after the id,
//   kNamedReplyMagic, a 4-byte field count, then each field as a 1-byte name length, the name and
//   its 8-byte value. A node of another version, with more or fewer counters, is read by name:
//   names this node lacks are dropped, counters the sender lacks read 0.
// - to a request without it (from Shield 2.0, which echoes the id it gets): Shield 2.0's own
//   form, exactly its 18 counters (kShield20Fields) by position, the only reply it reads.
// So during a rolling upgrade from 2.0, every node lists every other as `ok`.
inline constexpr uint8_t kStatsRequestType = 1;
inline constexpr uint8_t kStatsReplyType = 2;
inline constexpr std::size_t kStatsRequestSize = 8;
inline constexpr uint64_t kNamedReplyBit = uint64_t{1} << 63;
inline constexpr uint64_t kNamedReplyMagic = 0x3276444C45494853;  // the bytes "SHIELDv2"
inline constexpr std::array<std::string_view, 18> kShield20Fields = {
    "calls",           "allowed",
    "denied",          "errors",
    "tokens_absorbed", "tokens_refunded",
    "buckets_reset",   "absorb_calls",
    "inspect_calls",   "absorb_multi_calls",
    "refund_calls",    "reset_calls",
    "stats_calls",     "throttle_calls",
    "gcra_calls",      "window_calls",
    "quota_calls",     "propagation_errors"};
inline constexpr std::size_t kShield20ReplySize = 8 + 8 * kShield20Fields.size();
// The longest counter name a reply carries (its length is one byte), and the longest reply any
// version sends or reads: a header and kMaxCommands + kCounterCount fields many times over.
inline constexpr std::size_t kMaxCounterNameLength = 64;
inline constexpr std::size_t kMaxStatsReplySize = std::size_t{16} * 1024;

void EncodeStatsRequest(uint64_t request_id, std::span<uint8_t, kStatsRequestSize> out) noexcept;
std::optional<uint64_t> DecodeStatsRequest(std::span<const uint8_t> message) noexcept;

// Writes the reply to request `request_id` into `out` (kMaxStatsReplySize bytes), in the form the
// request asks for (above); returns its length.
std::size_t EncodeStatsReply(uint64_t request_id, const Counters& counters,
                             const CounterFields& fields,
                             std::span<uint8_t, kMaxStatsReplySize> out) noexcept;
struct StatsReply {
  uint64_t request_id;
  Counters counters;
};
// Reads a reply of either form into this node's `fields`; nullopt for anything else.
std::optional<StatsReply> DecodeStatsReply(std::span<const uint8_t> message,
                                           const CounterFields& fields) noexcept;

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
