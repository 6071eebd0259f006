// What Shield guarantees a caller that keeps to the refill rate, with the exact call times, and
// why the refill a write carries in the TTL is rounded down: the tests check (1) to (4) of
// docs/design.md#why-the-rate-guarantee-holds, where they are proved.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <numeric>
#include <ostream>
#include <string>
#include <vector>

#include "core/bucket/bucket.hpp"
#include "core/common/numeric.hpp"
#include "fake_store.hpp"

namespace shield {
namespace {

struct Rate {
  int64_t capacity;
  int64_t period_ms;
  int64_t max_tokens = 0;  // 0: capacity (no BURST)

  BucketLimits Limits() const {
    if (max_tokens == 0) return PlainLimits(capacity, period_ms);
    return BurstLimits(capacity, period_ms, max_tokens).value();
  }
  int64_t Max() const { return max_tokens == 0 ? capacity : max_tokens; }
};

void PrintTo(const Rate& rate, std::ostream* os) {
  *os << rate.capacity << " per " << rate.period_ms << " ms, holding " << rate.Max();
}

std::string RateName(const Rate& rate) {
  std::string name =
      std::to_string(rate.capacity) + "TokensPer" + std::to_string(rate.period_ms) + "Ms";
  if (rate.max_tokens != 0) name += "Burst" + std::to_string(rate.max_tokens);
  return name;
}

// Time of call j (from 0) of a caller exactly at the rate: floor(j·P/C) ms after its first call.
int64_t AtTheRate(const Rate& rate, int64_t j) {
  return kStartMs + static_cast<int64_t>(static_cast<Int128>(j) * rate.period_ms / rate.capacity);
}

// The calls (counted from 0) that are denied among the first `calls` of that caller, one token
// each, from a full bucket.
std::vector<int64_t> DeniedCallsAtTheRate(const Rate& rate, int64_t calls) {
  FakeKey key(rate.Limits());
  std::vector<int64_t> denied;
  for (int64_t j = 0; j < calls; ++j) {
    key.clock.Advance(AtTheRate(rate, j) - key.clock.now_ms());
    if (key.Absorb(1) < 0) denied.push_back(j);
  }
  return denied;
}

// (3): the most denials among the first n calls of a caller at exactly the rate.
int64_t MaxDenials(const Rate& rate, int64_t n) {
  const int64_t c = rate.capacity;
  const int64_t p = rate.period_ms;
  const int64_t g = std::gcd(c, p);
  const int64_t h = std::min(c, p);
  const Int128 x = static_cast<Int128>(c - g) + static_cast<Int128>(n - 1) * (h - g) -
                   static_cast<Int128>(rate.Max() - 2) * p;
  const Int128 y = static_cast<Int128>(p) + h - g;
  return x > 0 ? static_cast<int64_t>((x + y - 1) / y - 1) : 0;
}

constexpr int64_t kCalls = 20'000;

// --- (2) A call made the refill time of its tokens after the last write -------------------------

const Rate kRates[] = {
    {3, 1'000},      {7, 3'000}, {13, 1'000},        {300, 1'000},        {999, 1'000},
    {1'001, 1'000},  {3, 6'000}, {1'000'000, 1'000}, {60, 3'600'000},     {3, 1'000, 10},
    {300, 1'000, 2}, {1, 1'000}, {9, 7'000},         {2, 86'400'000'000},
};

class AfterTheLastWrite : public testing::TestWithParam<Rate> {};

TEST_P(AfterTheLastWrite, ACallForKTokensIsAllowedOnceKTokensOfRefillTimeHavePassed) {
  const Rate& rate = GetParam();
  FakeKey key(rate.Limits());
  uint64_t state = 12345;  // a fixed linear congruential sequence: the same calls every run
  auto next = [&state](int64_t below) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<int64_t>((state >> 33) % static_cast<uint64_t>(below));
  };
  const int64_t interval_ms = std::max<int64_t>(1, rate.period_ms / rate.capacity);
  int64_t last_write_ms = key.clock.now_ms();
  for (int i = 0; i < 3'000; ++i) {
    // Some history: calls of 1 to 5 tokens at random gaps of up to two refill intervals.
    key.clock.Advance(next(2 * interval_ms + 1));
    if (key.Absorb(1 + next(std::min<int64_t>(5, rate.Max()))) >= 0)
      last_write_ms = key.clock.now_ms();
    // From that bucket, k tokens exactly ceil(k·P/C) ms after its last write.
    for (const int64_t k : {int64_t{1}, std::min<int64_t>(2, rate.Max()), rate.Max()}) {
      const auto wait_ms = static_cast<int64_t>(
          (static_cast<Int128>(k) * rate.period_ms + rate.capacity - 1) / rate.capacity);
      FakeKey probe = key;
      probe.clock.Advance(last_write_ms + wait_ms - probe.clock.now_ms());
      ASSERT_GE(probe.Absorb(k), 0) << "call " << i << ", " << k << " tokens";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Rates, AfterTheLastWrite, testing::ValuesIn(kRates),
                         [](const auto& test_info) { return RateName(test_info.param); });

// --- (3) A caller at exactly the rate -----------------------------------------------------------

class CallerAtExactlyTheRate : public testing::TestWithParam<Rate> {};

TEST_P(CallerAtExactlyTheRate, IsDeniedNoMoreOftenThanTheRoundingLossAllows) {
  const Rate& rate = GetParam();
  const auto denied = DeniedCallsAtTheRate(rate, kCalls);
  for (size_t i = 0; i < denied.size(); ++i) {
    // Among the first denied[i] + 1 calls, i + 1 were denied.
    ASSERT_LE(static_cast<int64_t>(i) + 1, MaxDenials(rate, denied[i] + 1)) << "call " << denied[i];
  }
}

TEST_P(CallerAtExactlyTheRate, LeavesOnlyStatesAnotherCallerCanRepeat) {
  // (4): after every write that loses refill, some m >= 1 with c + m <= M - 1 makes p + m·P a
  // multiple of C, so a caller that calls (p + m·P) / C ms after the refill start and takes m
  // tokens comes back to the same state.
  const Rate& rate = GetParam();
  const BucketLimits limits = rate.Limits();
  const int64_t g = std::gcd(rate.capacity, rate.period_ms);
  StoredBucket stored{0, kNoExpiry};  // a missing key reads like this
  for (int64_t j = 0; j < kCalls; ++j) {
    const int64_t now = AtTheRate(rate, j);
    if (stored.expire_at_ms != kNoExpiry && stored.expire_at_ms <= now) stored = {0, kNoExpiry};
    const auto decision = Absorb(limits, stored, 1, now);
    if (!decision.allowed) continue;
    stored = StoreAt(limits, decision.after, now);
    const int64_t p = decision.before.progress;
    if (p % rate.capacity == 0) continue;  // nothing lost
    const int64_t c = decision.after.available;
    bool repeatable = false;
    for (int64_t m = 1; m <= rate.capacity / g && c + m <= rate.Max() - 1; ++m) {
      if ((static_cast<Int128>(m) * rate.period_ms + p) % rate.capacity == 0) repeatable = true;
    }
    ASSERT_TRUE(repeatable) << "call " << j << ": " << c << " tokens left, progress " << p;
  }
}

const Rate kLossyRates[] = {
    {3, 1'000},   {7, 3'000}, {13, 1'000}, {30, 1'000},    {300, 1'000},
    {999, 1'000}, {7, 1'000}, {9, 7'000},  {3, 1'000, 10}, {300, 1'000, 600},
};

INSTANTIATE_TEST_SUITE_P(Rates, CallerAtExactlyTheRate, testing::ValuesIn(kLossyRates),
                         [](const auto& test_info) { return RateName(test_info.param); });

class CallerAtAWholeNumberOfMillisecondsPerToken : public testing::TestWithParam<Rate> {};

TEST_P(CallerAtAWholeNumberOfMillisecondsPerToken, IsNeverDeniedAtExactlyTheRate) {
  EXPECT_EQ(DeniedCallsAtTheRate(GetParam(), kCalls), std::vector<int64_t>{});
  EXPECT_EQ(MaxDenials(GetParam(), kCalls), 0);
}

const Rate kWholeMillisecondRates[] = {
    {1, 1'000}, {3, 6'000},         {10, 1'000},         {1'000, 1'000},   {60, 3'600'000},
    {5, 1'000}, {1'000'000, 1'000}, {5, 86'400'000'000}, {10, 1'000, 100}, {4, 1'000, 2},
};

INSTANTIATE_TEST_SUITE_P(Rates, CallerAtAWholeNumberOfMillisecondsPerToken,
                         testing::ValuesIn(kWholeMillisecondRates),
                         [](const auto& test_info) { return RateName(test_info.param); });

// The exact calls that are denied, so that a change of the rounding shows here by name.
struct KnownDenials {
  Rate rate;
  std::vector<int64_t> first_denied;  // calls counted from 0, at floor(j·P/C) ms
};

void PrintTo(const KnownDenials& c, std::ostream* os) {
  PrintTo(c.rate, os);
}

const KnownDenials kKnownDenials[] = {
    {{3, 1'000}, {1'003, 1'504, 2'005, 2'506}},      {{7, 3'000}, {6'007, 7'008, 8'009, 9'010}},
    {{13, 1'000}, {12'013, 13'014, 14'015, 15'016}}, {{30, 1'000}, {1'480, 1'531, 1'582, 1'633}},
    {{300, 1'000}, {1'795, 1'801, 1'807, 1'813}},    {{999, 1'000}, {1'999, 2'001, 2'003, 2'005}},
    {{3, 1'000, 10}, {4'510, 5'011, 5'512, 6'013}},  {{3, 1'000, 2}, {502, 1'003, 1'504, 2'005}},
};

class ExactRateCaller : public testing::TestWithParam<KnownDenials> {};

TEST_P(ExactRateCaller, IsDeniedAtExactlyTheseCalls) {
  const auto& c = GetParam();
  const int64_t last = c.first_denied.back();
  const auto denied = DeniedCallsAtTheRate(c.rate, last + 1);
  EXPECT_EQ(denied, c.first_denied);
}

INSTANTIATE_TEST_SUITE_P(Rates, ExactRateCaller, testing::ValuesIn(kKnownDenials),
                         [](const auto& test_info) {
                           const auto& d = test_info.param.first_denied;
                           return RateName(test_info.param.rate) + "FirstDeniedAtCall" +
                                  std::to_string(d[0]) + "ThenEvery" + std::to_string(d[1] - d[0]);
                         });

TEST(ExactRateCaller, AtThreePerSecondIsNeverDeniedInItsFirst1001Calls) {
  // Calls at 0, 333, 666, 1000, 1333, ... ms: the bound of (3) allows no denial before call 1001.
  const Rate rate{3, 1'000};
  EXPECT_EQ(MaxDenials(rate, 1'001), 0);
  EXPECT_EQ(MaxDenials(rate, 1'002), 1);
  EXPECT_EQ(DeniedCallsAtTheRate(rate, 1'001), std::vector<int64_t>{});
}

TEST(ExactRateCaller, AtThreePerSecondSpacedBy334MsIsNeverDenied) {
  FakeKey key(3, 1'000);
  for (int i = 0; i < kCalls; ++i) {
    ASSERT_GE(key.Absorb(1), 0) << "call " << i;
    key.clock.Advance(334);
  }
}

// --- A greedy caller: one call every millisecond
// ---------------------------------------------------
//
// A caller that keeps its bucket empty is granted a token at least every ceil(P/C) ms, by (2), and
// never more than the rate, by (1). When a token does not take a whole number of milliseconds it
// gets less than the rate: each grant from an empty bucket carries its leftover refill rounded
// down, and an empty bucket has no whole token to carry it in instead.

struct GreedyCase {
  Rate rate;
  int64_t granted_in_20_s;  // calls at 0, 1, ..., 19'999 ms
};

void PrintTo(const GreedyCase& c, std::ostream* os) {
  PrintTo(c.rate, os);
}

const GreedyCase kGreedyCases[] = {
    {{10, 1'000}, 209}, {{3, 1'000}, 62},      {{7, 3'000}, 53},
    {{30, 1'000}, 618}, {{300, 1'000}, 5'299}, {{999, 1'000}, 10'998},
};

class GreedyCaller : public testing::TestWithParam<GreedyCase> {};

TEST_P(GreedyCaller, GetsATokenEveryRoundedUpIntervalAndNoMoreThanTheRate) {
  const auto& c = GetParam();
  constexpr int64_t kMs = 20'000;
  FakeKey key(c.rate.Limits());
  int64_t granted = 0;
  for (int64_t t = 0; t < kMs; ++t) {
    if (key.Absorb(1) >= 0) ++granted;
    key.clock.Advance(1);
  }
  const int64_t interval_ms = (c.rate.period_ms + c.rate.capacity - 1) / c.rate.capacity;
  EXPECT_GE(granted, 1 + (kMs - 1) / interval_ms);
  EXPECT_LE(granted, c.rate.Max() + (kMs - 1) * c.rate.capacity / c.rate.period_ms);
  EXPECT_EQ(granted, c.granted_in_20_s);
}

INSTANTIATE_TEST_SUITE_P(Rates, GreedyCaller, testing::ValuesIn(kGreedyCases),
                         [](const auto& test_info) {
                           return RateName(test_info.param.rate) + "Gets" +
                                  std::to_string(test_info.param.granted_in_20_s) +
                                  "TokensIn20Seconds";
                         });

// --- (4) The other rounding: carrying the refill rounded up
// ---------------------------------------

enum class Carry { kRoundedDown, kRoundedUp };

// A bucket whose writes carry the refill under way rounded down (Shield) or up to the millisecond.
class KeyWithRounding {
 public:
  KeyWithRounding(const BucketLimits& limits, Carry carry) : limits_(limits), carry_(carry) {}

  int64_t Absorb(int64_t tokens, int64_t now_ms) {
    if (stored_.expire_at_ms != kNoExpiry && stored_.expire_at_ms <= now_ms)
      stored_ = {0, kNoExpiry};
    const auto decision = shield::Absorb(limits_, stored_, tokens, now_ms);
    if (!decision.allowed) return -1;
    stored_ = StoreAt(limits_, decision.after, now_ms);
    if (carry_ == Carry::kRoundedUp && decision.before.progress % limits_.capacity != 0) {
      stored_.expire_at_ms -= 1;  // one more millisecond of refill than has accrued
    }
    return decision.after.available;
  }

  // Where refill counts from, as the stored expiry shows it.
  int64_t RefillStartMs() const { return stored_.expire_at_ms - limits_.window_ms; }

 private:
  BucketLimits limits_;
  Carry carry_;
  StoredBucket stored_{0, kNoExpiry};  // a missing key reads like this
};

// The caller of (4) on 3 per second: takes 2 of 3 tokens, then calls 334 ms after the refill start
// the key shows (1 token and 2/3 ms of refill found, 1 left) and takes the token, again and again.
// Returns by how many tokens its grants exceed 3 + rate × time at the worst call, or 0.
int64_t ExcessOfTheRepeatingCaller(Carry carry) {
  const Rate rate{3, 1'000};
  KeyWithRounding key(rate.Limits(), carry);
  const int64_t first_ms = kStartMs;
  EXPECT_EQ(key.Absorb(2, first_ms), 1);
  Int128 granted = 2;
  int64_t worst = 0;
  for (int i = 0; i < kCalls; ++i) {
    const int64_t now = key.RefillStartMs() + 334;
    EXPECT_EQ(key.Absorb(1, now), 1) << "call " << i;
    granted += 1;
    // Whole tokens granted beyond what capacity plus the refill of the elapsed time allows.
    const Int128 allowed =
        rate.capacity + static_cast<Int128>(now - first_ms) * rate.capacity / rate.period_ms;
    worst = std::max(worst, static_cast<int64_t>(granted - allowed));
  }
  return worst;
}

TEST(RoundingTheCarriedRefillUp, WouldNeverDenyTheCallerAtThreePerSecond) {
  const Rate rate{3, 1'000};
  KeyWithRounding key(rate.Limits(), Carry::kRoundedUp);
  for (int64_t j = 0; j < kCalls; ++j) {
    ASSERT_GE(key.Absorb(1, AtTheRate(rate, j)), 0) << "call " << j;
  }
}

TEST(RoundingTheCarriedRefillUp, WouldGrantMoreThanTheRateToACallerThatRepeatsOneState) {
  EXPECT_GT(ExcessOfTheRepeatingCaller(Carry::kRoundedUp), 0);
}

TEST(RoundingTheCarriedRefillDown, GrantsThatCallerNoMoreThanTheRate) {
  EXPECT_EQ(ExcessOfTheRepeatingCaller(Carry::kRoundedDown), 0);
}

// 2,000 calls of 1 to 3 tokens at random gaps; for every stretch of calls i..j, the tokens granted
// must not exceed M + r·(t_j - t_i). `absorb(tokens, now)` replies -1 when denied.
template <typename AbsorbFn>
void ExpectNoStretchOfRandomCallsGetsMoreThanTheRate(const Rate& rate, AbsorbFn absorb) {
  uint64_t state = 777;
  auto next = [&state](int64_t below) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<int64_t>((state >> 33) % static_cast<uint64_t>(below));
  };
  const int64_t interval_ms = std::max<int64_t>(1, rate.period_ms / rate.capacity);
  const std::array<int64_t, 3> gaps{1, interval_ms, 3 * interval_ms};
  std::vector<int64_t> times;
  std::vector<int64_t> granted{0};  // granted[i]: tokens granted by calls 0 .. i-1
  int64_t now = kStartMs;
  for (int i = 0; i < 2'000; ++i) {
    now += next(gaps[static_cast<size_t>(next(3))]);
    const int64_t tokens = 1 + next(std::min<int64_t>(3, rate.Max()));
    times.push_back(now);
    granted.push_back(granted.back() + (absorb(tokens, now) >= 0 ? tokens : 0));
  }
  for (size_t i = 0; i < times.size(); ++i) {
    for (size_t j = i; j < times.size(); ++j) {
      const Int128 allowed_units = static_cast<Int128>(rate.Max()) * rate.period_ms +
                                   static_cast<Int128>(times[j] - times[i]) * rate.capacity;
      ASSERT_LE(static_cast<Int128>(granted[j + 1] - granted[i]) * rate.period_ms, allowed_units)
          << "calls " << i << " to " << j;
    }
  }
}

class ShieldsRounding : public testing::TestWithParam<Rate> {};

TEST_P(ShieldsRounding, NeverGrantsMoreThanTheRateOverAnyStretchOfCalls) {
  KeyWithRounding key(GetParam().Limits(), Carry::kRoundedDown);
  ExpectNoStretchOfRandomCallsGetsMoreThanTheRate(
      GetParam(), [&key](int64_t tokens, int64_t now) { return key.Absorb(tokens, now); });
}

INSTANTIATE_TEST_SUITE_P(Rates, ShieldsRounding, testing::ValuesIn(kLossyRates),
                         [](const auto& test_info) { return RateName(test_info.param); });

}  // namespace
}  // namespace shield
