// CL.THROTTLE (redis-cell's command) and SHIELD.gcra (the same limit with SHIELD.absorb's
// arguments and replies) over Shield's exact GCRA core. Both read and write redis-cell's keys (the
// TAT in decimal nanoseconds) and propagate the effect of a call, never the call: `SET key <tat>
// PXAT <ms>` when it stores a TAT, `DEL key` when a give-back empties it, nothing when it is
// denied or only looks.
#include <algorithm>
#include <cstring>

#include "core/common/int_parse.hpp"
#include "core/gcra/gcra_policy.hpp"
#include "module/glue.hpp"
#include "module/wait.hpp"

namespace shield::glue {
namespace {

constexpr int kMaxThrottleArgs = 4;  // after the key

// Replies redis-cell's "Couldn't parse as integer: <arg>", with the argument as it came (a NUL,
// CR or LF in it would end the error line, so those read as spaces).
int ReplyBadInteger(RedisModuleCtx* ctx, std::string_view arg) noexcept {
  counters.Add(Counter::kErrors);
  const std::string_view prefix = ErrorReply(Error::kCellInteger);
  const size_t len = prefix.size() + arg.size();
  char inline_buffer[256];
  char* text =
      len < sizeof inline_buffer ? inline_buffer : static_cast<char*>(RedisModule_Alloc(len + 1));
  std::memcpy(text, prefix.data(), prefix.size());
  for (size_t i = 0; i < arg.size(); ++i) {
    const char c = arg[i];
    text[prefix.size() + i] = (c == '\0' || c == '\r' || c == '\n') ? ' ' : c;
  }
  text[len] = '\0';
  RedisModule_ReplyWithError(ctx, text);
  if (text != inline_buffer) RedisModule_Free(text);
  return REDISMODULE_OK;
}

constexpr BucketSyntax kGcraSyntax{
    .tokens_required = false, .verbose = true, .dry_run = true, .wait = true};

}  // namespace

// CL.THROTTLE <key> <max_burst> <count per period> <period> [<quantity>]
//
// GCRA, compatible with redis-cell: <count> calls per <period> seconds, bursts of max_burst + 1.
// Quantity (default 1) is what the call costs; 0 only looks; a negative quantity gives back.
// Reply: an array of five integers: limited (0 or 1), limit (max_burst + 1), remaining, retry
// after in seconds (-1 unless limited; -1 also when quantity exceeds the limit), reset after in
// seconds. A denied call writes and propagates nothing.
// Errors (redis-cell's wording): the usage line for a wrong number of arguments; "Couldn't parse
// as integer: <arg>"; "Zero rates are not supported". Shield's own: "Negative rates are not
// supported", "max_burst must be between 0 and 9223372036854775806", "period too large" (one
// call's interval would pass the last TAT the key format holds), "invalid theoretical arrival
// time in Redis" (also for another algorithm's count); WRONGTYPE.
int ThrottleCommand(RedisModuleCtx* ctx, RedisModuleString** argv, int argc) noexcept {
  const ArgsAfterKey<kMaxThrottleArgs> views(argv, argc, 3);
  if (!views.ok()) return ReplyError(ctx, Error::kCellUsage);
  const ThrottleArgs args = ParseThrottleArgs(views.all());
  if (args.error == Error::kCellInteger) return ReplyBadInteger(ctx, views[args.bad_integer]);
  if (args.error != Error::kNone) return ReplyError(ctx, args.error);
  const int64_t now_ns = NowUs() * kNanosPerMicro;
  if (const Error error = CheckTatRoom(args.limits.interval_ns, now_ns, Error::kCellPeriodTooLarge);
      error != Error::kNone) {
    return ReplyError(ctx, error);
  }

  GcraDecision decision{};
  Error error = Error::kNone;
  const Outcome outcome = DecideKey(
      ctx, argv[1], false,
      [&](const StoredValue& stored) {
        return gcra::Decide(args.limits, stored, Operation::kTake, args.quantity, now_ns,
                            Detail::kReply, Error::kCellInvalidStored, &decision);
      },
      error);
  if (error != Error::kNone) return ReplyError(ctx, error);
  // Only a call that takes is a decision; quantity 0 only looks, a negative quantity gives back.
  if (args.quantity > 0) {
    CountDecision(outcome.allowed, static_cast<uint64_t>(args.quantity));
  } else if (args.quantity < 0) {
    counters.Add(Counter::kTokensRefunded, static_cast<uint64_t>(outcome.refunded));
  }

  const ThrottleReply reply = ThrottleReplyFor(args.limits, decision);
  RedisModule_ReplyWithArray(ctx, static_cast<long>(reply.size()));
  for (const int64_t field : reply) RedisModule_ReplyWithLongLong(ctx, field);
  return REDISMODULE_OK;
}

// SHIELD.gcra <key> <capacity> <period> [<tokens>] [BURST <n>] [VERBOSE] [DRYRUN]
//
// SHIELD.absorb's arguments, replies and errors over the GCRA and key format of CL.THROTTLE:
// <capacity> tokens per <period> seconds, at most <capacity> (or <n>) at once, in nanoseconds.
// `SHIELD.gcra k 30 60 BURST 16` is `CL.THROTTLE k 15 30 60` on the same key.
// DRYRUN decides and replies as the call would, and changes nothing (the key is read through GET).
// Reply: integer, the tokens left after the take; -1 when denied (nothing written or propagated).
// With VERBOSE: the VERBOSE map.
// Errors: SHIELD.absorb's ("period value too large" also when one token's interval from now
// would pass the last TAT the key format holds); "rate too high" above 10^9 tokens per second;
// "invalid theoretical arrival time in Redis" (also for another algorithm's count); WRONGTYPE.
int GcraCommand(RedisModuleCtx* ctx, RedisModuleString** argv, int argc) noexcept {
  const ArgsAfterKey views(argv, argc, 2);
  if (!views.ok()) return ReplyError(ctx, Error::kArity);
  const int64_t now_ns = NowUs() * kNanosPerMicro;
  BucketArgs args = ParseBucketArgs(views.all(), kGcraSyntax);
  // SHIELD.absorb's errors for a period or burst too long to store, then the TAT's own bound.
  if (args.error == Error::kNone) args.error = CheckExpiry(args, now_ns / kNanosPerMilli);
  if (args.error != Error::kNone) return ReplyError(ctx, args.error);
  const auto limits = GcraLimitsOf(args.limits);
  if (!limits) return ReplyError(ctx, Error::kGcraRate);
  // One token's interval must fit the key format, or every call on a new key would be denied.
  if (const Error error = CheckTatRoom(limits->interval_ns, now_ns, Error::kPeriodTooLarge);
      error != Error::kNone) {
    return ReplyError(ctx, error);
  }

  if (!args.dry_run && NeedsWaitPath(args.wait_ms)) [[unlikely]] {
    // The latest grant must still store its TAT.
    const int64_t deadline_ns = now_ns + std::max<int64_t>(args.wait_ms, 0) * kNanosPerMilli;
    if (const Error error = CheckTatRoom(limits->tolerance_ns, deadline_ns, Error::kPeriodTooLarge);
        args.wait_ms > 0 && error != Error::kNone) {
      return ReplyError(ctx, error);
    }
    const wait::Request request{
        .algorithm = wait::Algorithm::kGcra, .bucket = {}, .gcra = *limits, .tokens = args.tokens};
    return WaitCall(ctx, argv[1], request, args.verbose, args.wait_ms, now_ns);
  }
  return TakeOrPeek(ctx, argv[1], args.dry_run, args.verbose, args.tokens, false,
                    [&](const StoredValue& stored, Operation operation, Detail detail) {
                      return gcra::Decide(*limits, stored, operation, args.tokens, now_ns, detail,
                                          Error::kGcraInvalidStored);
                    });
}

}  // namespace shield::glue
