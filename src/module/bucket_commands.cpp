// The bucket commands: each parses with the core, reads and writes through the store unit, and
// shapes its reply with the core's data.
#include "core/bucket/bucket_policy.hpp"
#include "module/glue.hpp"
#include "module/wait.hpp"

namespace shield::glue {
namespace {

// Parses the arguments after <key> of a one-bucket command, and checks that the bucket's expiry
// fits at `now_ms`.
BucketArgs ParseOneBucket(RedisModuleString** argv, int argc, const BucketSyntax& syntax,
                          int64_t now_ms) noexcept {
  const ArgsAfterKey views(argv, argc, 2);
  if (!views.ok()) return {Error::kArity};
  BucketArgs args = ParseBucketArgs(views.all(), syntax);
  if (args.error == Error::kNone) args.error = CheckExpiry(args, now_ms);
  return args;
}

constexpr BucketSyntax kAbsorbSyntax{.tokens_required = false, .verbose = true, .wait = true};
constexpr BucketSyntax kInspectSyntax{.tokens_required = false, .verbose = true};
constexpr BucketSyntax kRefundSyntax{.tokens_required = true, .verbose = false};

// A bucket of one absorb_multi call.
struct MultiSlot {
  BucketArgs args;
  StringKey key;
  Outcome outcome;
};

// SHIELD.absorb with WAIT, or on a node where someone waits (wait.hpp).
int AbsorbWaiting(RedisModuleCtx* ctx, RedisModuleString* name, const BucketArgs& args,
                  int64_t now_ms) noexcept {
  // The latest grant must still store its expiry.
  if (args.wait_ms > 0) {
    if (const Error error = CheckExpiry(args, now_ms + args.wait_ms); error != Error::kNone) {
      return ReplyError(ctx, error);
    }
  }
  const wait::Request request{.algorithm = wait::Algorithm::kBucket,
                              .bucket = args.limits,
                              .gcra = {},
                              .tokens = args.tokens};
  return WaitCall(ctx, name, request, args.verbose, args.wait_ms, now_ms * kNanosPerMilli);
}

// Absorb, inspect and refund: one bucket, one operation.
int OneBucket(RedisModuleCtx* ctx, RedisModuleString** argv, int argc, const BucketSyntax& syntax,
              Operation operation) noexcept {
  const int64_t now_ms = NowMs();
  const BucketArgs args = ParseOneBucket(argv, argc, syntax, now_ms);
  if (args.error != Error::kNone) return ReplyError(ctx, args.error);
  if (operation == Operation::kTake && NeedsWaitPath(args.wait_ms)) [[unlikely]] {
    return AbsorbWaiting(ctx, argv[1], args, now_ms);
  }
  const bool verbose = args.verbose || operation == Operation::kPeek;
  const Detail detail = verbose ? Detail::kFull : Detail::kReply;
  const auto decide = [&](const StoredValue& stored) {
    return bucket::Decide(args.limits, stored, operation, args.tokens, now_ms, detail);
  };
  Error error = Error::kNone;
  const Outcome outcome =
      DecideOrPeek(ctx, argv[1], operation == Operation::kPeek, true, decide, error);
  return FinishOneKey(ctx, error, outcome, operation, args.tokens, verbose);
}

}  // namespace

// SHIELD.absorb <key> <capacity> <period> [<tokens>] [BURST <n>] [VERBOSE]
//
// Takes `tokens` (default 1) from the bucket at <key>, which refills <capacity> tokens per
// <period> seconds and holds <capacity> (or <n>) tokens.
// Reply: integer, the tokens left after the take; -1 when fewer than `tokens` are left, in which
// case nothing is taken, written or propagated. With VERBOSE: the VERBOSE map.
// Errors: wrong arity; "capacity/period/tokens/burst must be positive"; "period/burst value too
// large"; "syntax error" for a repeated option; "invalid token count in Redis"; WRONGTYPE.
int AbsorbCommand(RedisModuleCtx* ctx, RedisModuleString** argv, int argc) noexcept {
  return OneBucket(ctx, argv, argc, kAbsorbSyntax, Operation::kTake);
}

// SHIELD.inspect <key> <capacity> <period> [<tokens>] [BURST <n>] [VERBOSE]
//
// Reply: the VERBOSE map SHIELD.absorb would reply for the same arguments, without taking
// anything. Changes nothing: no write, no keyspace event, no propagation, no re-encoding.
// Errors: as SHIELD.absorb's.
int InspectCommand(RedisModuleCtx* ctx, RedisModuleString** argv, int argc) noexcept {
  return OneBucket(ctx, argv, argc, kInspectSyntax, Operation::kPeek);
}

// SHIELD.absorb_multi <key> <capacity>[:<burst>] <period> <tokens> [...] [VERBOSE]
//
// Takes from every bucket, or from none: all are taken only when each holds enough.
// Reply: an array, one integer per bucket: the tokens left when allowed; when denied, -1 for each
// bucket that was short and the tokens held by the others. With VERBOSE: an array of VERBOSE
// maps whose `allowed` and `retry_after_ms` are the call's (the longest wait of its buckets, -1
// when any bucket can never hold its tokens).
// Errors: wrong arity; "too many buckets" above 1000; any bucket's argument errors; "key appears
// more than once" (found by sorting the keys: O(N log N)); the stored value errors. Any error
// writes nothing.
int AbsorbMultiCommand(RedisModuleCtx* ctx, RedisModuleString** argv, int argc) noexcept {
  int groups_argc = argc - 1;
  const bool verbose = groups_argc % 4 == 1 && IsVerbose(View(argv[argc - 1]));
  if (verbose) --groups_argc;
  if (groups_argc < 4 || groups_argc % 4 != 0) return ReplyError(ctx, Error::kArity);
  const auto count = static_cast<size_t>(groups_argc / 4);
  if (count > kMaxMultiBuckets) return ReplyError(ctx, Error::kTooManyBuckets);
  auto key_of = [argv](size_t i) { return argv[1 + 4 * i]; };

  const int64_t now_ms = NowMs();
  ScratchArray<MultiSlot> slots(count);
  for (size_t i = 0; i < count; ++i) {
    RedisModuleString** group = argv + 1 + 4 * i;
    slots[i].args = ParseMultiBucket(View(group[1]), View(group[2]), View(group[3]));
    if (slots[i].args.error == Error::kNone)
      slots[i].args.error = CheckExpiry(slots[i].args, now_ms);
    if (slots[i].args.error != Error::kNone) return ReplyError(ctx, slots[i].args.error);
  }
  {
    ScratchArray<std::string_view> names(count);
    for (size_t i = 0; i < count; ++i) names[i] = View(key_of(i));
    if (HasDuplicate({names.begin(), count})) return ReplyError(ctx, Error::kDuplicateKey);
  }

  // Decide all, then commit.
  const Detail detail = verbose ? Detail::kFull : Detail::kReply;
  bool allowed = true;
  uint64_t tokens = 0;
  for (size_t i = 0; i < count; ++i) {
    MultiSlot& slot = slots[i];
    StoredValue stored;
    if (const Error error = OpenStored(ctx, key_of(i), slot.key, stored, true);
        error != Error::kNone) {
      return ReplyError(ctx, error);
    }
    slot.outcome = bucket::Decide(slot.args.limits, stored, Operation::kTake, slot.args.tokens,
                                  now_ms, detail);
    if (slot.outcome.error != Error::kNone) return ReplyError(ctx, slot.outcome.error);
    allowed = allowed && slot.outcome.allowed;
    if (__builtin_add_overflow(tokens, static_cast<uint64_t>(slot.args.tokens), &tokens)) {
      tokens = UINT64_MAX;
    }
  }
  if (allowed) {
    // Every write propagates as SET: if the server can propagate the first, it can the others,
    // so a refusal leaves every bucket as it was.
    for (MultiSlot& slot : slots) {
      if (const Error error = CarryOut(ctx, slot.key, slot.outcome); error != Error::kNone) {
        return ReplyError(ctx, error);
      }
    }
  }
  CountDecision(allowed, tokens);

  // The call's own wait, in every VERBOSE map: the longest bucket's, or never when any bucket
  // can never hold its tokens.
  int64_t retry_after_ms = 0;
  if (verbose && !allowed) {
    for (const MultiSlot& slot : slots) {
      retry_after_ms = CombineRetryAfterMs(retry_after_ms, slot.outcome.retry_after_ms);
    }
  }
  RedisModule_ReplyWithArray(ctx, static_cast<long>(count));
  for (const MultiSlot& slot : slots) {
    if (verbose) {
      ReplyVerbose(ctx, VerboseOf(slot.outcome, allowed, retry_after_ms));
    } else {
      // A bucket that held enough shows its count (taken from when the call is allowed); one
      // that was short shows -1.
      RedisModule_ReplyWithLongLong(
          ctx, slot.outcome.allowed ? slot.outcome.State(allowed).remaining : kDeniedReply);
    }
  }
  return REDISMODULE_OK;
}

// SHIELD.refund <key> <capacity> <period> <tokens> [BURST <n>]
//
// Gives `tokens` back to the bucket, never above its maximum, keeping the refill under way.
// Reply: integer, the tokens in the bucket afterwards. A full bucket is not written.
// Errors: as SHIELD.absorb's (tokens is required).
int RefundCommand(RedisModuleCtx* ctx, RedisModuleString** argv, int argc) noexcept {
  return OneBucket(ctx, argv, argc, kRefundSyntax, Operation::kGive);
}

// SHIELD.settle <key> <capacity> <period> <reserved> <actual> [BURST <n>]
//
// Settles a call whose cost is known only afterwards: it reserved <reserved> tokens (with
// SHIELD.absorb) and used <actual>. Gives back the difference when it used less, never above the
// bucket's maximum; takes the rest when it used more, even if the bucket lacks it: the bucket is
// then in debt (at most one period's refill) and refills nothing until the debt is repaid.
// Reply: integer, the bucket's balance afterwards: the tokens it holds, or minus its debt.
// Errors: SHIELD.absorb's for capacity, period and burst; "reserved and actual must be zero or
// positive integers"; "invalid token count in Redis"; WRONGTYPE.
int SettleCommand(RedisModuleCtx* ctx, RedisModuleString** argv, int argc) noexcept {
  const ArgsAfterKey views(argv, argc, 4);
  if (!views.ok()) return ReplyError(ctx, Error::kArity);
  const int64_t now_ms = NowMs();
  const SettleArgs args = ParseSettleArgs(views.all(), now_ms);
  if (args.error != Error::kNone) return ReplyError(ctx, args.error);
  Error error = Error::kNone;
  const Outcome outcome = DecideKey(
      ctx, argv[1], true,
      [&](const StoredValue& stored) {
        return bucket::Decide(args.limits, stored, Operation::kSettle, args.delta, now_ms,
                              Detail::kReply);
      },
      error);
  if (error != Error::kNone) return ReplyError(ctx, error);
  if (outcome.taken > 0)
    counters.Add(Counter::kTokensAbsorbed, static_cast<uint64_t>(outcome.taken));
  if (outcome.refunded > 0) {
    counters.Add(Counter::kTokensRefunded, static_cast<uint64_t>(outcome.refunded));
  }
  return RedisModule_ReplyWithLongLong(ctx, outcome.reply);
}

// SHIELD.reset <key> [<key> ...]
//
// Deletes the buckets (a missing bucket is full).
// Reply: integer, how many of the keys existed.
// Errors: wrong arity; WRONGTYPE when a key holds something other than a string, in which case
// nothing is deleted.
int ResetCommand(RedisModuleCtx* ctx, RedisModuleString** argv, int argc) noexcept {
  if (argc < 2) return ReplyError(ctx, Error::kArity);
  // Every key is checked before any is deleted, so WRONGTYPE deletes nothing.
  for (int i = 1; i < argc; ++i) {
    if (const Error error = CheckStringOrMissing(ctx, argv[i]); error != Error::kNone) {
      return ReplyError(ctx, error);
    }
  }
  long long deleted = 0;
  for (int i = 1; i < argc; ++i) {
    StringKey key;
    if (const Error error = OpenStringKey(ctx, argv[i], key); error != Error::kNone) {
      return ReplyError(ctx, error);
    }
    if (!key.exists) continue;
    // As in absorb_multi: if the first DEL propagates, so do the others.
    if (const Error error = DeleteKey(ctx, key); error != Error::kNone) {
      return ReplyError(ctx, error);
    }
    ++deleted;
  }
  counters.Add(Counter::kBucketsReset, static_cast<uint64_t>(deleted));
  return RedisModule_ReplyWithLongLong(ctx, deleted);
}

}  // namespace shield::glue
