// Google Benchmark of the core alone: what one SHIELD.absorb decision costs without Redis.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string_view>

#include "core/bucket/bucket.hpp"
#include "core/bucket/bucket_args.hpp"
#include "core/common/int_parse.hpp"

namespace shield {
namespace {

constexpr int64_t kNowMs = 1'700'000'000'000;
// A typical call's arguments after the key.
constexpr std::string_view kWords[] = {"1000000000", "60", "1"};

// A live bucket that keeps granting: huge capacity, always half a period refilled (the path
// with a partial refill to carry, not the full-bucket shortcut).
void BM_AbsorbAllowed(benchmark::State& state) {
  const BucketLimits limits = PlainLimits(1'000'000'000, 60'000);
  int64_t now_ms = kNowMs;
  for (auto _ : state) {
    ++now_ms;
    const StoredBucket stored{500, now_ms + 30'000};
    const auto decision = Absorb(limits, stored, 1, now_ms);
    benchmark::DoNotOptimize(decision);
  }
}
BENCHMARK(BM_AbsorbAllowed);

// An exhausted bucket: the call is denied.
void BM_AbsorbDenied(benchmark::State& state) {
  const BucketLimits limits = PlainLimits(1, 3'600'000);
  const StoredBucket stored{0, kNowMs + 3'000'000};
  for (auto _ : state) {
    const auto decision = Absorb(limits, stored, 1, kNowMs);
    benchmark::DoNotOptimize(decision);
  }
}
BENCHMARK(BM_AbsorbDenied);

// Argument parsing of a typical call, and the stored value read back.
void BM_ParseArgsAndStoredValue(benchmark::State& state) {
  for (auto _ : state) {
    const auto args = ParseBucketArgs(kWords, {false, true});
    // Opaque, as a value read from a key is: the compiler must not parse the literal itself.
    std::string_view stored = "999999987";
    benchmark::DoNotOptimize(stored);
    const auto tokens = ParseStoredInt64(stored);
    benchmark::DoNotOptimize(args);
    benchmark::DoNotOptimize(tokens);
  }
}
BENCHMARK(BM_ParseArgsAndStoredValue);

// The whole core path of one allowed call: parse, decide, format the value to store.
void BM_WholeDecision(benchmark::State& state) {
  int64_t now_ms = kNowMs;
  char digits[kInt64TextCapacity];
  for (auto _ : state) {
    const auto args = ParseBucketArgs(kWords, {false, true});
    std::string_view value = "999999987";
    benchmark::DoNotOptimize(value);
    const auto tokens = ParseStoredInt64(value);
    const auto decision = Absorb(args.limits, {*tokens, now_ms + 59'000}, args.tokens, ++now_ms);
    const StoredBucket stored = StoreAt(args.limits, decision.after, now_ms);
    benchmark::DoNotOptimize(FormatInt64(stored.tokens, digits));
  }
}
BENCHMARK(BM_WholeDecision);

}  // namespace
}  // namespace shield
