// The operations every command shares: the state at time t, retry and reset times, refund,
// BURST, and "decide all, then commit" for several buckets. All on a fake clock.
#include <gtest/gtest.h>

#include <cstdint>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "case_name.hpp"
#include "core/bucket/bucket.hpp"
#include "core/bucket/bucket_args.hpp"
#include "core/common/numeric.hpp"
#include "fake_store.hpp"

namespace shield {
namespace {

// --- VERBOSE fields ------------------------------------------------------------------------------

TEST(Verbose, AllowedCallReportsWhatIsLeftAndWhenTheBucketIsFullAgain) {
  const BucketLimits limits = PlainLimits(30, 60'000);
  const auto decision = Absorb(limits, {0, kNoExpiry}, 13, kStartMs);
  const VerboseValues values = Verbose(limits, decision, 13, decision.allowed);
  EXPECT_EQ(values, (VerboseValues{1, 17, 30, 60, 0, 26'000}));
}

TEST(Verbose, DeniedCallReportsTheTokensHeldAndTheWaitForTheSameCall) {
  const BucketLimits limits = PlainLimits(30, 60'000);
  // 4 tokens held, nothing carried: 9 more take 18 s at one token per 2 s.
  const auto decision = Absorb(limits, {4, kStartMs + 60'000}, 13, kStartMs);
  const VerboseValues values = Verbose(limits, decision, 13, decision.allowed);
  EXPECT_EQ(values, (VerboseValues{0, 4, 30, 60, 18'000, 52'000}));
}

TEST(Verbose, MoreTokensThanTheBucketCanHoldCanNeverSucceed) {
  const BucketLimits limits = PlainLimits(5, 1'000);
  const auto decision = Absorb(limits, {0, kNoExpiry}, 6, kStartMs);
  EXPECT_EQ(Verbose(limits, decision, 6, false)[4], kNever);
}

TEST(Verbose, ABucketThatHeldEnoughInADeniedMultiCallHasNothingToWaitFor) {
  const BucketLimits limits = PlainLimits(5, 1'000);
  const auto decision = Absorb(limits, {0, kNoExpiry}, 1, kStartMs);
  const VerboseValues values = Verbose(limits, decision, 1, /*allowed=*/false);
  EXPECT_EQ(values[0], 0);
  EXPECT_EQ(values[1], 5);  // nothing was taken
  EXPECT_EQ(values[4], 0);
  EXPECT_EQ(values[5], 0);
}

// --- retry_after_ms is the exact wait ------------------------------------------------------------

struct RetryCase {
  const char* name;
  int64_t capacity;
  int64_t period_ms;
  int64_t burst;  // 0: none
  int64_t tokens;
};

void PrintTo(const RetryCase& c, std::ostream* os) {
  *os << c.name;
}

const RetryCase kRetryCases[] = {
    {"OneTokenPerSecond", 1, 1'000, 0, 1},
    {"ThreePerSecond", 3, 1'000, 0, 1},
    {"ThreePerSecondTakingTwo", 3, 1'000, 0, 2},
    {"SevenPerThreeSeconds", 7, 3'000, 0, 3},
    {"ThirtyPerMinuteTakingThirteen", 30, 60'000, 0, 13},
    {"ThousandPerSecond", 1'000, 1'000, 0, 7},
    {"MillionPerSecond", 1'000'000, 1'000, 0, 1'000},
    {"SixtyPerHour", 60, 3'600'000, 0, 1},
    {"BurstAboveTheRate", 3, 1'000, 20, 5},
    {"BurstBelowTheRate", 100, 1'000, 10, 10},
    {"HugeCapacity", kMax, 1'000, 0, kMax / 3},
};

BucketLimits LimitsOf(const RetryCase& c) {
  if (c.burst == 0) return PlainLimits(c.capacity, c.period_ms);
  return *BurstLimits(c.capacity, c.period_ms, c.burst);
}

class RetryTable : public testing::TestWithParam<RetryCase> {};

TEST_P(RetryTable, CallerThatWaitsRetryAfterIsAllowedAndNotOneMillisecondSooner) {
  const auto& c = GetParam();
  FakeKey key(LimitsOf(c));
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int64_t> jitter(0, 997);
  for (int round = 0; round < 200; ++round) {
    // Drain, from a random point of the refill, until the call is denied.
    key.clock.Advance(jitter(rng));
    while (key.Absorb(c.tokens) >= 0) {
    }
    const BucketState state = key.State();
    const int64_t retry_ms = RetryAfterMs(key.limits(), state, c.tokens);
    ASSERT_GT(retry_ms, 0) << "round " << round;
    if (retry_ms > 1) {
      FakeKey sooner = key;
      sooner.clock.Advance(retry_ms - 1);
      ASSERT_LT(sooner.Absorb(c.tokens), 0) << "round " << round;
    }
    key.clock.Advance(retry_ms);
    ASSERT_GE(key.Absorb(c.tokens), 0) << "round " << round;
  }
}

TEST_P(RetryTable, ResetAfterIsWhenTheBucketIsFullAgain) {
  const auto& c = GetParam();
  FakeKey key(LimitsOf(c));
  ASSERT_GE(key.Absorb(c.tokens), 0);
  const int64_t reset_ms = ResetAfterMs(key.limits(), key.State());
  ASSERT_GT(reset_ms, 0);
  FakeKey sooner = key;
  sooner.clock.Advance(reset_ms - 1);
  EXPECT_LT(sooner.State().available, key.limits().max_tokens);
  key.clock.Advance(reset_ms);
  EXPECT_EQ(key.State().available, key.limits().max_tokens);
  EXPECT_EQ(ResetAfterMs(key.limits(), key.State()), 0);
}

INSTANTIATE_TEST_SUITE_P(Rates, RetryTable, testing::ValuesIn(kRetryCases),
                         testing_support::CaseName());

TEST(RetryAfterMs, IncludesTheWaitOfAKeyWrittenWithALongerWindow) {
  // Written with a 60 s period, read with a 6 s one: refill waits until the TTL is within 6 s.
  FakeKey key(3, 6'000);
  key.Set(0, kStartMs + 60'000);
  const int64_t retry_ms = RetryAfterMs(key.limits(), key.State(), 1);
  EXPECT_EQ(retry_ms, 54'000 + 2'000);
  key.clock.Advance(retry_ms - 1);
  EXPECT_EQ(key.Absorb(1), -1);
  key.clock.Advance(1);
  EXPECT_EQ(key.Absorb(1), 0);
}

// --- inspect -------------------------------------------------------------------------------------

TEST(Inspect, ReadingTheStateChangesNothingAndMatchesTheNextAbsorb) {
  FakeKey key(10, 10'000);
  key.Absorb(7);
  key.clock.Advance(1'500);
  const auto stored = key.stored();
  const BucketState first = key.State();
  const BucketState second = key.State();
  EXPECT_EQ(first.available, second.available);
  EXPECT_EQ(first.progress, second.progress);
  EXPECT_EQ(key.stored()->expire_at_ms, stored->expire_at_ms);
  EXPECT_EQ(first.available, 4);  // 3 left + 1.5 refilled
  EXPECT_EQ(CarriedMs(key.limits(), first), 500);
  EXPECT_EQ(key.Absorb(1), first.available - 1);
}

// --- refund --------------------------------------------------------------------------------------

TEST(Refund, GivesTokensBackAndKeepsTheRefillUnderWay) {
  FakeKey key(3, 6'000);
  key.Absorb(3);
  key.clock.Advance(3'000);  // 1.5 tokens refilled: 1 whole, 1000 ms carried
  EXPECT_EQ(key.Refund(1), 2);
  EXPECT_EQ(key.stored()->expire_at_ms, key.clock.now_ms() + 6'000 - 1'000);
  key.clock.Advance(1'000);  // the carried half and this second's half make one token
  EXPECT_EQ(key.State().available, 3);
}

TEST(Refund, NeverGoesAboveTheMaximum) {
  FakeKey key(10, 60'000);
  key.Absorb(2);
  EXPECT_EQ(key.Refund(5), 10);
  EXPECT_EQ(key.State().progress, 0);
  FakeKey burst(*BurstLimits(10, 60'000, 25));
  burst.Absorb(20);
  EXPECT_EQ(burst.Refund(100), 25);
}

TEST(Refund, FullBucketIsLeftAsItIs) {
  FakeKey key(10, 60'000);
  EXPECT_EQ(key.Refund(3), 10);
  EXPECT_FALSE(key.stored().has_value());
}

TEST(RefundDecision, WritesNothingForAFullBucketAndCountsNothing) {
  const BucketLimits limits = PlainLimits(10, 60'000);
  const RefundDecision missing = Refund(limits, {0, kNoExpiry}, 3, kStartMs);
  EXPECT_FALSE(missing.write);
  EXPECT_EQ(missing.available, 10);
  EXPECT_EQ(missing.refunded, 0);
}

TEST(RefundDecision, CountsOnlyWhatTheBucketWasShortOf) {
  const BucketLimits limits = PlainLimits(10, 60'000);
  // 7 tokens, written just now (the original's format: the TTL is a whole window then).
  const RefundDecision decision = Refund(limits, {7, kStartMs + 60'000}, 5, kStartMs);
  EXPECT_TRUE(decision.write);
  EXPECT_EQ(decision.available, 10);
  EXPECT_EQ(decision.refunded, 3);
  EXPECT_EQ(decision.store.tokens, 10);
}

TEST(Refund, HugeRefundOfAHugeBucketDoesNotOverflow) {
  FakeKey key(kMax, 1'000);
  key.Absorb(kMax);
  EXPECT_EQ(key.Refund(kMax), kMax);
}

// --- BURST ---------------------------------------------------------------------------------------

TEST(Burst, NewBucketHoldsTheBurstAndRefillsAtTheRate) {
  FakeKey key(*BurstLimits(10, 60'000, 50));  // 10 per minute, up to 50
  EXPECT_EQ(key.Absorb(50), 0);
  EXPECT_EQ(key.stored()->expire_at_ms, kStartMs + 300'000);  // 50 tokens take 5 minutes
  key.clock.Advance(6'000);
  EXPECT_EQ(key.Absorb(1), 0);
  EXPECT_EQ(key.Absorb(1), -1);
}

TEST(Burst, SmallerThanTheRateCapsWhatOneMomentCanTake) {
  FakeKey key(*BurstLimits(1'000, 1'000, 10));  // 1000 per second, at most 10 at once
  EXPECT_EQ(key.Absorb(11), -1);
  EXPECT_EQ(key.Absorb(10), 0);
  EXPECT_EQ(key.stored()->expire_at_ms, kStartMs + 10);
  key.clock.Advance(10);
  EXPECT_EQ(key.Absorb(10), 0);
}

TEST(Burst, WindowRoundsUpSoAnExpiredKeyIsCertainlyFull) {
  const auto limits = BurstLimits(3, 1'000, 2);  // 2 tokens take 666.7 ms
  ASSERT_TRUE(limits.has_value());
  EXPECT_EQ(limits->window_ms, 667);
  EXPECT_FALSE(BurstLimits(1, kMaxPeriodSeconds * 1000, 2).has_value());
}

class BurstGrantTable : public testing::TestWithParam<RetryCase> {};

TEST_P(BurstGrantTable, GrantsNeverExceedTheMaximumPlusRefillOfTheWindow) {
  const auto& c = GetParam();
  FakeKey key(LimitsOf(c));
  std::mt19937_64 rng(11);
  std::uniform_int_distribution<int64_t> step(0, 50);
  Int128 granted = 0;
  int64_t elapsed_ms = 0;
  for (int i = 0; i < 3'000; ++i) {
    if (i % 5 == 0) {
      const int64_t back = key.Refund(1);
      (void)back;
    }
    if (key.Absorb(c.tokens) >= 0) granted += c.tokens;
    const Int128 refunds = i / 5 + 1;
    const Int128 bound = key.limits().max_tokens +
                         static_cast<Int128>(elapsed_ms) * c.capacity / c.period_ms + refunds;
    ASSERT_LE(granted, bound) << "call " << i;
    const int64_t dt = step(rng);
    key.clock.Advance(dt);
    elapsed_ms += dt;
  }
}

INSTANTIATE_TEST_SUITE_P(Rates, BurstGrantTable, testing::ValuesIn(kRetryCases),
                         testing_support::CaseName());

// --- decide all, then commit ---------------------------------------------------------------------

TEST(DecideAll, ABucketShortOfTokensLeavesEveryBucketAsItWas) {
  FakeKey second(10, 1'000);
  FakeKey hour(3, 3'600'000);
  hour.Absorb(3);
  const auto stored = hour.stored();
  const auto a = Absorb(PlainLimits(10, 1'000), {0, kNoExpiry}, 1, kStartMs);
  const auto b = Absorb(hour.limits(), *stored, 1, kStartMs);
  EXPECT_TRUE(a.allowed);
  EXPECT_FALSE(b.allowed);
  // The caller commits only when both are allowed; neither key is written here.
  EXPECT_FALSE(second.stored().has_value());
  EXPECT_EQ(hour.stored()->expire_at_ms, stored->expire_at_ms);
}

}  // namespace
}  // namespace shield
