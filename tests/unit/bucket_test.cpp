#include "core/bucket/bucket.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "case_name.hpp"
#include "core/common/numeric.hpp"
#include "fake_store.hpp"

namespace shield {
namespace {

// --- The original module's timing cases, step by step ---------------------------------------

struct Step {
  int64_t advance_ms;
  int64_t tokens;
  int64_t reply;
};

struct TimingCase {
  const char* name;
  int64_t capacity;
  int64_t period_ms;
  std::vector<Step> steps;
};

const TimingCase kTimingCases[] = {
    {"ReadmeExample", 30, 60'000, {{0, 13, 17}, {0, 13, 4}, {0, 13, -1}}},
    {"RefillAfterHalfPeriod", 3, 6'000, {{0, 1, 2}, {3'000, 1, 2}, {0, 2, 0}, {6'000, 1, 2}}},
    {"FullAfterLongWait", 5, 1'000, {{0, 3, 2}, {2'000, 1, 4}}},
    {"HalfRefillOfHundred", 100, 10'000, {{0, 50, 50}, {5'000, 1, 99}}},
    {"TakeMoreThanCapacityIsDenied", 5, 1'000, {{0, 6, -1}, {0, 5, 0}}},
    {"DeniedCallTakesNothing", 2, 10'000, {{0, 2, 0}, {0, 1, -1}, {5'000, 1, 0}}},
    {"ExactRefillOfOneToken", 10, 10'000, {{0, 10, 0}, {999, 1, -1}, {1, 1, 0}}},
};

void PrintTo(const TimingCase& c, std::ostream* os) {
  *os << c.name << " (" << c.capacity << " per " << c.period_ms << " ms)";
}

class TimingTable : public testing::TestWithParam<TimingCase> {};

TEST_P(TimingTable, RepliesMatchTheOriginalModule) {
  const auto& c = GetParam();
  FakeKey key(c.capacity, c.period_ms);
  for (size_t i = 0; i < c.steps.size(); ++i) {
    key.clock.Advance(c.steps[i].advance_ms);
    EXPECT_EQ(key.Absorb(c.steps[i].tokens), c.steps[i].reply) << "step " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Original, TimingTable, testing::ValuesIn(kTimingCases),
                         testing_support::CaseName());

// --- Reading keys written by others --------------------------------------------------------

TEST(Absorb, KeyWithoutExpiryCountsAsFullyRefilled) {
  FakeKey key(30, 60'000);
  key.Set(2);
  EXPECT_EQ(key.Absorb(1), 29);
}

TEST(Absorb, KeyWrittenByTheOriginalRefillsFromItsTtl) {
  // The original writes PSETEX key period_ms remaining: 4 tokens, 45 s left of 60 s.
  FakeKey key(30, 60'000);
  key.Set(4, kStartMs + 45'000);
  // 15 s refilled at 0.5 token/s: 7 whole tokens (and half a token carried).
  EXPECT_EQ(key.Absorb(1), 4 + 7 - 1);
}

TEST(Absorb, NegativeStoredCountReadsAsEmpty) {
  FakeKey key(10, 10'000);
  key.Set(-50, kStartMs + 10'000);
  EXPECT_EQ(key.Absorb(1), -1);
  key.clock.Advance(1'000);
  EXPECT_EQ(key.Absorb(1), 0);
}

TEST(Absorb, StoredCountAboveCapacityReadsAsFull) {
  FakeKey key(10, 10'000);
  key.Set(kMax, kStartMs + 10'000);
  EXPECT_EQ(key.Absorb(1), 9);
}

TEST(Absorb, ExpiryBeyondOnePeriodRefillsNothing) {
  FakeKey key(10, 10'000);
  key.Set(3, kStartMs + 50'000);  // written with a longer period, or before the clock went back
  EXPECT_EQ(key.Absorb(1), 2);
}

TEST(Absorb, BackwardClockDoesNotRewind) {
  FakeKey key(10, 10'000);
  EXPECT_EQ(key.Absorb(10), 0);
  key.clock.Advance(-60'000);  // wall clock stepped back a minute
  EXPECT_EQ(key.Absorb(1), -1);
  const auto stored = key.stored();
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->tokens, 0);
}

// --- What is written -------------------------------------------------------------------------

TEST(Absorb, FullBucketStoresAFullPeriodTtl) {
  FakeKey key(3, 6'000);
  key.Absorb(1);
  EXPECT_EQ(key.stored()->expire_at_ms, kStartMs + 6'000);
}

TEST(Absorb, PartialRefillIsCarriedInTheTtl) {
  FakeKey key(3, 6'000);
  key.Absorb(3);
  key.clock.Advance(3'000);  // 1.5 tokens refilled: 1 taken out, 0.5 (1000 ms) carried
  EXPECT_EQ(key.Absorb(1), 0);
  EXPECT_EQ(key.stored()->expire_at_ms, key.clock.now_ms() + 6'000 - 1'000);
  key.clock.Advance(1'000);  // the carried half plus this second's half make one token
  EXPECT_EQ(key.Absorb(1), 0);
}

TEST(Absorb, DeniedCallDecidesNothingToWrite) {
  const auto decision = Absorb(PlainLimits(5, 1'000), {0, kStartMs + 1'000}, 1, kStartMs);
  EXPECT_FALSE(decision.allowed);
  EXPECT_EQ(decision.after.available, decision.before.available);
}

// --- Starvation and rate properties ------------------------------------------------------------

TEST(Absorb, CallerSlightlyFasterThanTheRateIsNotStarved) {
  // The original's flaw: capacity 3 per 6 s, a call every 1.9 s, and no token ever refills.
  FakeKey key(3, 6'000);
  int granted = 0;
  constexpr int kCalls = 100;
  for (int i = 0; i < kCalls; ++i) {
    if (key.Absorb(1) >= 0) ++granted;
    key.clock.Advance(1'900);
  }
  const int64_t window_ms = int64_t{kCalls - 1} * 1'900;
  const int64_t refill = window_ms * 3 / 6'000;
  EXPECT_LE(granted, 3 + refill);
  EXPECT_GE(granted, 3 + refill - 1);
}

struct RateCase {
  int64_t capacity;
  int64_t period_ms;
};

const RateCase kRateCases[] = {
    {3, 6'000},      {1, 1'000},    {10, 1'000},         {7, 3'000},
    {3, 1'000},      {9, 7'000},    {1'000, 1'000},      {1'000'000, 1'000},
    {60, 3'600'000}, {kMax, 1'000}, {5, 86'400'000'000},
};

void PrintTo(const RateCase& c, std::ostream* os) {
  *os << c.capacity << " per " << c.period_ms << " ms";
}

std::string RateCaseName(const testing::TestParamInfo<RateCase>& test_info) {
  std::string name = std::to_string(test_info.param.capacity);
  name += "TokensPer";
  name += std::to_string(test_info.param.period_ms);
  name += "Ms";
  return name;
}

class RateTable : public testing::TestWithParam<RateCase> {};

// Rates whose refill interval is a whole number of milliseconds (or whole tokens per ms).
class IntegralRateTable : public testing::TestWithParam<RateCase> {};

TEST_P(RateTable, CallerAtTheRefillRateIsNeverDenied) {
  const auto& c = GetParam();
  FakeKey key(c.capacity, c.period_ms);
  // One token per refill interval, rounded up to the millisecond the TTL can express.
  const int64_t interval_ms = c.period_ms / c.capacity + (c.period_ms % c.capacity != 0);
  const int64_t per_call = interval_ms == 1 ? c.capacity / c.period_ms : 1;
  for (int i = 0; i < 2'000; ++i) {
    ASSERT_GE(key.Absorb(per_call), 0) << "call " << i;
    key.clock.Advance(interval_ms);
  }
}

TEST_P(IntegralRateTable, DrainedBucketRefillsAtExactlyTheRate) {
  const auto& c = GetParam();
  FakeKey key(c.capacity, c.period_ms);
  ASSERT_EQ(key.Absorb(c.capacity), 0);
  const int64_t interval_ms = c.period_ms >= c.capacity ? c.period_ms / c.capacity : 1;
  const int64_t per_call = c.period_ms >= c.capacity ? 1 : c.capacity / c.period_ms;
  for (int i = 0; i < 1'000; ++i) {
    key.clock.Advance(interval_ms);
    ASSERT_EQ(key.Absorb(per_call), 0) << "call " << i;
    ASSERT_EQ(key.Absorb(1), -1) << "call " << i;
  }
}

TEST_P(RateTable, GrantsNeverExceedCapacityPlusRefillOfTheWindow) {
  const auto& c = GetParam();
  FakeKey key(c.capacity, c.period_ms);
  std::mt19937_64 rng(42);
  const int64_t max_step_ms = std::max<int64_t>(1, c.period_ms / std::min<int64_t>(c.capacity, 50));
  std::uniform_int_distribution<int64_t> step(0, max_step_ms);
  std::uniform_int_distribution<int64_t> take(
      1, std::max<int64_t>(1, std::min<int64_t>(c.capacity / 4, 1 << 20)));
  Int128 granted = 0;
  int64_t elapsed_ms = 0;
  for (int i = 0; i < 3'000; ++i) {
    const int64_t tokens = take(rng);
    if (key.Absorb(tokens) >= 0) granted += tokens;
    const Int128 bound = c.capacity + static_cast<Int128>(elapsed_ms) * c.capacity / c.period_ms;
    ASSERT_LE(granted, bound) << "call " << i;
    const int64_t dt = step(rng);
    key.clock.Advance(dt);
    elapsed_ms += dt;
  }
}

INSTANTIATE_TEST_SUITE_P(Rates, RateTable, testing::ValuesIn(kRateCases), RateCaseName);

const RateCase kIntegralRateCases[] = {
    {3, 6'000},         {1, 1'000},      {10, 1'000},         {1'000, 1'000},
    {1'000'000, 1'000}, {60, 3'600'000}, {5, 86'400'000'000},
};

INSTANTIATE_TEST_SUITE_P(Rates, IntegralRateTable, testing::ValuesIn(kIntegralRateCases),
                         RateCaseName);

// --- Exactness at extremes -------------------------------------------------------------------

TEST(Absorb, MillionTokensPerSecondRefillsAThousandPerMillisecond) {
  FakeKey key(1'000'000, 1'000);
  ASSERT_EQ(key.Absorb(1'000'000), 0);
  key.clock.Advance(1);
  EXPECT_EQ(key.Absorb(1), 999);
  key.clock.Advance(999);  // 999 + 999,000 refilled, 1 taken
  EXPECT_EQ(key.Absorb(1), 999'998);
}

TEST(Absorb, LargestCapacityAndPeriodDoNotOverflow) {
  const BucketLimits limits = PlainLimits(kMax, kMaxPeriodSeconds * 1000);
  const int64_t now_ms = 0;  // the only time at which the largest period's expiry fits
  ASSERT_TRUE(ExpiryFits(now_ms, limits.period_ms));
  const auto decision = Absorb(limits, {0, kNoExpiry}, 1, now_ms);
  ASSERT_TRUE(decision.allowed);
  EXPECT_EQ(decision.after.available, kMax - 1);
  EXPECT_EQ(StoreAt(limits, decision.after, now_ms).expire_at_ms, limits.period_ms);
}

TEST(Absorb, HalfOfAHugePeriodRefillsHalfOfTheLargestCapacity) {
  const BucketLimits limits = PlainLimits(kMax, 4'000'000'000'000'000'000);
  const int64_t half_ms = limits.period_ms / 2;
  ASSERT_TRUE(ExpiryFits(half_ms, limits.period_ms));
  const auto decision = Absorb(limits, {0, limits.period_ms}, 1, half_ms);
  ASSERT_TRUE(decision.allowed);
  EXPECT_EQ(decision.after.available, kMax / 2 - 1);
}

TEST(Absorb, ExpirySaturatesWhenTheCallerSkipsExpiryFits) {
  const BucketLimits limits = PlainLimits(10, kMaxPeriodSeconds * 1000);
  const auto decision = Absorb(limits, {0, kNoExpiry}, 1, kStartMs);
  ASSERT_TRUE(decision.allowed);
  EXPECT_EQ(StoreAt(limits, decision.after, kStartMs).expire_at_ms, kMax);
}

TEST(Absorb, ExtremeStoredValuesAndExpiriesAreClamped) {
  const BucketLimits limits = PlainLimits(kMax, 1'000);
  for (const int64_t tokens : {std::numeric_limits<int64_t>::min(), int64_t{-1}, kMax}) {
    for (const int64_t expire_at : {kNoExpiry, int64_t{0}, kMax}) {
      const auto decision = Absorb(limits, {tokens, expire_at}, kMax, kStartMs);
      if (decision.allowed) {
        EXPECT_EQ(decision.after.available, 0);
        EXPECT_GT(StoreAt(limits, decision.after, kStartMs).expire_at_ms, kStartMs);
      }
      EXPECT_GE(RetryAfterMs(limits, decision.before, kMax), 0);
      EXPECT_GE(ResetAfterMs(limits, decision.before), 0);
    }
  }
}

TEST(ExpiryFits, RejectsAnExpiryPastInt64) {
  EXPECT_TRUE(ExpiryFits(kStartMs, 1'000));
  EXPECT_TRUE(ExpiryFits(kStartMs, kMax - kStartMs));
  EXPECT_FALSE(ExpiryFits(kStartMs, kMax - kStartMs + 1));
  EXPECT_FALSE(ExpiryFits(kStartMs, kMaxPeriodSeconds * 1000));
}

}  // namespace
// ---- settling costs known afterwards -----------------------------------------------------------

TEST(Settle, AnActualBelowTheReservationGivesTheDifferenceBack) {
  const auto limits = PlainLimits(10, 10'000);
  const StoredBucket four_left{4, 1'000'000 + 10'000};
  const auto settled = Settle(limits, four_left, -3, 1'000'000);
  EXPECT_EQ(settled.balance, 7);
  EXPECT_EQ(settled.refunded, 3);
  EXPECT_EQ(settled.taken, 0);
}

TEST(Settle, WhatTheBucketLacksBecomesDebtStoredAsRefillTimeBeyondTheFillTime) {
  const auto limits = PlainLimits(10, 10'000);
  const int64_t now = 1'000'000;
  const auto settled = Settle(limits, {2, now + 10'000}, 5, now);
  EXPECT_EQ(settled.balance, -3);
  EXPECT_EQ(settled.taken, 5);
  EXPECT_EQ(settled.store.tokens, 0);
  EXPECT_EQ(settled.store.expire_at_ms, now + 10'000 + 3'000);
  const BucketState later = StateAt(limits, settled.store, now + 2'999);
  EXPECT_TRUE(InDebt(later));
  EXPECT_EQ(later.available, 0);
  EXPECT_EQ(StateAt(limits, settled.store, now + 4'000).available, 1);
}

TEST(Settle, TheDebtNeverPassesOnePeriodsRefill) {
  const auto limits = PlainLimits(10, 10'000);
  const auto settled = Settle(limits, {0, kNoExpiry}, 1'000'000, 5'000'000);
  EXPECT_EQ(settled.balance, -10);
  EXPECT_EQ(settled.store.expire_at_ms, 5'000'000 + 10'000 + MaxDebtMs(limits));
}

TEST(Settle, AGiveBackRepaysTheDebtBeforeFillingTheBucket) {
  const auto limits = PlainLimits(10, 10'000);
  const int64_t now = 1'000'000;
  const StoredBucket owes_five{0, now + 10'000 + 5'000};
  const auto partly = Settle(limits, owes_five, -2, now);
  EXPECT_EQ(partly.balance, -3);
  const auto repaid = Settle(limits, owes_five, -7, now);
  EXPECT_EQ(repaid.balance, 2);
  EXPECT_FALSE(InDebt(StateAt(limits, repaid.store, now)));
}

TEST(Settle, AStallOfAKeyThatHoldsTokensIsNotDebt) {
  const auto limits = PlainLimits(10, 10'000);
  const int64_t now = 1'000'000;
  const auto settled = Settle(limits, {5, now + 60'000}, -2, now);
  EXPECT_EQ(settled.balance, 7);
}

}  // namespace shield
