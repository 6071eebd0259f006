#include "core/bucket/bucket.hpp"

#include <algorithm>

#include "core/common/numeric.hpp"

namespace shield {
namespace {

// 128-bit intermediates: elapsed_ms * capacity and tokens * period_ms can reach about 8.5e37,
// well inside 2^128.
using Wide = UInt128;

// a / b and a % b for b > 0: in 64 bits when `a` fits (every ordinary bucket), which is several
// times cheaper than a 128-bit division.
struct QuotientRemainder {
  Wide quotient;
  Wide remainder;
};
QuotientRemainder DivMod(Wide a, int64_t b) noexcept {
  const auto divisor = static_cast<uint64_t>(b);
  if (a <= UINT64_MAX) {
    const auto narrow = static_cast<uint64_t>(a);
    return {narrow / divisor, narrow % divisor};
  }
  return {a / divisor, a % divisor};
}

// ceil(a * b / c) for positive int64 operands, exact in 128 bits.
Wide MulDivCeil(int64_t a, int64_t b, int64_t c) noexcept {
  const Wide product = static_cast<Wide>(a) * static_cast<Wide>(b);
  return (product + static_cast<Wide>(c) - 1) / static_cast<Wide>(c);
}

// Milliseconds, rounded up, before `tokens` more whole tokens have refilled, counted from `state`:
// the refill under way counts, so this is exactly when the next read sees them.
int64_t RefillMs(const BucketLimits& limits, const BucketState& state, int64_t tokens) noexcept {
  const Wide needed = static_cast<Wide>(tokens) * static_cast<Wide>(limits.period_ms) -
                      static_cast<Wide>(state.progress);
  const Wide capacity = static_cast<Wide>(limits.capacity);
  // tokens <= max_tokens, so this is at most window_ms, which fits; progress < period_ms, so it
  // is positive. Only a huge stall can take the sum past int64.
  const Wide ms = (needed + capacity - 1) / capacity;
  const Int128 total = static_cast<Int128>(state.stalled_ms) + static_cast<Int128>(ms);
  return static_cast<int64_t>(std::min<Int128>(total, kInt64Max));
}

// The refill under way rounded down to whole milliseconds, as a write stores it.
int64_t Truncated(const BucketLimits& limits, int64_t progress) noexcept {
  return progress / limits.capacity * limits.capacity;
}

}  // namespace

BucketLimits PlainLimits(int64_t capacity, int64_t period_ms) noexcept {
  return {capacity, period_ms, capacity, period_ms};
}

std::optional<BucketLimits> BurstLimits(int64_t capacity, int64_t period_ms,
                                        int64_t max_tokens) noexcept {
  const Wide window_ms = MulDivCeil(max_tokens, period_ms, capacity);
  if (window_ms > static_cast<Wide>(kInt64Max)) return std::nullopt;
  return BucketLimits{capacity, period_ms, max_tokens, static_cast<int64_t>(window_ms)};
}

bool ExpiryFits(int64_t now_ms, int64_t window_ms) noexcept {
  return now_ms <= kInt64Max - window_ms;
}

BucketState StateAt(const BucketLimits& limits, const StoredBucket& stored,
                    int64_t now_ms) noexcept {
  const int64_t max_tokens = limits.max_tokens;
  const int64_t start = std::clamp<int64_t>(stored.tokens, 0, max_tokens);
  // Milliseconds of refill accrued: the window minus the time the key has left. A key with no
  // expiry (or past it) has accrued the whole window; one whose expiry is further away than a
  // window has accrued nothing, and refill waits until it is within one.
  int64_t elapsed_ms = limits.window_ms;
  int64_t stalled_ms = 0;
  if (stored.expire_at_ms != kNoExpiry) {
    const Int128 ttl_ms = static_cast<Int128>(stored.expire_at_ms) - now_ms;
    const auto clamped = std::clamp<Int128>(ttl_ms, 0, limits.window_ms);
    elapsed_ms = limits.window_ms - static_cast<int64_t>(clamped);
    if (ttl_ms > limits.window_ms) {
      stalled_ms = static_cast<int64_t>(std::min<Int128>(ttl_ms - limits.window_ms, kInt64Max));
    }
  }

  // Whole tokens refilled, and the refill left over in units of 1/period_ms of a token.
  const Wide accrued = static_cast<Wide>(elapsed_ms) * static_cast<Wide>(limits.capacity);
  const auto [refilled, leftover] = DivMod(accrued, limits.period_ms);
  if (refilled >= static_cast<Wide>(max_tokens - start)) return {max_tokens, 0, 0};
  return {start + static_cast<int64_t>(refilled), static_cast<int64_t>(leftover), stalled_ms};
}

StoredBucket StoreAt(const BucketLimits& limits, const BucketState& state,
                     int64_t now_ms) noexcept {
  const int64_t ttl_ms = limits.window_ms - CarriedMs(limits, state);
  return {state.available, ExpiryFits(now_ms, ttl_ms) ? now_ms + ttl_ms : kInt64Max};
}

BucketState Take(const BucketLimits& limits, const BucketState& state, int64_t tokens) noexcept {
  return {state.available - tokens, Truncated(limits, state.progress), 0};
}

BucketState Give(const BucketLimits& limits, const BucketState& state, int64_t tokens) noexcept {
  if (tokens >= limits.max_tokens - state.available) return {limits.max_tokens, 0, 0};
  return {state.available + tokens, Truncated(limits, state.progress), 0};
}

int64_t RetryAfterMs(const BucketLimits& limits, const BucketState& state,
                     int64_t tokens) noexcept {
  if (tokens > limits.max_tokens) return kNever;
  if (CanTake(state, tokens)) return 0;
  return RefillMs(limits, state, tokens - state.available);
}

int64_t ResetAfterMs(const BucketLimits& limits, const BucketState& state) noexcept {
  if (state.available >= limits.max_tokens) return 0;
  return RefillMs(limits, state, limits.max_tokens - state.available);
}

AbsorbDecision Absorb(const BucketLimits& limits, const StoredBucket& stored, int64_t tokens,
                      int64_t now_ms) noexcept {
  const BucketState before = StateAt(limits, stored, now_ms);
  if (!CanTake(before, tokens)) return {false, before, before};
  return {true, before, Take(limits, before, tokens)};
}

RefundDecision Refund(const BucketLimits& limits, const StoredBucket& stored, int64_t tokens,
                      int64_t now_ms) noexcept {
  const BucketState before = StateAt(limits, stored, now_ms);
  if (before.available >= limits.max_tokens) return {false, stored, before.available, 0};
  const BucketState after = Give(limits, before, tokens);
  return {true, StoreAt(limits, after, now_ms), after.available,
          after.available - before.available};
}

namespace {

// Tokens that `debt_ms` of refill makes, rounded up: what a bucket in debt owes.
int64_t DebtTokens(const BucketLimits& limits, int64_t debt_ms) noexcept {
  return static_cast<int64_t>(MulDivCeil(debt_ms, limits.capacity, limits.period_ms));
}

}  // namespace

bool InDebt(const BucketState& state) noexcept {
  return state.available == 0 && state.stalled_ms > 0;
}

namespace {

// An empty bucket owing `debt_ms` of refill, as stored at `now_ms`.
StoredBucket InDebt(const BucketLimits& limits, int64_t debt_ms, int64_t now_ms) noexcept {
  const Int128 expiry = static_cast<Int128>(now_ms) + limits.window_ms + debt_ms;
  return {0, static_cast<int64_t>(std::min<Int128>(expiry, kInt64Max))};
}

}  // namespace

SettleDecision Settle(const BucketLimits& limits, const StoredBucket& stored, int64_t delta,
                      int64_t now_ms) noexcept {
  const BucketState state = StateAt(limits, stored, now_ms);
  if (delta > 0) {
    if (CanTake(state, delta)) {
      const BucketState after = Take(limits, state, delta);
      return {StoreAt(limits, after, now_ms), after.available, 0, delta};
    }
    // Everything there is, and the rest as refill owed (the refill under way pays part of it).
    const auto owed_ms =
        static_cast<Int128>(MulDivCeil(delta - state.available, limits.period_ms, limits.capacity));
    const Int128 debt_ms = std::clamp<Int128>(
        static_cast<Int128>(state.stalled_ms) + owed_ms - CarriedMs(limits, state), 0,
        MaxDebtMs(limits));
    const auto debt = static_cast<int64_t>(debt_ms);
    return {InDebt(limits, debt, now_ms), -DebtTokens(limits, debt), 0, delta};
  }
  const int64_t give = -delta;  // delta >= -kInt64Max: tokens are positive
  if (InDebt(state)) {
    // Repay the debt first, at the refill rate: `give` tokens are that many milliseconds.
    const Wide repaid_ms = static_cast<Wide>(give) * static_cast<Wide>(limits.period_ms) /
                           static_cast<Wide>(limits.capacity);
    if (repaid_ms < static_cast<Wide>(state.stalled_ms)) {
      const int64_t debt = state.stalled_ms - static_cast<int64_t>(repaid_ms);
      return {InDebt(limits, debt, now_ms), -DebtTokens(limits, debt), give, 0};
    }
    const int64_t left = give - DebtTokens(limits, state.stalled_ms);
    const BucketState after = Give(limits, {state.available, 0, 0}, std::max<int64_t>(left, 0));
    return {StoreAt(limits, after, now_ms), after.available, give, 0};
  }
  const BucketState after = Give(limits, state, give);
  return {StoreAt(limits, after, now_ms), after.available, after.available - state.available, 0};
}

}  // namespace shield
