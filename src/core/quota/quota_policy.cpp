#include "core/quota/quota_policy.hpp"

#include <algorithm>

#include "core/bucket/bucket_policy.hpp"

namespace shield::quota {
namespace {

PolicyState StateOf(const QuotaLimits& limits, const QuotaState& state, int64_t now_ms) noexcept {
  return {QuotaRemaining(limits, state), MsUntil(state.reset_at_ms, now_ms)};
}

void Store(const QuotaState& state, Outcome& outcome) noexcept {
  outcome.write = KeyWrite::kStore;
  outcome.text_len = static_cast<uint8_t>(FormatInt64(state.used, outcome.text));
  outcome.expire_at_ms = state.reset_at_ms;
}

}  // namespace

Outcome Decide(const QuotaLimits& limits, const CalendarPeriod& period, const StoredValue& stored,
               Operation operation, int64_t tokens, int64_t now_ms, Detail detail) noexcept {
  StoredBucket count{};
  if (const Error error = bucket::ReadStored(stored, count); error != Error::kNone) {
    return Failed(error);
  }
  QuotaDecision decision{};
  Outcome outcome;
  if (operation == Operation::kGive) {
    const QuotaState before = QuotaAt(period, count, now_ms);
    const QuotaState after{std::max<int64_t>(before.used - tokens, 0), before.reset_at_ms};
    outcome.refunded = before.used - after.used;
    if (outcome.refunded > 0) Store(after, outcome);
    decision = {true, before, after};
    outcome.reply = QuotaRemaining(limits, after);
  } else {
    decision = QuotaAbsorb(limits, period, count, tokens, now_ms);
    outcome.reply = QuotaReply(limits, decision);
    if (decision.allowed && operation == Operation::kTake) Store(decision.after, outcome);
  }
  outcome.allowed = decision.allowed;
  if (detail == Detail::kFull) {
    DescribeLimit(outcome, limits.limit, period.length_ms / kMillisPerSecond,
                  StateOf(limits, decision.before, now_ms),
                  StateOf(limits, decision.after, now_ms));
    if (!decision.allowed) {
      outcome.retry_after_ms = tokens > limits.limit ? kNever : outcome.unchanged.reset_after_ms;
    }
  }
  return outcome;
}

}  // namespace shield::quota
