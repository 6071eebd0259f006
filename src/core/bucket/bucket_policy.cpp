#include "core/bucket/bucket_policy.hpp"

#include "core/bucket/bucket_args.hpp"
#include "core/gcra/gcra.hpp"

namespace shield::bucket {
namespace {

void Store(const StoredBucket& stored, Outcome& outcome) noexcept {
  outcome.write = KeyWrite::kStore;
  outcome.text_len = static_cast<uint8_t>(FormatInt64(stored.tokens, outcome.text));
  outcome.expire_at_ms = stored.expire_at_ms;
}

void Describe(const BucketLimits& limits, Outcome& outcome) noexcept {
  outcome.capacity = limits.capacity;
  outcome.period_s = limits.period_ms / kMillisPerSecond;
  outcome.quota = limits.max_tokens;
  outcome.window_s = CeilDiv(limits.window_ms, kMillisPerSecond);
}

PolicyState StateOf(const BucketLimits& limits, const BucketState& state) noexcept {
  return {state.available, ResetAfterMs(limits, state)};
}

}  // namespace

Error ReadStored(const StoredValue& stored, StoredBucket& out) noexcept {
  out = {0, kNoExpiry};
  if (!stored.exists) return Error::kNone;
  const auto tokens = ParseStoredInt64(stored.value);
  if (!tokens) return Error::kInvalidStored;
  if (CountIsATat(*tokens, stored.expire_at_ms)) return Error::kForeignTat;
  out = {*tokens, stored.expire_at_ms};
  return Error::kNone;
}

Outcome Decide(const BucketLimits& limits, const StoredValue& stored, Operation operation,
               int64_t tokens, int64_t now_ms, Detail detail) noexcept {
  StoredBucket bucket{};
  if (const Error error = ReadStored(stored, bucket); error != Error::kNone) return Failed(error);
  Outcome outcome;
  // A give to a bucket in debt repays the debt first, as a settle that gives back does.
  if (operation == Operation::kGive && InDebt(StateAt(limits, bucket, now_ms))) {
    operation = Operation::kSettle;
    tokens = -tokens;
  }
  if (operation == Operation::kSettle) {
    const SettleDecision settle = Settle(limits, bucket, tokens, now_ms);
    outcome.allowed = true;
    outcome.reply = settle.balance;
    outcome.refunded = settle.refunded;
    outcome.taken = settle.taken;
    Store(settle.store, outcome);
    if (detail == Detail::kFull) {
      Describe(limits, outcome);
      outcome.unchanged = StateOf(limits, StateAt(limits, bucket, now_ms));
      outcome.committed = StateOf(limits, StateAt(limits, settle.store, now_ms));
    }
    return outcome;
  }
  if (operation == Operation::kGive) {
    const RefundDecision refund = Refund(limits, bucket, tokens, now_ms);
    outcome.allowed = true;
    outcome.reply = refund.available;
    outcome.refunded = refund.refunded;
    if (refund.write) Store(refund.store, outcome);
    if (detail == Detail::kFull) {
      Describe(limits, outcome);
      outcome.unchanged = StateOf(limits, StateAt(limits, bucket, now_ms));
      outcome.committed =
          refund.write ? StateOf(limits, StateAt(limits, refund.store, now_ms)) : outcome.unchanged;
    }
    return outcome;
  }
  const AbsorbDecision decision = Absorb(limits, bucket, tokens, now_ms);
  outcome.allowed = decision.allowed;
  outcome.reply = ReplyFor(decision);
  if (decision.allowed && operation == Operation::kTake) {
    Store(StoreAt(limits, decision.after, now_ms), outcome);
  }
  // The counts cost nothing and absorb_multi replies them; the times only with Detail::kFull.
  outcome.unchanged.remaining = decision.before.available;
  outcome.committed.remaining = decision.after.available;
  if (detail == Detail::kFull) {
    Describe(limits, outcome);
    outcome.unchanged = StateOf(limits, decision.before);
    // A take of nothing changes nothing, not even a debt's stall (which a write would clear).
    outcome.committed = tokens == 0 ? outcome.unchanged : StateOf(limits, decision.after);
    outcome.retry_after_ms = decision.allowed ? 0 : RetryAfterMs(limits, decision.before, tokens);
  }
  return outcome;
}

}  // namespace shield::bucket
