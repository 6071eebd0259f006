// What the fuzz targets share: turning fuzz bytes into interesting values, and failing loudly with
// the history that led to the failure.
#pragma once

#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "core/bucket/bucket_args.hpp"
#include "model.hpp"

namespace shield_fuzz {

using shield_model::Int;
using shield_model::Rational;

inline constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();

// What happened so far in this input, printed when a check fails.
inline std::vector<std::string>& Trace() {
  static std::vector<std::string> trace;
  return trace;
}

[[noreturn]] inline void Fail(const std::string& what) {
  std::fprintf(stderr, "\n=== contract violated: %s\n", what.c_str());
  for (const auto& line : Trace()) std::fprintf(stderr, "  %s\n", line.c_str());
  std::fflush(stderr);
  std::abort();
}

inline void Check(bool condition, const std::string& what) {
  if (!condition) Fail(what);
}

inline int64_t Clamp(__int128 value, int64_t lo, int64_t hi) {
  return static_cast<int64_t>(value < lo ? lo : value > hi ? hi : value);
}

// A value of [lo, hi] (lo <= hi) that is often at an edge: near either end, near a power of ten
// or of two, or anywhere.
inline int64_t Interesting(FuzzedDataProvider& fdp, int64_t lo, int64_t hi) {
  const auto span = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);
  const auto near = [&](uint64_t offset) {
    return static_cast<int64_t>(static_cast<uint64_t>(lo) + (offset > span ? span : offset));
  };
  switch (fdp.ConsumeIntegralInRange<int>(0, 6)) {
    case 0:
      return near(fdp.ConsumeIntegralInRange<uint64_t>(0, 16));
    case 1:
      return static_cast<int64_t>(static_cast<uint64_t>(hi) -
                                  std::min(span, fdp.ConsumeIntegralInRange<uint64_t>(0, 16)));
    case 2: {
      __int128 power = 1;
      for (int e = fdp.ConsumeIntegralInRange<int>(0, 18); e > 0; --e) power *= 10;
      return Clamp(power + fdp.ConsumeIntegralInRange<int64_t>(-1, 1), lo, hi);
    }
    case 3: {
      const __int128 power = static_cast<__int128>(1) << fdp.ConsumeIntegralInRange<int>(0, 63);
      return Clamp(power + fdp.ConsumeIntegralInRange<int64_t>(-1, 1), lo, hi);
    }
    case 4:
      return near(fdp.ConsumeIntegralInRange<uint64_t>(0, 1000));
    case 5:
      return near(fdp.ConsumeIntegralInRange<uint64_t>(0, 100'000'000));
    default:
      return fdp.ConsumeIntegralInRange<int64_t>(lo, hi);
  }
}

inline std::string Str(const Int& value) {
  return value.str();
}

inline std::string Str(int64_t value) {
  return std::to_string(value);
}

// The reply text of a core error, with the arity error (which the server words) as the model
// names it.
inline std::string_view CoreErrorText(shield::Error error) {
  if (error == shield::Error::kArity) return shield_model::err::kArity;
  return shield::ErrorReply(error);
}

inline std::string Words(const std::vector<std::string_view>& words) {
  std::string out;
  for (const auto word : words) {
    out += " '";
    for (const char c : word) {
      if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') {
        out += c;
      } else {
        char hex[5];
        std::snprintf(hex, sizeof hex, "\\x%02x", static_cast<unsigned char>(c));
        out += hex;
      }
    }
    out += "'";
  }
  return out;
}

}  // namespace shield_fuzz
