// The one decision shape (core/common/policy.hpp) of every algorithm: what each Decide writes,
// replies and counts, against a key held as the store holds it (a string and an expiry).
#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/bucket/bucket_policy.hpp"
#include "core/gcra/gcra_policy.hpp"
#include "core/quota/quota_policy.hpp"
#include "core/window/window_policy.hpp"
#include "fake_store.hpp"

namespace shield {
namespace {

constexpr int64_t kNowMs = 1'700'000'000'000;
constexpr int64_t kNowNs = kNowMs * kNanosPerMilli;

using Key = StoredString;

TEST(BucketPolicy, ATakeStoresTheCountLeftWithTheExpiryAtWhichTheBucketIsFull) {
  Key key;
  const auto outcome = bucket::Decide(PlainLimits(10, 60'000), key.View(), Operation::kTake, 3,
                                      kNowMs, Detail::kFull);
  ASSERT_EQ(outcome.error, Error::kNone);
  EXPECT_TRUE(outcome.allowed);
  EXPECT_EQ(outcome.write, KeyWrite::kStore);
  EXPECT_EQ(outcome.Text(), "7");
  EXPECT_EQ(outcome.expire_at_ms, kNowMs + 60'000);
  EXPECT_EQ(outcome.reply, 7);
  EXPECT_EQ(outcome.committed.remaining, 7);
  EXPECT_EQ(outcome.unchanged.remaining, 10);
  EXPECT_EQ(outcome.quota, 10);
  EXPECT_EQ(outcome.window_s, 60);
}

TEST(BucketPolicy, APeekDecidesAsATakeAndWritesNothing) {
  Key key{"0", kNowMs + 60'000, true};
  const auto peek = bucket::Decide(PlainLimits(10, 60'000), key.View(), Operation::kPeek, 3, kNowMs,
                                   Detail::kFull);
  EXPECT_FALSE(peek.allowed);
  EXPECT_EQ(peek.write, KeyWrite::kNothing);
  EXPECT_EQ(peek.retry_after_ms, 18'000);
}

TEST(BucketPolicy, AGiveToAFullBucketWritesNothingAndCountsNothing) {
  Key key;
  const auto outcome = bucket::Decide(PlainLimits(10, 60'000), key.View(), Operation::kGive, 3,
                                      kNowMs, Detail::kReply);
  EXPECT_EQ(outcome.write, KeyWrite::kNothing);
  EXPECT_EQ(outcome.refunded, 0);
  EXPECT_EQ(outcome.reply, 10);
}

TEST(BucketPolicy, ABurstBucketsPolicyIsItsMaximumOverTheTimeToFillIt) {
  const auto limits = *BurstLimits(5, 1'000, 10);
  const auto outcome =
      bucket::Decide(limits, Key{}.View(), Operation::kPeek, 1, kNowMs, Detail::kFull);
  EXPECT_EQ(outcome.quota, 10);
  EXPECT_EQ(outcome.window_s, 2);
  EXPECT_LE(outcome.committed.remaining, outcome.quota);
}

TEST(BucketPolicy, AGcraTimeOnABucketKeyIsRefused) {
  Key key{std::to_string(kNowNs + 5 * kNanosPerSecond), kNowMs + 5'000, true};
  const auto outcome = bucket::Decide(PlainLimits(10, 60'000), key.View(), Operation::kTake, 1,
                                      kNowMs, Detail::kReply);
  EXPECT_EQ(outcome.error, Error::kForeignTat);
}

TEST(GcraPolicy, ATimeInThePastAsksForTheExpiryBeforeDeciding) {
  const auto limits = *GcraLimitsOf(PlainLimits(10, 10'000));
  const StoredValue stored{true, "5", kExpiryUnread};
  const auto outcome = gcra::Decide(limits, stored, Operation::kTake, 1, kNowNs, Detail::kReply,
                                    Error::kGcraInvalidStored);
  EXPECT_TRUE(outcome.needs_expiry);
  const StoredValue with_expiry{true, "5", kNowMs + 1'000};
  EXPECT_EQ(gcra::Decide(limits, with_expiry, Operation::kTake, 1, kNowNs, Detail::kReply,
                         Error::kGcraInvalidStored)
                .error,
            Error::kGcraInvalidStored);
}

TEST(GcraPolicy, AnAllowedTakeShowsWhatWasThereBeforeAsUnchanged) {
  const auto limits = *GcraLimitsOf(PlainLimits(10, 10'000));
  Key key;
  const auto first = gcra::Decide(limits, key.View(), Operation::kTake, 4, kNowNs, Detail::kFull,
                                  Error::kGcraInvalidStored);
  EXPECT_TRUE(first.allowed);
  EXPECT_EQ(first.committed.remaining, 6);
  EXPECT_EQ(first.unchanged.remaining, 10);
  EXPECT_EQ(first.unchanged.reset_after_ms, 0);
  EXPECT_EQ(first.committed.reset_after_ms, 4'000);
  EXPECT_EQ(first.quota, 10);
  EXPECT_EQ(first.window_s, 10);
}

TEST(GcraPolicy, AGiveTakesBackWhatATakeTookAndDeletesAnEmptyLimitsKey) {
  const auto limits = *GcraLimitsOf(PlainLimits(10, 10'000));
  Key key;
  key.Apply(gcra::Decide(limits, key.View(), Operation::kTake, 2, kNowNs, Detail::kReply,
                         Error::kGcraInvalidStored));
  const auto give = gcra::Decide(limits, key.View(), Operation::kGive, 2, kNowNs, Detail::kReply,
                                 Error::kGcraInvalidStored);
  EXPECT_EQ(give.write, KeyWrite::kDelete);
  EXPECT_EQ(give.refunded, 2);
  EXPECT_EQ(give.reply, 10);
}

TEST(WindowPolicy, AGiveLowersTheCurrentWindowsCountAndNeverBelowZero) {
  const WindowLimits limits{10, 60'000};
  Key key;
  key.Apply(window::Decide(limits, key.View(), Operation::kTake, 4, kNowMs, Detail::kReply));
  const auto give = window::Decide(limits, key.View(), Operation::kGive, 9, kNowMs, Detail::kFull);
  EXPECT_EQ(give.refunded, 4);
  EXPECT_EQ(give.reply, 10);
  key.Apply(give);
  const auto again =
      window::Decide(limits, key.View(), Operation::kGive, 1, kNowMs, Detail::kReply);
  EXPECT_EQ(again.refunded, 0);
  EXPECT_EQ(again.write, KeyWrite::kNothing);
}

TEST(WindowPolicy, AnInvalidStateIsRefused) {
  const auto outcome = window::Decide({10, 60'000}, Key{"x", kNoExpiry, true}.View(),
                                      Operation::kTake, 1, kNowMs, Detail::kReply);
  EXPECT_EQ(outcome.error, Error::kInvalidWindow);
}

TEST(QuotaPolicy, AGiveLowersTheCountKeepingTheResetAndNeverBelowZero) {
  const QuotaLimits limits{100, CalendarUnit::kDay};
  const auto period = *PeriodAt(CalendarUnit::kDay, kNowMs);
  Key key;
  key.Apply(
      quota::Decide(limits, period, key.View(), Operation::kTake, 30, kNowMs, Detail::kReply));
  EXPECT_EQ(key.expire_at_ms, period.end_ms);
  const auto give =
      quota::Decide(limits, period, key.View(), Operation::kGive, 50, kNowMs, Detail::kFull);
  EXPECT_EQ(give.refunded, 30);
  EXPECT_EQ(give.Text(), "0");
  EXPECT_EQ(give.expire_at_ms, period.end_ms);
  EXPECT_EQ(give.reply, 100);
  EXPECT_EQ(give.window_s, 86'400);
}

TEST(QuotaPolicy, ARefusedTakeWaitsForTheResetOrNeverAboveTheLimit) {
  const QuotaLimits limits{10, CalendarUnit::kHour};
  const auto period = *PeriodAt(CalendarUnit::kHour, kNowMs);
  const Key key{"10", period.end_ms, true};
  const auto refused =
      quota::Decide(limits, period, key.View(), Operation::kTake, 1, kNowMs, Detail::kFull);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after_ms, period.end_ms - kNowMs);
  const auto never =
      quota::Decide(limits, period, key.View(), Operation::kTake, 11, kNowMs, Detail::kFull);
  EXPECT_EQ(never.retry_after_ms, kNever);
}

}  // namespace
}  // namespace shield
