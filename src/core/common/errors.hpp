// Every error a Shield command replies, and its exact text. No Redis here.
#pragma once

#include <string_view>

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
  // SHIELD.limit (src/core/limit/limit.hpp): <numkeys> not a positive integer; more than 1000
  // policies; a policy name that is not 1-64 of [A-Za-z0-9_-] or is a keyword; an algorithm
  // that is not BUCKET, GCRA, WINDOW or QUOTA; COST negative; a name or a key given twice.
  kNumkeys,
  kTooManyPolicies,
  kPolicyName,
  kAlgorithm,
  kCost,
  kDuplicatePolicy,
  kDuplicateLimitKey,
  kSettleAmount,  // SETTLE, SHIELD.settle: reserved or actual is not a non-negative integer
  // WAIT (SHIELD.absorb, SHIELD.gcra): not an integer from 0 to a day of milliseconds; given with
  // DRYRUN; a grant on a node that is no longer a primary, over maxmemory, or that does not serve
  // its key any more (cluster).
  kWait,
  kWaitDryRun,
  kWaitReadonly,
  kWaitOom,
  kWaitMoved,  // cluster: the key's slot or the key itself left this node while the call waited
};

// The exact error reply for `error` (the original module's wording, or Redis's for WRONGTYPE).
// Empty for kNone and kArity, whose text the server builds.
std::string_view ErrorReply(Error error) noexcept;

}  // namespace shield
