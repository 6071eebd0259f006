// The token bucket's arguments and replies (SHIELD.absorb, inspect, absorb_multi, refund), as data
// the glue sends back verbatim. No Redis here.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "core/bucket/bucket.hpp"
#include "core/common/args.hpp"
#include "core/common/reply.hpp"

namespace shield {

// A call without WAIT.
inline constexpr int64_t kNoWait = -1;

// What a bucket command accepts after <key> <capacity> <period>.
struct BucketSyntax {
  bool tokens_required;  // refund: tokens is not optional
  bool verbose;          // accepts VERBOSE
  bool dry_run = false;  // accepts DRYRUN (SHIELD.gcra)
  bool wait = false;     // accepts WAIT <ms> (SHIELD.absorb, SHIELD.gcra)
};

// One bucket of a call: its limits, the tokens the call costs, and whether it asked for VERBOSE.
struct BucketArgs {
  Error error = Error::kNone;
  BucketLimits limits{};
  int64_t tokens = kDefaultTokens;
  bool has_burst = false;
  bool verbose = false;
  bool dry_run = false;
  int64_t wait_ms = kNoWait;  // WAIT's milliseconds, or kNoWait
};

// Parses `<capacity> <period> [<tokens>] [BURST <n>] [VERBOSE]` (the arguments after the key).
// Structure first: an argument where an option should be that is not one is kArity, an option
// given twice is kSyntax. Then values in the original's order: capacity, period, tokens, then
// burst, then the period's size in milliseconds and the time to fill a BURST bucket; WAIT's
// value last (kWait: an integer from 0 to wait::kMaxWaitMs), and WAIT with DRYRUN is kWaitDryRun.
BucketArgs ParseBucketArgs(std::span<const std::string_view> args,
                           const BucketSyntax& syntax) noexcept;

// SHIELD.settle's arguments after the key: `<capacity> <period> <reserved> <actual> [BURST <n>]`.
struct SettleArgs {
  Error error = Error::kNone;
  BucketLimits limits{};
  int64_t delta = 0;  // actual - reserved
};

// Structure first (four values, then BURST <n> at most once, else kArity or kSyntax), then the
// values in the order capacity, period, reserved and actual (kSettleAmount), burst; then whether
// the bucket's expiry and its largest debt (one period) fit at `now_ms`.
SettleArgs ParseSettleArgs(std::span<const std::string_view> args, int64_t now_ms) noexcept;

// Parses one absorb_multi bucket: `<capacity>[:<burst>] <period> <tokens>`.
BucketArgs ParseMultiBucket(std::string_view capacity, std::string_view period,
                            std::string_view tokens) noexcept;

// The most buckets one SHIELD.absorb_multi call takes. A call runs while every other client
// waits; 1,000 buckets keep it near a millisecond (docs/commands.md), and a limit that needs
// more buckets than this at once is better served by several calls.
inline constexpr std::size_t kMaxMultiBuckets = 1000;

// kNone when `now_ms` plus the bucket's window fits in an absolute expiry; otherwise the error
// that names what made the window too long.
Error CheckExpiry(const BucketArgs& args, int64_t now_ms) noexcept;

// The integer reply of SHIELD.absorb for a decision.
inline int64_t ReplyFor(const AbsorbDecision& decision) noexcept {
  return decision.allowed ? decision.after.available : kDeniedReply;
}

// Values for a call on one bucket that took (or, for inspect, would take) `tokens`, where
// `allowed` is the outcome of the whole call (absorb_multi may deny a bucket that held enough).
VerboseValues Verbose(const BucketLimits& limits, const AbsorbDecision& decision, int64_t tokens,
                      bool allowed) noexcept;

}  // namespace shield
