#include "core/common/errors.hpp"

namespace shield {

std::string_view ErrorReply(Error error) noexcept {
  switch (error) {
    case Error::kNone:
    case Error::kArity:
      return "";
    case Error::kCapacity:
      return "ERR capacity must be positive";
    case Error::kPeriod:
      return "ERR period must be positive";
    case Error::kTokens:
      return "ERR tokens must be positive";
    case Error::kBurst:
      return "ERR burst must be positive";
    case Error::kPeriodTooLarge:
      return "ERR period value too large";
    case Error::kBurstTooLarge:
      return "ERR burst value too large";
    case Error::kSyntax:
      return "ERR syntax error";
    case Error::kTooManyBuckets:
      return "ERR too many buckets: SHIELD.absorb_multi takes at most 1000";
    case Error::kStatsResetMoved:
      return "ERR SHIELD.stats RESET is now SHIELD.stats_reset, an admin command (flags write "
             "admin), so that read-only users cannot wipe the counters";
    case Error::kDuplicateKey:
      return "ERR key appears more than once in SHIELD.absorb_multi";
    case Error::kTimeout:
      return "ERR timeout must be between 1 and 60000";
    case Error::kNeedsCluster:
      return "ERR SHIELD.stats CLUSTER needs cluster mode";
    case Error::kCannotBlock:
      return "ERR SHIELD.stats CLUSTER cannot run inside MULTI or a script";
    case Error::kPropagation:
      return "ERR Shield cannot propagate its write to replicas and the AOF (is SET or DEL "
             "renamed?); nothing was written";
    case Error::kCellUsage:
      return "Cell error: Store error: Usage: cl.throttle <key> <max_burst> <count per period> "
             "<period> [<quantity>]";
    case Error::kCellInteger:
      return "Cell error: Store error: Couldn't parse as integer: ";
    case Error::kCellZeroRate:
      return "Cell error: Store error: Zero rates are not supported";
    case Error::kCellNegativeRate:
      return "Cell error: Store error: Negative rates are not supported";
    case Error::kCellMaxBurst:
      return "Cell error: Store error: max_burst must be between 0 and 9223372036854775806";
    case Error::kCellInvalidStored:
      return "Cell error: Store error: invalid theoretical arrival time in Redis";
    case Error::kGcraRate:
      return "ERR rate too high: at most 1000000000 tokens per second";
    case Error::kGcraInvalidStored:
      return "ERR invalid theoretical arrival time in Redis";
    case Error::kLimit:
      return "ERR limit must be positive";
    case Error::kWindow:
      return "ERR window must be positive";
    case Error::kWindowTooLarge:
      return "ERR window value too large";
    case Error::kQuotaPeriod:
      return "ERR period must be HOUR, DAY or MONTH";
    case Error::kInvalidWindow:
      return "ERR invalid sliding window state in Redis";
    case Error::kInvalidStored:
      return "ERR invalid token count in Redis";
    case Error::kForeignTat:
      return "ERR the key holds a GCRA time (CL.THROTTLE or SHIELD.gcra), not a count: use one "
             "algorithm per key";
    case Error::kCellPeriodTooLarge:
      return "Cell error: Store error: period too large: a call's interval must end before the "
             "year 2554";
    case Error::kNumkeys:
      return "ERR numkeys must be a positive integer";
    case Error::kTooManyPolicies:
      return "ERR too many policies: SHIELD.limit takes at most 1000";
    case Error::kPolicyName:
      return "ERR a policy name must be 1 to 64 characters of A-Z, a-z, 0-9, _ and -, and not a "
             "keyword (BUCKET GCRA WINDOW QUOTA BURST COST SETTLE DRYRUN HEADERS REFUND WAIT)";
    case Error::kAlgorithm:
      return "ERR algorithm must be BUCKET, GCRA, WINDOW or QUOTA";
    case Error::kCost:
      return "ERR cost must be zero or positive";
    case Error::kDuplicatePolicy:
      return "ERR policy names must be unique in SHIELD.limit";
    case Error::kDuplicateLimitKey:
      return "ERR key appears more than once in SHIELD.limit";
    case Error::kSettleAmount:
      return "ERR reserved and actual must be zero or positive integers";
    case Error::kWait:
      return "ERR WAIT must be an integer of milliseconds from 0 to 86400000";
    case Error::kWaitDryRun:
      return "ERR WAIT cannot be combined with DRYRUN";
    case Error::kWaitMoved:
      return "TRYAGAIN this node no longer serves the key (its slot moved or migrates, or the "
             "cluster is down); nothing was taken";
    case Error::kWaitReadonly:
      return "READONLY You can't write against a read only replica.";
    case Error::kWaitOom:
      return "OOM command not allowed when used memory > 'maxmemory'.";
    case Error::kWrongType:
      return "WRONGTYPE Operation against a key holding the wrong kind of value";
  }
  return "ERR internal error";
}

}  // namespace shield
