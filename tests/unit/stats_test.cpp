// Counters and the cluster-bus messages of SHIELD.stats CLUSTER.
#include "core/stats/stats.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <span>
#include <string_view>
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

TEST(StatsMessages, MessagesThatAreNoWholeCountersAreIgnored) {
  const std::vector<uint8_t> short_reply(kStatsReplySize - 1, 0);
  EXPECT_FALSE(DecodeStatsReply(short_reply).has_value());
  EXPECT_FALSE(DecodeStatsReply(std::vector<uint8_t>(8, 0)).has_value());  // an id, no counter
  EXPECT_FALSE(DecodeStatsReply(std::vector<uint8_t>(kMaxStatsReplySize + 8, 0)).has_value());
  const std::vector<uint8_t> long_request(kStatsRequestSize + 1, 0);
  EXPECT_FALSE(DecodeStatsRequest(long_request).has_value());
  uint8_t request[kStatsRequestSize];
  EncodeStatsRequest(42, std::span<uint8_t, kStatsRequestSize>(request));
  EXPECT_EQ(DecodeStatsRequest(request), 42u);
}

// A reply of `count` counters whose values are 1, 2, 3, ... after the request id 7.
std::vector<uint8_t> ReplyWithCounters(std::size_t count) {
  std::vector<uint8_t> message(8 + 8 * count, 0);
  message[0] = 7;
  for (std::size_t i = 0; i < count; ++i) message[8 + 8 * i] = static_cast<uint8_t>(i + 1);
  return message;
}

TEST(StatsMessages, AReplyFromAnOlderNodeWithFewerCountersLeavesTheNewOnesAtZero) {
  const auto decoded = DecodeStatsReply(ReplyWithCounters(kCounterCount - 1));
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->request_id, 7u);
  for (std::size_t i = 0; i + 1 < kCounterCount; ++i) EXPECT_EQ(decoded->counters.values[i], i + 1);
  EXPECT_EQ(decoded->counters.values[kCounterCount - 1], 0u);
}

TEST(StatsMessages, AReplyFromANewerNodeWithMoreCountersKeepsTheOnesThisNodeKnows) {
  const auto decoded = DecodeStatsReply(ReplyWithCounters(kCounterCount + 5));
  ASSERT_TRUE(decoded.has_value());
  for (std::size_t i = 0; i < kCounterCount; ++i) EXPECT_EQ(decoded->counters.values[i], i + 1);
}

struct StatsCase {
  const char* name;
  std::vector<std::string_view> args;
  Error error;
  StatsMode mode;
  int64_t timeout_ms;
};

const StatsCase kStatsCases[] = {
    {"NoArgumentsIsThisNode", {}, Error::kNone, StatsMode::kNode, 0},
    {"ResetInAnyCaseNamesStatsReset", {"reset"}, Error::kStatsResetMoved, StatsMode::kNode, 0},
    {"ClusterWaitsOneSecondByDefault", {"CLUSTER"}, Error::kNone, StatsMode::kCluster, 1000},
    {"ClusterWithTimeout", {"cluster", "timeout", "250"}, Error::kNone, StatsMode::kCluster, 250},
    {"ZeroTimeout", {"CLUSTER", "TIMEOUT", "0"}, Error::kTimeout, StatsMode::kNode, 0},
    {"TimeoutPastOneMinute", {"CLUSTER", "TIMEOUT", "60001"}, Error::kTimeout, StatsMode::kNode, 0},
    {"TimeoutWithoutValue", {"CLUSTER", "TIMEOUT"}, Error::kSyntax, StatsMode::kNode, 0},
    {"UnknownSubcommand", {"everything"}, Error::kSyntax, StatsMode::kNode, 0},
    {"ResetWithAnArgumentNamesStatsReset",
     {"RESET", "now"},
     Error::kStatsResetMoved,
     StatsMode::kNode,
     0},
};

void PrintTo(const StatsCase& c, std::ostream* os) {
  *os << c.name;
}

class StatsTable : public testing::TestWithParam<StatsCase> {};

TEST_P(StatsTable, ParsesTheModeAndTimeout) {
  const auto& c = GetParam();
  const auto args = ParseStatsArgs(c.args);
  EXPECT_EQ(args.error, c.error);
  if (c.error == Error::kNone) {
    EXPECT_EQ(args.mode, c.mode);
    EXPECT_EQ(args.timeout_ms, c.timeout_ms);
  }
}

INSTANTIATE_TEST_SUITE_P(Stats, StatsTable, testing::ValuesIn(kStatsCases),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

}  // namespace
}  // namespace shield
