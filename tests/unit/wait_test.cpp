// WAIT's plan (core/wait/wait.hpp) against an exact queue model: waiters served in arrival order,
// each at the first instant its tokens are there, found by trying every millisecond (a bucket) or
// by the instant before (GCRA).
#include "core/wait/wait.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>

#include "core/bucket/bucket_policy.hpp"

namespace shield {
namespace {

constexpr int64_t kNowMs = 1'700'000'000'000;
constexpr int64_t kNowNs = kNowMs * kNanosPerMilli;

wait::Request BucketRequest(const BucketLimits& limits, int64_t tokens) {
  return {.algorithm = wait::Algorithm::kBucket, .bucket = limits, .gcra = {}, .tokens = tokens};
}

// The model: the first whole millisecond at or after `from_ns` at which the take is allowed.
int64_t FirstAllowedMs(const wait::Request& request, const StoredValue& stored, int64_t from_ns) {
  const int64_t limit_ms = CeilDiv(from_ns, kNanosPerMilli) + 10 * request.bucket.window_ms + 10;
  for (int64_t ms = CeilDiv(from_ns, kNanosPerMilli); ms <= limit_ms; ++ms) {
    const Outcome outcome =
        wait::DecideAt(request, stored, Operation::kTake, ms * kNanosPerMilli, Detail::kReply);
    if (outcome.allowed) return ms;
  }
  return -1;
}

TEST(WaitPlan, BucketWaitersAreGrantedInOrderAtTheFirstMillisecondTheirTokensAreThere) {
  std::mt19937_64 random(17);
  for (int round = 0; round < 300; ++round) {
    const int64_t capacity = std::uniform_int_distribution<int64_t>(1, 7)(random);
    const int64_t period_ms = std::uniform_int_distribution<int64_t>(1, 3)(random) * 1000;
    const int64_t max_tokens = std::uniform_int_distribution<int64_t>(1, 9)(random);
    const BucketLimits limits = *BurstLimits(capacity, period_ms, max_tokens);
    wait::Snapshot key;  // a missing key: a full bucket
    int64_t at_ns = kNowNs + std::uniform_int_distribution<int64_t>(0, 999)(random) * 1000;
    for (int waiter = 0; waiter < 8; ++waiter) {
      const int64_t tokens = std::uniform_int_distribution<int64_t>(1, max_tokens)(random);
      const wait::Request request = BucketRequest(limits, tokens);
      const wait::Grant grant = wait::EarliestGrant(request, key.View(), at_ns);
      ASSERT_EQ(grant.error, Error::kNone);
      ASSERT_FALSE(grant.never);
      ASSERT_EQ(grant.at_ns, FirstAllowedMs(request, key.View(), at_ns) * kNanosPerMilli)
          << "round " << round << " waiter " << waiter;
      ASSERT_TRUE(grant.outcome.allowed);
      key.Apply(grant.outcome);
      at_ns = grant.at_ns;
    }
  }
}

TEST(WaitPlan, ABucketRequestForMoreThanItHoldsIsNeverGranted) {
  const wait::Request request = BucketRequest(PlainLimits(5, 1000), 6);
  const wait::Grant grant = wait::EarliestGrant(request, wait::Snapshot{}.View(), kNowNs);
  EXPECT_TRUE(grant.never);
}

TEST(WaitPlan, GcraWaitersAreGrantedAtTheExactNanosecondAndNotOneBefore) {
  std::mt19937_64 random(9);
  for (int round = 0; round < 300; ++round) {
    const int64_t capacity = std::uniform_int_distribution<int64_t>(1, 50)(random);
    const int64_t period_s = std::uniform_int_distribution<int64_t>(1, 7)(random);
    const int64_t max_tokens = std::uniform_int_distribution<int64_t>(1, 9)(random);
    const auto bucket = BurstLimits(capacity, period_s * 1000, max_tokens);
    const auto limits = GcraLimitsOf(*bucket);
    ASSERT_TRUE(limits.has_value());
    wait::Snapshot key;
    int64_t at_ns = kNowNs + std::uniform_int_distribution<int64_t>(0, 999'999)(random);
    for (int waiter = 0; waiter < 8; ++waiter) {
      const int64_t tokens = std::uniform_int_distribution<int64_t>(1, max_tokens)(random);
      const wait::Request request{
          .algorithm = wait::Algorithm::kGcra, .bucket = {}, .gcra = *limits, .tokens = tokens};
      const wait::Grant grant = wait::EarliestGrant(request, key.View(), at_ns);
      ASSERT_EQ(grant.error, Error::kNone);
      ASSERT_FALSE(grant.never);
      ASSERT_GE(grant.at_ns, at_ns);
      ASSERT_TRUE(grant.outcome.allowed);
      if (grant.at_ns > at_ns) {
        const Outcome before =
            wait::DecideAt(request, key.View(), Operation::kTake, grant.at_ns - 1, Detail::kReply);
        ASSERT_FALSE(before.allowed) << "round " << round << " waiter " << waiter;
      }
      key.Apply(grant.outcome);
      at_ns = grant.at_ns;
    }
  }
}

TEST(WaitPlan, AKeyTheServerExpiredIsTheSnapshotThatExpired) {
  wait::Snapshot planned;
  planned.exists = true;
  planned.len = 1;
  planned.text[0] = '0';
  planned.expire_at_ms = kNowMs;
  const wait::Snapshot missing;
  EXPECT_TRUE(planned.SameAs(missing, kNowMs));
  EXPECT_FALSE(planned.SameAs(missing, kNowMs - 1));
  EXPECT_TRUE(planned.SameAs(planned, kNowMs - 1));
  wait::Snapshot other = planned;
  other.text[0] = '1';
  EXPECT_FALSE(planned.SameAs(other, kNowMs));
}

}  // namespace
}  // namespace shield
