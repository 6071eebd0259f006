#include "core/gcra/gcra_policy.hpp"

namespace shield::gcra {
namespace {

PolicyState StateOf(const GcraDecision& decision) noexcept {
  return {decision.remaining, CeilMillis(decision.reset_after_ns)};
}

}  // namespace

Outcome Decide(const GcraLimits& limits, const StoredValue& stored, Operation operation,
               int64_t quantity, int64_t now_ns, Detail detail, Error invalid,
               GcraDecision* decision_out) noexcept {
  // One Outcome, returned on every path, so that it is built in the caller's (no copy).
  Outcome outcome;
  std::optional<uint64_t> tat;
  if (stored.exists) {
    tat = ParseTat(stored.value);
    if (!tat) {
      outcome.error = invalid;
      return outcome;
    }
    // A value in the past on a key with an expiry is another algorithm's count (gcra.hpp).
    if (TatTooOldForExpiry(*tat, now_ns)) {
      outcome.needs_expiry = stored.expire_at_ms == kExpiryUnread;
      if (stored.expire_at_ms != kNoExpiry && !outcome.needs_expiry) outcome.error = invalid;
      if (stored.expire_at_ms != kNoExpiry) return outcome;
    }
  }
  const int64_t signed_quantity = operation == Operation::kGive ? -quantity : quantity;
  const GcraDecision decision = operation == Operation::kSettle
                                    ? Settle(limits, tat, quantity, now_ns)
                                    : Throttle(limits, tat, signed_quantity, now_ns);
  if (operation == Operation::kSettle && quantity > 0) outcome.taken = quantity;
  if (decision_out != nullptr) *decision_out = decision;

  outcome.allowed = !decision.limited;
  outcome.reply = GcraReply(decision);
  outcome.refunded = decision.given_back;
  if (operation != Operation::kPeek) {
    if (decision.write == GcraWrite::kStore) {
      outcome.write = KeyWrite::kStore;
      outcome.text_len = static_cast<uint8_t>(FormatUInt64(decision.new_tat_ns, outcome.text));
      outcome.expire_at_ms = decision.expire_at_ms;
    } else if (decision.write == GcraWrite::kDelete) {
      outcome.write = KeyWrite::kDelete;
    }
  }
  if (detail == Detail::kFull) {
    outcome.capacity = limits.count;
    outcome.period_s = limits.period_s;
    outcome.quota = limits.limit;
    outcome.window_s = SaturateToInt64(CeilDiv128(limits.tolerance_ns, kNanosPerSecond));
    outcome.committed = StateOf(decision);
    // What the key holds now, had nothing been written: a call that changed nothing shows it
    // already; otherwise look with quantity 0.
    outcome.unchanged = decision.limited || signed_quantity == 0
                            ? outcome.committed
                            : StateOf(Throttle(limits, tat, 0, now_ns));
    if (decision.limited) {
      outcome.retry_after_ms =
          decision.retry_after_ns == kNeverNs ? kNever : CeilMillis(decision.retry_after_ns);
    }
  }
  return outcome;
}

}  // namespace shield::gcra
