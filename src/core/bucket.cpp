#include "core/bucket.hpp"

#include <algorithm>

#include "core/wide.hpp"

namespace shield {
namespace {

// 128-bit intermediates: elapsed_ms * capacity can reach about 8.5e37, well inside 2^128.
using Wide = UInt128;

// Milliseconds of refill already accrued: period minus the time the key has left, where a key
// with no expiry (or past it) has accrued the whole period, and an expiry further away than one
// period (a clock that went back, or a bucket written with a longer period) has accrued nothing.
int64_t ElapsedMs(const BucketLimits& limits, int64_t expire_at_ms, int64_t now_ms) noexcept {
  if (expire_at_ms == kNoExpiry) return limits.period_ms;
  const Int128 ttl_ms = static_cast<Int128>(expire_at_ms) - now_ms;
  const auto clamped = std::clamp<Int128>(ttl_ms, 0, limits.period_ms);
  return limits.period_ms - static_cast<int64_t>(clamped);
}

}  // namespace

bool ExpiryFits(int64_t now_ms, int64_t period_ms) noexcept {
  return now_ms <= std::numeric_limits<int64_t>::max() - period_ms;
}

AbsorbDecision Absorb(const BucketLimits& limits, const StoredBucket& stored, int64_t tokens,
                      int64_t now_ms) noexcept {
  const int64_t capacity = limits.capacity;
  const int64_t start = std::clamp<int64_t>(stored.tokens, 0, capacity);
  const int64_t elapsed_ms = ElapsedMs(limits, stored.expire_at_ms, now_ms);

  // Whole tokens refilled, and the refill left over in units of 1/period_ms of a token.
  const Wide accrued = static_cast<Wide>(elapsed_ms) * static_cast<Wide>(capacity);
  const Wide refilled = accrued / static_cast<Wide>(limits.period_ms);
  const Wide leftover = accrued % static_cast<Wide>(limits.period_ms);

  int64_t available = capacity;
  int64_t carried_ms = 0;  // a full bucket carries nothing: refill beyond capacity is lost
  if (refilled < static_cast<Wide>(capacity - start)) {
    available = start + static_cast<int64_t>(refilled);
    carried_ms = static_cast<int64_t>(leftover / static_cast<Wide>(capacity));
  }

  if (available < tokens) return {false, 0, 0};
  // Saturates rather than overflows should a caller skip the ExpiryFits check.
  const int64_t ttl_ms = limits.period_ms - carried_ms;
  const int64_t expire_at_ms =
      ExpiryFits(now_ms, ttl_ms) ? now_ms + ttl_ms : std::numeric_limits<int64_t>::max();
  return {true, available - tokens, expire_at_ms};
}

}  // namespace shield
