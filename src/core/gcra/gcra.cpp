#include "core/gcra/gcra.hpp"

#include <algorithm>
#include <limits>

#include "core/common/int_parse.hpp"

namespace shield {
namespace {

// Far beyond any span between two instants a TAT can hold (2^64 ns), far below what 128 bits
// hold: products are saturated here, and every comparison with such a span stays exact.
constexpr Int128 kSaturated = static_cast<Int128>(1) << 100;

// a * b for 0 <= a <= 2^94 and any int64 b, saturated at +-kSaturated. No division: this is on
// every call.
Int128 SaturatedProduct(Int128 a, int64_t b) noexcept {
  Int128 product = 0;
  if (__builtin_mul_overflow(a, static_cast<Int128>(b), &product) || product > kSaturated) {
    return b < 0 ? -kSaturated : kSaturated;
  }
  return product < -kSaturated ? -kSaturated : product;
}

// a / b for b > 0: in 64 bits when both fit (always, for ordinary rates), which is several
// times faster than a 128-bit division.
Int128 Div(Int128 a, Int128 b) noexcept {
  constexpr auto kMax64 = static_cast<Int128>(UINT64_MAX);
  if (a >= 0 && a <= kMax64 && b <= kMax64)
    return static_cast<uint64_t>(a) / static_cast<uint64_t>(b);
  return a / b;
}

}  // namespace

Int128 CeilDiv128(Int128 a, Int128 b) noexcept {
  return Div(a + b - 1, b);
}

int64_t CeilMillis(Int128 ns) noexcept {
  return SaturateToInt64(CeilDiv128(ns, kNanosPerMilli));
}

ThrottleArgs ParseThrottleArgs(std::span<const std::string_view> args) noexcept {
  ThrottleArgs parsed;
  if (args.size() != 3 && args.size() != 4) {
    parsed.error = Error::kCellUsage;
    return parsed;
  }
  // redis-cell reads every argument as Rust reads an i64: an optional sign, then decimal digits
  // (leading zeros allowed) that fit. That is how Shield reads a stored count, too.
  int64_t values[4] = {0, 0, 0, 1};
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto value = ParseStoredInt64(args[i]);
    if (!value) {
      parsed.error = Error::kCellInteger;
      parsed.bad_integer = i;
      return parsed;
    }
    values[i] = *value;
  }
  const int64_t max_burst = values[0];
  const int64_t count = values[1];
  const int64_t period_s = values[2];
  parsed.quantity = values[3];

  if (count == 0 || period_s == 0) {
    parsed.error = Error::kCellZeroRate;
    return parsed;
  }
  if (count < 0 || period_s < 0) {
    parsed.error = Error::kCellNegativeRate;
    return parsed;
  }
  // Exact: period_s * 1e9 < 2^94. redis-cell divides in floating point, which gives the same
  // interval whenever the period is below 2^53 ns (104 days), and then truncates it.
  const Int128 interval_ns = Div(static_cast<Int128>(period_s) * kNanosPerSecond, count);
  if (interval_ns == 0) {  // more than 10^9 per second
    parsed.error = Error::kCellZeroRate;
    return parsed;
  }
  if (max_burst < 0 || max_burst == kInt64Max) {
    parsed.error = Error::kCellMaxBurst;
    return parsed;
  }
  const int64_t limit = max_burst + 1;
  parsed.limits = {limit, count, period_s, interval_ns, SaturatedProduct(interval_ns, limit)};
  return parsed;
}

std::optional<GcraLimits> GcraLimitsOf(const BucketLimits& bucket) noexcept {
  const Int128 interval_ns =
      Div(static_cast<Int128>(bucket.period_ms) * 1'000'000, bucket.capacity);
  if (interval_ns == 0) return std::nullopt;
  return GcraLimits{bucket.max_tokens, bucket.capacity, bucket.period_ms / kMillisPerSecond,
                    interval_ns, SaturatedProduct(interval_ns, bucket.max_tokens)};
}

std::optional<uint64_t> ParseTat(std::string_view value) noexcept {
  if (!value.empty() && value.front() == '+') value.remove_prefix(1);
  return ParseDigits(value);
}

GcraDecision Throttle(const GcraLimits& limits, std::optional<uint64_t> stored_tat,
                      int64_t quantity, int64_t now_ns) noexcept {
  const Int128 now = now_ns;
  // A TAT in the past (or no key) is the same limit as a TAT of now: the whole burst is there.
  const Int128 base = std::max<Int128>(now, stored_tat ? static_cast<Int128>(*stored_tat) : now);
  const Int128 increment = SaturatedProduct(limits.interval_ns, quantity);
  const Int128 new_tat = base + increment;

  GcraDecision decision{};
  const bool fits = new_tat <= static_cast<Int128>(kMaxTat);
  decision.limited = new_tat - now > limits.tolerance_ns || !fits;
  Int128 tat_after = base;  // the TAT the key holds after the call
  if (decision.limited) {
    decision.write = GcraWrite::kNothing;
    // A call for more than the whole burst never succeeds, nor one whose TAT cannot be stored.
    decision.retry_after_ns =
        increment <= limits.tolerance_ns && fits ? new_tat - limits.tolerance_ns - now : kNeverNs;
  } else {
    tat_after = std::max(new_tat, now);
    if (quantity == 0) {
      decision.write = GcraWrite::kNothing;
    } else if (tat_after == now) {
      decision.write = stored_tat ? GcraWrite::kDelete : GcraWrite::kNothing;
    } else {
      decision.write = GcraWrite::kStore;
      decision.new_tat_ns = static_cast<uint64_t>(tat_after);
      decision.expire_at_ms = static_cast<int64_t>(CeilDiv128(tat_after, kNanosPerMilli));
    }
    decision.retry_after_ns = 0;
  }
  const Int128 ttl = tat_after - now;  // >= 0
  decision.reset_after_ns = ttl;
  // Calls of quantity 1 allowed now: limit - ceil(ttl / interval), never below 0. (redis-cell
  // divides (tolerance - ttl) by the interval, both truncated to microseconds, in floating point;
  // that is the same number whenever the interval is a whole number of microseconds.)
  const Int128 used = CeilDiv128(ttl, limits.interval_ns);
  decision.remaining = used >= limits.limit ? 0 : limits.limit - static_cast<int64_t>(used);
  if (quantity < 0 && !decision.limited) {
    const Int128 used_before =
        std::min<Int128>(CeilDiv128(base - now, limits.interval_ns), limits.limit);
    decision.given_back = static_cast<int64_t>(used_before - std::min<Int128>(used, limits.limit));
  }
  return decision;
}

GcraDecision Settle(const GcraLimits& limits, std::optional<uint64_t> stored_tat, int64_t delta,
                    int64_t now_ns) noexcept {
  if (delta <= 0) return Throttle(limits, stored_tat, delta, now_ns);
  const Int128 now = now_ns;
  const Int128 base = std::max<Int128>(now, stored_tat ? static_cast<Int128>(*stored_tat) : now);
  const Int128 furthest = std::min<Int128>(
      now + limits.tolerance_ns + static_cast<Int128>(limits.period_s) * kNanosPerSecond,
      static_cast<Int128>(kMaxTat));
  const Int128 new_tat =
      std::max(base, std::min(base + SaturatedProduct(limits.interval_ns, delta), furthest));
  // The numbers of a look at the new TAT, and the write of it.
  GcraDecision decision = Throttle(limits, static_cast<uint64_t>(new_tat), 0, now_ns);
  decision.limited = false;
  decision.retry_after_ns = 0;
  decision.write = GcraWrite::kStore;
  decision.new_tat_ns = static_cast<uint64_t>(new_tat);
  decision.expire_at_ms = static_cast<int64_t>(CeilDiv128(new_tat, kNanosPerMilli));
  return decision;
}

int64_t CellSeconds(Int128 ns) noexcept {
  const Int128 seconds = Div(ns, kNanosPerSecond);
  const bool has_millis = ns - seconds * kNanosPerSecond >= kNanosPerMilli;
  return SaturateToInt64(seconds + (has_millis ? 1 : 0));
}

ThrottleReply ThrottleReplyFor(const GcraLimits& limits, const GcraDecision& decision) noexcept {
  int64_t retry_s = -1;
  if (decision.limited && decision.retry_after_ns != kNeverNs) {
    retry_s = CellSeconds(decision.retry_after_ns);
  }
  return {decision.limited ? 1 : 0, limits.limit, decision.remaining, retry_s,
          CellSeconds(decision.reset_after_ns)};
}

VerboseValues GcraVerbose(const GcraLimits& limits, const GcraDecision& decision) noexcept {
  int64_t retry_ms = 0;
  if (decision.limited) {
    retry_ms = decision.retry_after_ns == kNeverNs ? -1 : CeilMillis(decision.retry_after_ns);
  }
  return {decision.limited ? 0 : 1, decision.remaining, limits.count,
          limits.period_s,          retry_ms,           CeilMillis(decision.reset_after_ns)};
}

}  // namespace shield
