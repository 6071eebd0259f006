// SHIELD.limit: several policies of any algorithm over several keys in one atomic call. Parsing
// the call and deciding each policy through its algorithm's Decide (common/policy.hpp); the glue
// opens the keys, writes all or nothing, and replies. No Redis here.
//
//   SHIELD.limit <numkeys> <key> [<key> ...] <policy> [<policy> ...] [DRYRUN] [HEADERS] [REFUND]
//   policy: <name> BUCKET <capacity> <period> [BURST <n>] [COST <n> | SETTLE <reserved> <actual>]
//           <name> GCRA   <capacity> <period> [BURST <n>] [COST <n> | SETTLE <reserved> <actual>]
//           <name> WINDOW <limit> <window-seconds> [COST <n>]
//           <name> QUOTA  <limit> HOUR|DAY|MONTH [COST <n>]
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "core/bucket/bucket.hpp"
#include "core/common/errors.hpp"
#include "core/common/policy.hpp"
#include "core/gcra/gcra.hpp"
#include "core/quota/quota.hpp"
#include "core/window/window.hpp"

namespace shield::limit {

enum class Algorithm : uint8_t { kBucket, kGcra, kWindow, kQuota };
// As the reply names them, in enum order.
inline constexpr std::array<std::string_view, 4> kAlgorithmNames = {"bucket", "gcra", "window",
                                                                    "quota"};

// The most policies (and keys) one call takes, as for SHIELD.absorb_multi: a call runs while every
// other client waits.
inline constexpr std::size_t kMaxPolicies = 1000;
// A policy's name goes into HTTP headers: 1 to 64 bytes of [A-Za-z0-9_-].
inline constexpr std::size_t kMaxNameLength = 64;

struct Policy {
  std::string_view name;
  Algorithm algorithm = Algorithm::kBucket;
  int64_t cost = 1;     // 0: the policy is only reported
  bool settle = false;  // SETTLE <reserved> <actual>: settle_delta = actual - reserved
  int64_t settle_delta = 0;
  BucketLimits bucket{};
  GcraLimits gcra{};
  WindowLimits window{};
  QuotaLimits quota{};
  CalendarPeriod period{};  // QUOTA: the period holding the call's time
};

struct Options {
  bool dry_run = false;
  bool headers = false;
  bool refund = false;
};

// Where a call's words go wrong: the error, and the policy it names (when `policy` < the policy
// count; the reply then reads "ERR policy '<name>': <reason>").
struct ParseError {
  Error error = Error::kNone;
  std::size_t policy = SIZE_MAX;
};

// How many keys the call names: <numkeys> and that the words hold that many keys and policies at
// least; kArity for too few words, kNumkeys for a <numkeys> that is not a positive integer,
// kTooManyPolicies above kMaxPolicies.
struct Shape {
  Error error = Error::kNone;
  std::size_t keys = 0;
};
Shape ParseShape(std::span<const std::string_view> args) noexcept;

// Parses the words after the keys (`words`) into `policies` (shape.keys of them) and `options`,
// at `now_ms` / `now_ns` (expiries and periods must fit). Names are checked for their syntax,
// keywords and repeats (sorting copies in `name_scratch`, as long as `policies`).
ParseError ParsePolicies(std::span<const std::string_view> words, std::span<Policy> policies,
                         std::span<std::string_view> name_scratch, Options& options, int64_t now_ms,
                         int64_t now_ns) noexcept;

// The policy's decision on what its key held. The operation is the call's: SETTLE settles (the
// glue writes nothing under DRYRUN), REFUND gives, DRYRUN and a cost of 0 peek, otherwise take.
Outcome Decide(const Policy& policy, const StoredValue& stored, const Options& options,
               int64_t now_ms, int64_t now_ns) noexcept;

// The call's decision from every policy's Outcome (in policy order): all or nothing.
struct CallDecision {
  bool allowed = true;         // every policy allows
  bool write = false;          // carry every Outcome out: allowed, and not DRYRUN
  int64_t retry_after_ms = 0;  // 0 when allowed; the longest wait of those that refuse; kNever
  bool counted = false;        // a take (not REFUND, not DRYRUN): one allowed or denied decision
  uint64_t taken = 0;          // when written: the costs taken (settlements: what they took)
  uint64_t refunded = 0;       // when written: the tokens given back (REFUND, settlements)
};
CallDecision DecideCall(std::span<const Policy> policies, std::span<const Outcome> outcomes,
                        const Options& options) noexcept;

// The longest item of a RateLimit header list: `, "<name>";q=<int64>;w=<int64>`.
inline constexpr std::size_t kMaxHeaderItemLength =
    2 + 2 + kMaxNameLength + std::size_t{2} * (3 + 20);

// Writes one item of a RateLimit header list (draft-ietf-httpapi-ratelimit-headers-12) at `out`
// (kMaxHeaderItemLength bytes): `"<name>";<first_key>=<first>;<second_key>=<second>`, after ", "
// unless it is the list's first. Returns its length.
std::size_t FormatHeaderItem(char* out, bool first_item, std::string_view name, char first_key,
                             int64_t first, char second_key, int64_t second) noexcept;

}  // namespace shield::limit
