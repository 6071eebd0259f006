// Shield's argument rules and replies, as data the glue layer sends back verbatim. No Redis here.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "core/bucket.hpp"

namespace shield {

// Every way a call can fail. kNone means the call may go on.
enum class Error {
  kNone,
  kArity,            // Redis's own wrong-arity error (the glue builds it from the command name)
  kCapacity,         // capacity is not a strict positive int64
  kPeriod,           // period is not a strict positive int64
  kTokens,           // tokens is not a strict positive int64
  kBurst,            // BURST's n is not a strict positive int64
  kPeriodTooLarge,   // period in ms, or the expiry it leads to, does not fit in int64
  kBurstTooLarge,    // the time to fill a BURST bucket, or the expiry it leads to, does not fit
  kSyntax,           // an option given twice, an unknown subcommand
  kStatsResetMoved,  // SHIELD.stats RESET: the reset is SHIELD.stats_reset, an admin command
  kDuplicateKey,     // absorb_multi names one key twice
  kTooManyBuckets,   // absorb_multi names more than kMaxMultiBuckets buckets
  kTimeout,          // SHIELD.stats CLUSTER TIMEOUT out of range
  kNeedsCluster,     // SHIELD.stats CLUSTER outside cluster mode
  kCannotBlock,      // SHIELD.stats CLUSTER inside MULTI or a script
  kPropagation,      // the server refused to propagate a write (SET or DEL renamed away)
  // CL.THROTTLE (src/core/gcra.hpp): not 3 or 4 arguments after the key (redis-cell's usage
  // line); an argument that is not an integer (the glue appends it); count or period 0, or an
  // interval that rounds to 0 ns; count or period negative; max_burst negative or 2^63-1; a key
  // holding a string that is not a TAT. SHIELD.gcra: more than 10^9 tokens per second; a key
  // holding a string that is not a TAT.
  kCellUsage,
  kCellInteger,
  kCellZeroRate,
  kCellNegativeRate,
  kCellMaxBurst,
  kCellInvalidStored,
  kGcraRate,
  kGcraInvalidStored,
  kLimit,               // SHIELD.window/quota: limit is not a strict positive int64
  kWindow,              // SHIELD.window: window is not a strict positive int64
  kWindowTooLarge,      // SHIELD.window: twice the window in ms, or the expiry, does not fit
  kQuotaPeriod,         // SHIELD.quota: period is not HOUR, DAY or MONTH
  kInvalidWindow,       // SHIELD.window: the key holds a string that is not a window state
  kInvalidStored,       // the key holds a string that is not a token count
  kForeignTat,          // a bucket or quota key holds a GCRA time (CL.THROTTLE's, SHIELD.gcra's)
  kCellPeriodTooLarge,  // CL.THROTTLE: one call's interval passes the key format's last TAT
  kWrongType,           // the key holds another type
};

// The exact error reply for `error` (the original module's wording, or Redis's for WRONGTYPE).
// Empty for kNone and kArity, whose text the server builds.
std::string_view ErrorReply(Error error) noexcept;

// Reply for a denied call: nothing was taken.
inline constexpr int64_t kDeniedReply = -1;

// Default cost of one call when the tokens argument is absent.
inline constexpr int64_t kDefaultTokens = 1;

// What a bucket command accepts after <key> <capacity> <period>.
struct BucketSyntax {
  bool tokens_required;  // refund: tokens is not optional
  bool verbose;          // accepts VERBOSE
};

// One bucket of a call: its limits, the tokens the call costs, and whether it asked for VERBOSE.
struct BucketArgs {
  Error error = Error::kNone;
  BucketLimits limits{};
  int64_t tokens = kDefaultTokens;
  bool has_burst = false;
  bool verbose = false;
};

// Parses `<capacity> <period> [<tokens>] [BURST <n>] [VERBOSE]` (the arguments after the key).
// Structure first: an argument where an option should be that is not one is kArity, an option
// given twice is kSyntax. Then values in the original's order: capacity, period, tokens, then
// burst, then the period's size in milliseconds and the time to fill a BURST bucket.
BucketArgs ParseBucketArgs(std::span<const std::string_view> args,
                           const BucketSyntax& syntax) noexcept;

// Parses one absorb_multi bucket: `<capacity>[:<burst>] <period> <tokens>`.
BucketArgs ParseMultiBucket(std::string_view capacity, std::string_view period,
                            std::string_view tokens) noexcept;

// The most buckets one SHIELD.absorb_multi call takes. A call runs while every other client
// waits; 1,000 buckets keep it near a millisecond (docs/commands.md), and a limit that needs
// more buckets than this at once is better served by several calls.
inline constexpr std::size_t kMaxMultiBuckets = 1000;

// True when two of `names` are equal. Sorts `names` in place: O(N log N), no allocation.
bool HasDuplicate(std::span<std::string_view> names) noexcept;

// kNone when `now_ms` plus the bucket's window fits in an absolute expiry; otherwise the error
// that names what made the window too long.
Error CheckExpiry(const BucketArgs& args, int64_t now_ms) noexcept;

// True when `word` is VERBOSE, in any case.
bool IsVerbose(std::string_view word) noexcept;

// A strict positive int64 argument (ParseStrictInt64, above zero), or nullopt.
std::optional<int64_t> ParsePositive(std::string_view text) noexcept;

// True when `text` equals `upper` (an upper-case ASCII word) in any case.
bool EqualsIgnoringCase(std::string_view text, std::string_view upper) noexcept;

// The shape `<limit> <second> [<tokens>] [VERBOSE]` of SHIELD.window and SHIELD.quota, before any
// value is checked: kArity for too few words or one that is neither tokens nor VERBOSE, kSyntax
// for VERBOSE twice.
struct LimitWords {
  Error error = Error::kNone;
  std::optional<std::string_view> tokens;
  bool verbose = false;
};
LimitWords SplitLimitWords(std::span<const std::string_view> args) noexcept;

// What SHIELD.window and SHIELD.quota share of their arguments: limit, tokens, VERBOSE.
struct LimitArgs {
  Error error = Error::kNone;
  int64_t limit = 0;
  int64_t tokens = kDefaultTokens;
  bool verbose = false;
};

// Parses `<limit> <second> [<tokens>] [VERBOSE]` in the order every error is checked: the words
// (SplitLimitWords), limit, the second argument through `read_second` (the algorithm's own: it
// keeps what it read and returns its error, or kNone), then tokens.
template <typename ReadSecond>
LimitArgs ParseLimitArgs(std::span<const std::string_view> args, ReadSecond read_second) noexcept {
  const LimitWords words = SplitLimitWords(args);
  if (words.error != Error::kNone) return {words.error};
  LimitArgs parsed;
  parsed.verbose = words.verbose;
  const auto limit = ParsePositive(args[0]);
  if (!limit) return {Error::kLimit};
  parsed.limit = *limit;
  if (const Error error = read_second(args[1]); error != Error::kNone) return {error};
  if (words.tokens) {
    const auto tokens = ParsePositive(*words.tokens);
    if (!tokens) return {Error::kTokens};
    parsed.tokens = *tokens;
  }
  return parsed;
}

// Reads a stored token count; nullopt means Error::kInvalidStored.
std::optional<int64_t> ParseStoredTokens(std::string_view value) noexcept;

// The integer reply of SHIELD.absorb for a decision.
inline int64_t ReplyFor(const AbsorbDecision& decision) noexcept {
  return decision.allowed ? decision.after.available : kDeniedReply;
}

// The VERBOSE reply: field names in reply order, and their values for one decision.
inline constexpr std::array<std::string_view, 6> kVerboseFields = {
    "allowed", "remaining", "capacity", "period", "retry_after_ms", "reset_after_ms"};
using VerboseValues = std::array<int64_t, kVerboseFields.size()>;
inline constexpr std::size_t kVerboseRetryAfter = 4;  // the index of retry_after_ms
static_assert(kVerboseFields[kVerboseRetryAfter] == "retry_after_ms");

// Values for a call on one bucket that took (or, for inspect, would take) `tokens`, where
// `allowed` is the outcome of the whole call (absorb_multi may deny a bucket that held enough).
VerboseValues Verbose(const BucketLimits& limits, const AbsorbDecision& decision, int64_t tokens,
                      bool allowed) noexcept;

// The retry_after_ms of a call over several limits, from its own and one more limit's: kNever
// when either can never be met, otherwise the longer wait.
inline int64_t CombineRetryAfterMs(int64_t call, int64_t limit) noexcept {
  if (call == kNever || limit == kNever) return kNever;
  return call > limit ? call : limit;
}

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
