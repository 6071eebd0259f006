// The token bucket behind SHIELD.absorb, as pure arithmetic: no Redis, no clock. The caller
// passes the current time in and stores what comes out.
//
// Storage format (shared with the original Rust module, so buckets survive a swap of the .so):
// one string key per bucket holding the decimal token count, with a millisecond expiry. The time
// left to live encodes refill progress: `period_ms - ttl_ms` milliseconds have been refilled since
// the stored count was written. A missing key, or a key with no expiry, is a full bucket.
#pragma once

#include <cstdint>
#include <limits>

namespace shield {

// Expiry value meaning "the key has no expiry" (or does not exist).
inline constexpr int64_t kNoExpiry = -1;

// The largest period, in seconds, whose value in milliseconds fits in int64. The original module
// rejects anything above it, and so do we.
inline constexpr int64_t kMaxPeriodSeconds = std::numeric_limits<int64_t>::max() / 1000;

// A validated SHIELD.absorb request: all fields are positive and `period_ms` did not overflow.
struct BucketLimits {
  int64_t capacity;   // tokens in a full bucket
  int64_t period_ms;  // time for an empty bucket to refill completely
};

// What the key holds now. `tokens` may be anything an int64 can hold: values below zero read as
// zero and values above capacity read as capacity.
struct StoredBucket {
  int64_t tokens;        // 0 for a missing key
  int64_t expire_at_ms;  // absolute unix-time expiry, or kNoExpiry
};

// The outcome of taking tokens. When `allowed` is false nothing must be written.
struct AbsorbDecision {
  bool allowed;
  int64_t remaining;     // tokens left after the take; meaningful only when allowed
  int64_t expire_at_ms;  // absolute expiry to store with `remaining`; only when allowed
};

// True when `now_ms + period_ms` (the furthest expiry Absorb can produce) fits in int64.
bool ExpiryFits(int64_t now_ms, int64_t period_ms) noexcept;

// Refills the stored bucket up to `now_ms` and takes `tokens` from it if it holds enough.
// The refill that has not yet become a whole token is carried in the new expiry (rounded down to
// the millisecond, so a bucket never grants more than its rate), instead of being thrown away.
// Preconditions: limits and tokens positive, ExpiryFits(now_ms, limits.period_ms).
AbsorbDecision Absorb(const BucketLimits& limits, const StoredBucket& stored, int64_t tokens,
                      int64_t now_ms) noexcept;

}  // namespace shield
