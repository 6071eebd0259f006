// SHIELD.quota: parses with the core, reads and writes through the store unit, and shapes its
// reply with the core's data.
#include "core/quota/quota_policy.hpp"
#include "module/glue.hpp"

namespace shield::glue {

// SHIELD.quota <key> <limit> HOUR|DAY|MONTH [<tokens>] [VERBOSE] [DRYRUN]
//
// Takes `tokens` (default 1) from a quota of <limit> tokens per UTC calendar hour, day or month.
// The key holds the count taken in the period and expires at the period's end.
// DRYRUN decides and replies as the call would, and changes nothing (the key is read through GET).
// Reply: integer, the tokens left in the period after this call; -1 when fewer than `tokens` are
// left, in which case nothing is written or propagated. With VERBOSE: the VERBOSE map (capacity =
// limit, period = seconds of the current period, reset_after_ms = time to the period's end).
// Errors: wrong arity; "limit/tokens must be positive"; "period must be HOUR, DAY or MONTH";
// "period value too large"; "syntax error" for VERBOSE twice; "invalid token count in Redis";
// WRONGTYPE.
int QuotaCommand(RedisModuleCtx* ctx, RedisModuleString** argv, int argc) noexcept {
  const int64_t now_ms = NowMs();
  const ArgsAfterKey views(argv, argc, 2);
  if (!views.ok()) return ReplyError(ctx, Error::kArity);
  const QuotaArgs args = ParseQuotaArgs(views.all(), now_ms);
  if (args.error != Error::kNone) return ReplyError(ctx, args.error);

  return TakeOrPeek(ctx, argv[1], args.dry_run, args.verbose, args.tokens, true,
                    [&](const StoredValue& stored, Operation operation, Detail detail) {
                      return quota::Decide(args.limits, args.period, stored, operation, args.tokens,
                                           now_ms, detail);
                    });
}

}  // namespace shield::glue
