// Numeric helpers and time units shared by every algorithm of the core: 128-bit intermediates,
// saturation to int64, and the unit conversions, each written once.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>

namespace shield {

__extension__ using Int128 = __int128;
__extension__ using UInt128 = unsigned __int128;

inline constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
inline constexpr int64_t kInt64Min = std::numeric_limits<int64_t>::min();

// Time units.
inline constexpr int64_t kMillisPerSecond = 1000;
inline constexpr int64_t kMicrosPerMilli = 1000;
inline constexpr int64_t kNanosPerMicro = 1000;
inline constexpr int64_t kNanosPerMilli = 1'000'000;
inline constexpr int64_t kNanosPerSecond = 1'000'000'000;

// The largest period (or window), in seconds, whose value in milliseconds fits in int64. The
// original module rejects anything above it, and so do we.
inline constexpr int64_t kMaxPeriodSeconds = kInt64Max / kMillisPerSecond;

// floor(a / b) for b > 0 (C++ division rounds toward zero), for int64_t or Int128.
template <typename T>
constexpr T FloorDiv(T a, std::type_identity_t<T> b) noexcept {
  const T q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}

// ceil(a / b) for a >= 0 and b > 0, without overflow.
constexpr int64_t CeilDiv(int64_t a, int64_t b) noexcept {
  return a / b + (a % b != 0 ? 1 : 0);
}

// `value` clamped to int64's range.
constexpr int64_t SaturateToInt64(Int128 value) noexcept {
  return static_cast<int64_t>(std::clamp<Int128>(value, kInt64Min, kInt64Max));
}

// Milliseconds from `now_ms` until `at_ms`, never below 0 (a time already past is 0).
constexpr int64_t MsUntil(Int128 at_ms, int64_t now_ms) noexcept {
  return SaturateToInt64(std::max<Int128>(at_ms - now_ms, 0));
}

}  // namespace shield
