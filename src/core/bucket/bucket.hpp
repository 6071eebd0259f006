// The token bucket behind every Shield command, as pure arithmetic: no Redis, no clock. The caller
// passes the current time in and stores what comes out.
//
// Storage format (shared with the original Rust module, so buckets survive a swap of the .so):
// one string key per bucket holding the decimal token count, with a millisecond expiry. The time
// left to live encodes refill progress: `window_ms - ttl_ms` milliseconds have been refilled since
// the stored count was written, where the window is the time an empty bucket takes to fill (the
// period, unless BURST says the bucket holds another number of tokens). A missing key, or a key
// with no expiry, is a full bucket.
//
// Every command works the same way: read the bucket's state at time t (StateAt), apply operations
// to it (Take, Give, or only look), and store the result (StoreAt).
#pragma once

#include <cstdint>
#include <limits>
#include <optional>

#include "core/common/numeric.hpp"
#include "core/common/policy.hpp"
#include "core/common/reply.hpp"

namespace shield {

// A validated bucket: every field positive; window_ms fits in int64.
struct BucketLimits {
  int64_t capacity;    // tokens refilled per period
  int64_t period_ms;   // the period
  int64_t max_tokens;  // tokens a full bucket holds: capacity, or BURST's n
  int64_t window_ms;   // time to refill max_tokens from empty: ceil(max_tokens * period / capacity)
};

// The limits of a bucket without BURST: it holds `capacity` and fills in one period.
BucketLimits PlainLimits(int64_t capacity, int64_t period_ms) noexcept;

// The limits of a bucket that refills `capacity` per `period_ms` and holds `max_tokens`; nullopt
// when the time to fill it does not fit in int64 milliseconds.
std::optional<BucketLimits> BurstLimits(int64_t capacity, int64_t period_ms,
                                        int64_t max_tokens) noexcept;

// What the key holds now. `tokens` may be anything an int64 can hold: values below zero read as
// zero and values above max_tokens read as max_tokens.
struct StoredBucket {
  int64_t tokens;        // 0 for a missing key
  int64_t expire_at_ms;  // absolute unix-time expiry, or kNoExpiry
};

// A bucket at one instant: whole tokens, and the refill under way that has not yet made a whole
// token, in units of 1/period_ms of a token (below period_ms; always 0 for a full bucket: refill
// beyond the maximum is lost). `stalled_ms` is the time before refill starts again when the
// key's TTL is longer than the window (a key written with other limits, or a clock that went
// back); a write clears it.
struct BucketState {
  int64_t available;
  int64_t progress;
  int64_t stalled_ms = 0;
};

// The refill under way as the TTL can carry it: whole milliseconds, rounded down, so that a
// bucket never grants more than its rate.
inline int64_t CarriedMs(const BucketLimits& limits, const BucketState& state) noexcept {
  return state.progress / limits.capacity;
}

// True when `now_ms + window_ms` (the furthest expiry StoreAt can produce) fits in int64.
bool ExpiryFits(int64_t now_ms, int64_t window_ms) noexcept;

// The bucket at `now_ms`: the stored count plus the whole tokens refilled since it was written,
// capped at max_tokens. The carried refill is rounded down to the millisecond, so a bucket never
// grants more than its rate.
BucketState StateAt(const BucketLimits& limits, const StoredBucket& stored,
                    int64_t now_ms) noexcept;

// What to store for `state` at `now_ms`: the count, and the expiry at which the bucket is full.
// Saturates rather than overflows should a caller skip the ExpiryFits check.
StoredBucket StoreAt(const BucketLimits& limits, const BucketState& state, int64_t now_ms) noexcept;

// True when the bucket holds at least `tokens`.
inline bool CanTake(const BucketState& state, int64_t tokens) noexcept {
  return state.available >= tokens;
}

// Takes `tokens`; precondition CanTake. The result is the bucket as stored: the refill under way
// is kept, rounded down to what the TTL carries.
BucketState Take(const BucketLimits& limits, const BucketState& state, int64_t tokens) noexcept;

// Gives `tokens` back, never above max_tokens; the refill under way stays (rounded as by Take)
// unless the bucket is full.
BucketState Give(const BucketLimits& limits, const BucketState& state, int64_t tokens) noexcept;

// Milliseconds, rounded up, after which `tokens` can be taken from `state` if nothing else takes
// from it: 0 when they can be taken now, kNever when tokens > max_tokens.
int64_t RetryAfterMs(const BucketLimits& limits, const BucketState& state, int64_t tokens) noexcept;

// Milliseconds, rounded up, until the bucket is full again (0 when it is full).
int64_t ResetAfterMs(const BucketLimits& limits, const BucketState& state) noexcept;

// The outcome of SHIELD.absorb on one bucket: the state before the take and, when allowed, after.
struct AbsorbDecision {
  bool allowed;
  BucketState before;  // the bucket at the time of the call
  BucketState after;   // the bucket after the take (equal to `before` when denied)
};

// StateAt, then Take when the bucket holds enough.
AbsorbDecision Absorb(const BucketLimits& limits, const StoredBucket& stored, int64_t tokens,
                      int64_t now_ms) noexcept;

// The whole outcome of SHIELD.refund on one bucket: whether to write and what, the reply, and the
// tokens to count as refunded.
struct RefundDecision {
  bool write;          // false for a full bucket (a missing key among them): nothing is written
  StoredBucket store;  // when write: the count and expiry to store
  int64_t available;   // the reply: the tokens in the bucket afterwards
  int64_t refunded;    // the tokens given back, never above what the bucket was short of
};

// StateAt, then Give unless the bucket is full.
RefundDecision Refund(const BucketLimits& limits, const StoredBucket& stored, int64_t tokens,
                      int64_t now_ms) noexcept;

// ---- costs known afterwards (SHIELD.settle) -----------------------------------------------------
//
// A call reserved some tokens and, when its work ended, knew what it really cost. Settling gives
// back what it reserved beyond the cost, or takes the rest, even when the bucket cannot pay: the
// bucket is then in debt, and refills nothing until the debt is repaid at the refill rate. The
// debt lives in the key format: a bucket whose key expires later than its fill time (window_ms)
// from now holds nothing and owes `(ttl - window) * capacity / period` tokens, which is how every
// reader (StateAt's stall) already reads such a key: nothing refills until the TTL is within one
// window. The debt is at most one period's refill (`capacity` tokens): a cost beyond it is
// forgiven, so one settle never locks a bucket out for longer than a period past empty.

// The most debt, in milliseconds of refill: one period.
inline int64_t MaxDebtMs(const BucketLimits& limits) noexcept {
  return limits.period_ms;
}

// True when the bucket is empty and its refill has not started: it owes refill (a settle's debt).
bool InDebt(const BucketState& state) noexcept;

// The outcome of settling `delta` = actual - reserved tokens.
struct SettleDecision {
  StoredBucket store;  // the count and expiry to store (always written)
  int64_t balance;     // the reply: the tokens in the bucket afterwards, or minus its debt
  int64_t refunded;    // tokens given back (delta < 0), to count
  int64_t taken;       // tokens taken (delta > 0), whether paid or owed, to count
};

// Settles `delta` at `now_ms`: delta < 0 gives -delta back, first repaying any debt; delta > 0
// takes delta, the part the bucket lacks becoming debt (up to MaxDebtMs). delta == 0 writes the
// bucket as it is.
SettleDecision Settle(const BucketLimits& limits, const StoredBucket& stored, int64_t delta,
                      int64_t now_ms) noexcept;

}  // namespace shield
