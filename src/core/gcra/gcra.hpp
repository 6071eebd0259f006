// The generic cell rate algorithm (GCRA) behind CL.THROTTLE, as pure arithmetic: no Redis, no
// clock. The caller passes the current time in (unix nanoseconds) and stores what comes out.
//
// CL.THROTTLE <key> <max_burst> <count per period> <period> [<quantity>] is a drop-in for
// redis-cell's command: the same arguments, the same five-integer reply and the same key format,
// so that keys written by one are read by the other.
// SHIELD.gcra is the same limit with SHIELD.absorb's arguments and replies (GcraLimitsOf,
// GcraReply, GcraVerbose).
//
// Storage format (redis-cell's): one string key per limit holding the theoretical arrival time
// (TAT) as decimal unsigned nanoseconds since the unix epoch, expiring around that time. A missing
// key, or a TAT in the past, is a limit with its whole burst available.
//
// The decision, with T = the emission interval (period / count), tolerance = T * (max_burst + 1)
// and increment = T * quantity:
//
//   new_tat = max(TAT, now) + increment
//   allowed  when  new_tat - now <= tolerance
//
// An allowed call stores new_tat. A denied call writes nothing. Quantity 0 only looks; a negative
// quantity gives back what an earlier call took.
//
// Arithmetic is exact: nanoseconds in 128-bit integers, no floating point. It gives redis-cell's
// replies for ordinary rates; where redis-cell's floating point or 64-bit products go wrong (rates
// above 1,000,000 per second, bursts past its precision, overflowing products), ours stay exact.
// docs/commands.md lists every difference.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "core/bucket/bucket.hpp"
#include "core/common/args.hpp"
#include "core/common/numeric.hpp"
#include "core/common/reply.hpp"

namespace shield {

// The latest TAT the key format can hold: the largest unsigned 64-bit number of nanoseconds
// (in the year 2554). A call that would store a later one is denied.
inline constexpr uint64_t kMaxTat = UINT64_MAX;

// A validated limit.
struct GcraLimits {
  int64_t limit;        // max_burst + 1: calls of quantity 1 allowed at once
  int64_t count;        // <count per period>, positive
  int64_t period_s;     // <period>, positive
  Int128 interval_ns;   // period / count, rounded down; at least 1
  Int128 tolerance_ns;  // interval * limit (saturated far beyond any time a TAT can hold)
};

// The arguments of CL.THROTTLE after the key.
struct ThrottleArgs {
  Error error = Error::kNone;
  std::size_t bad_integer = 0;  // for Error::kCellInteger: the index of the argument
  GcraLimits limits{};
  int64_t quantity = 1;
};

// Parses `<max_burst> <count per period> <period> [<quantity>]`. Three or four arguments, or
// kCellUsage; each value an integer as redis-cell reads one (optional sign, leading zeros), in that
// order, or kCellInteger; then the rate (kCellZeroRate, kCellNegativeRate) and max_burst
// (kCellMaxBurst).
ThrottleArgs ParseThrottleArgs(std::span<const std::string_view> args) noexcept;

// SHIELD.gcra's limit from SHIELD.absorb's arguments: <capacity> tokens per <period>, at most
// max_tokens (BURST's n, or capacity) at once; the interval is period / capacity rounded down to
// the nanosecond. nullopt (Error::kGcraRate) above 10^9 tokens per second.
std::optional<GcraLimits> GcraLimitsOf(const BucketLimits& bucket) noexcept;

// Reads a stored TAT: decimal digits with an optional '+' and leading zeros, up to kMaxTat (how
// redis-cell reads it); nullopt means Error::kCellInvalidStored.
std::optional<uint64_t> ParseTat(std::string_view value) noexcept;

// ---- telling a TAT from another algorithm's value ----------------------------------------------
//
// A GCRA key lives until its TAT: Shield expires it at the first millisecond at or after the TAT,
// redis-cell up to a millisecond before it, and a copy (MIGRATE, RESTORE) a little later. A bucket
// or quota key holds a count: a small number, nowhere near its expiry read as nanoseconds. So:
// - a value on a key with an expiry that lies more than kTatSlackNs before now is not a TAT (it
//   is a count: as a TAT it would be in 1970), and CL.THROTTLE and SHIELD.gcra refuse it;
// - a count within kTatSlackNs of its key's expiry read as nanoseconds is a TAT, and the bucket
//   and quota commands refuse it.
// Keys without an expiry (written by hand) are read as they were: a TAT in the past is now, a
// count is a count. Bucket and quota values cannot be told apart (both a count with an expiry).

// How far a TAT may lie from its key's expiry: far more than any rounding (1 ms) or copy delay,
// far less than the distance between any count a bucket holds and the current time in ns.
inline constexpr int64_t kTatSlackNs = kNanosPerSecond;

// True when a GCRA key holding `tat` cannot be live with an expiry at `now_ns`.
inline bool TatTooOldForExpiry(uint64_t tat, int64_t now_ns) noexcept {
  return static_cast<Int128>(tat) + kTatSlackNs < now_ns;
}

// True when a count key holding `value` with an expiry at `expire_at_ms` (or kNoExpiry) holds a
// TAT: the value, read as nanoseconds, lies within kTatSlackNs of the expiry.
inline bool CountIsATat(int64_t value, int64_t expire_at_ms) noexcept {
  if (expire_at_ms == kNoExpiry) return false;
  const Int128 distance =
      static_cast<Int128>(value) - static_cast<Int128>(expire_at_ms) * kNanosPerMilli;
  return distance <= kTatSlackNs && distance >= -kTatSlackNs;
}

// kNone when a call at `now_ns` can store a TAT `span_ns` ahead (CL.THROTTLE: one call's
// interval; SHIELD.gcra: the time to empty the whole limit) within the key format (kMaxTat);
// otherwise `too_large`.
inline Error CheckTatRoom(Int128 span_ns, int64_t now_ns, Error too_large) noexcept {
  return static_cast<Int128>(now_ns) + span_ns <= static_cast<Int128>(kMaxTat) ? Error::kNone
                                                                               : too_large;
}

// What to do with the key.
enum class GcraWrite {
  kNothing,  // denied, quantity 0, or a give-back to a missing key
  kStore,    // store new_tat, expiring at expire_at_ms
  kDelete,   // a give-back that leaves the whole burst available: the key goes
};

// Value for a retry that no wait can help: the call asks for more than the burst.
inline constexpr Int128 kNeverNs = -1;

struct GcraDecision {
  bool limited;
  GcraWrite write;
  uint64_t new_tat_ns;    // for kStore
  int64_t expire_at_ms;   // for kStore: the first millisecond at or after new_tat
  int64_t remaining;      // calls of quantity 1 allowed now, after this one
  Int128 retry_after_ns;  // when limited: wait before the same call is allowed, or kNeverNs
  Int128 reset_after_ns;  // wait until the whole burst is available again
  int64_t given_back;     // a give-back (negative quantity): calls of quantity 1 it made available
};

// The decision for `quantity` at `now_ns`, from the stored TAT (nullopt: no key).
GcraDecision Throttle(const GcraLimits& limits, std::optional<uint64_t> stored_tat,
                      int64_t quantity, int64_t now_ns) noexcept;

// Settles a cost known afterwards (SETTLE of SHIELD.limit): `delta` = actual - reserved. A
// negative delta gives back as Throttle(delta) does; a positive one takes delta even past the
// limit, the TAT moving at most one period beyond the tolerance (the debt bound, as a bucket's);
// the decision is never limited and always stores.
GcraDecision Settle(const GcraLimits& limits, std::optional<uint64_t> stored_tat, int64_t delta,
                    int64_t now_ns) noexcept;

// The reply of CL.THROTTLE: limited (0 or 1), limit, remaining, retry after in seconds (-1 unless
// limited, and -1 when no wait helps), reset after in seconds. Seconds are rounded as redis-cell
// rounds them: up to the next second when the part below the second holds at least 1 ms.
using ThrottleReply = std::array<int64_t, 5>;
ThrottleReply ThrottleReplyFor(const GcraLimits& limits, const GcraDecision& decision) noexcept;

// ceil(a / b) for a >= 0, b > 0.
Int128 CeilDiv128(Int128 a, Int128 b) noexcept;

// Milliseconds of `ns` (non-negative), rounded up and saturated to int64.
int64_t CeilMillis(Int128 ns) noexcept;

// Whole seconds of `ns` (non-negative) as CL.THROTTLE reports them.
int64_t CellSeconds(Int128 ns) noexcept;

// The integer reply of SHIELD.gcra: the calls of quantity 1 left, or -1 when limited.
inline int64_t GcraReply(const GcraDecision& decision) noexcept {
  return decision.limited ? kDeniedReply : decision.remaining;
}

// The decision as a SHIELD VERBOSE map (kVerboseFields): allowed, remaining, capacity = count
// per period, period in seconds, retry_after_ms (0 when allowed, -1 when no wait helps) and
// reset_after_ms (until the whole limit is back), both exact and rounded up to the millisecond.
VerboseValues GcraVerbose(const GcraLimits& limits, const GcraDecision& decision) noexcept;

}  // namespace shield
