// Counters and the cluster-bus messages of SHIELD.stats CLUSTER.
#include "core/stats.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace shield {
namespace {

TEST(Counters, SaturateInsteadOfWrappingAround) {
  Counters counters;
  for (int i = 0; i < 3; ++i) counters.Add(Counter::kTokensAbsorbed, INT64_MAX);
  EXPECT_EQ(counters.Get(Counter::kTokensAbsorbed), kCounterMax);
  counters.Add(Counter::kTokensAbsorbed);
  EXPECT_EQ(counters.Get(Counter::kTokensAbsorbed), kCounterMax);
}

TEST(Counters, SumOfNodesAddsEveryField) {
  Counters a;
  Counters b;
  a.Add(Counter::kCalls, 3);
  b.Add(Counter::kCalls, 4);
  b.Add(Counter::kDenied);
  a.AddAll(b);
  EXPECT_EQ(a.Get(Counter::kCalls), 7u);
  EXPECT_EQ(a.Get(Counter::kDenied), 1u);
}

TEST(Counters, EveryCounterHasADistinctName) {
  for (std::size_t i = 0; i < kCounterCount; ++i) {
    EXPECT_FALSE(kCounterNames[i].empty());
    for (std::size_t j = i + 1; j < kCounterCount; ++j)
      EXPECT_NE(kCounterNames[i], kCounterNames[j]);
  }
}

TEST(StatsMessages, ReplyRoundTripsEveryCounter) {
  Counters counters;
  for (std::size_t i = 0; i < kCounterCount; ++i) {
    counters.Add(static_cast<Counter>(i), (uint64_t{1} << (i * 3 % 60)) + i);
  }
  uint8_t buffer[kStatsReplySize];
  EncodeStatsReply(0x0102030405060708, counters, std::span<uint8_t, kStatsReplySize>(buffer));
  const auto decoded = DecodeStatsReply(buffer);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->request_id, 0x0102030405060708u);
  EXPECT_EQ(decoded->counters.values, counters.values);
}

TEST(StatsMessages, MessagesOfAnotherSizeAreIgnored) {
  const std::vector<uint8_t> short_reply(kStatsReplySize - 1, 0);
  EXPECT_FALSE(DecodeStatsReply(short_reply).has_value());
  const std::vector<uint8_t> long_request(kStatsRequestSize + 1, 0);
  EXPECT_FALSE(DecodeStatsRequest(long_request).has_value());
  uint8_t request[kStatsRequestSize];
  EncodeStatsRequest(42, std::span<uint8_t, kStatsRequestSize>(request));
  EXPECT_EQ(DecodeStatsRequest(request), 42u);
}

}  // namespace
}  // namespace shield
