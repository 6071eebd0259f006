// Counters and the cluster-bus messages of SHIELD.stats CLUSTER.
#include "core/stats/stats.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "case_name.hpp"

namespace shield {
namespace {

TEST(Counters, SaturateInsteadOfWrappingAround) {
  Counters counters;
  for (int i = 0; i < 3; ++i) counters.Add(Counter::kTokensAbsorbed, INT64_MAX);
  EXPECT_EQ(counters.Get(Counter::kTokensAbsorbed), kCounterMax);
  counters.Add(Counter::kTokensAbsorbed);
  EXPECT_EQ(counters.Get(Counter::kTokensAbsorbed), kCounterMax);
}

TEST(Counters, SumOfNodesAddsEveryFieldAndEveryCommandsCalls) {
  Counters a;
  Counters b;
  a.Add(Counter::kCalls, 3);
  b.Add(Counter::kCalls, 4);
  b.Add(Counter::kDenied);
  a.CountCall(2);
  b.CountCall(2);
  b.CountCall(kMaxCommands - 1);
  a.AddAll(b);
  EXPECT_EQ(a.Get(Counter::kCalls), 10u);
  EXPECT_EQ(a.Get(Counter::kDenied), 1u);
  EXPECT_EQ(a.command_calls[2], 2u);
  EXPECT_EQ(a.command_calls[kMaxCommands - 1], 1u);
}

TEST(Counters, EveryCounterHasADistinctName) {
  for (std::size_t i = 0; i < kCounterCount; ++i) {
    EXPECT_FALSE(kCounterNames[i].empty());
    for (std::size_t j = i + 1; j < kCounterCount; ++j)
      EXPECT_NE(kCounterNames[i], kCounterNames[j]);
  }
}

TEST(Counters, ACallCountsInCallsAndInItsCommandsOwnCounter) {
  Counters counters;
  counters.CountCall(3);
  counters.CountCall(3);
  counters.CountCall(0);
  EXPECT_EQ(counters.Get(Counter::kCalls), 3u);
  EXPECT_EQ(counters.command_calls[3], 2u);
  EXPECT_EQ(counters.command_calls[0], 1u);
}

TEST(Counters, AResetZeroesEveryCounterThenCountsTheCallThatMadeIt) {
  Counters counters;
  counters.CountCall(1);
  counters.Add(Counter::kDenied, 5);
  counters.CountCall(7);  // the reset's own call
  counters.ResetCountingThisCall();
  Counters expected;
  expected.CountCall(7);
  EXPECT_EQ(counters.values, expected.values);
  EXPECT_EQ(counters.command_calls, expected.command_calls);
  EXPECT_EQ(counters.Get(Counter::kCalls), 1u);
}

// Commands' counters as a command table would name them.
constexpr std::string_view kCommands[] = {"absorb_calls", "inspect_calls", "new_calls"};
const CounterFields kFields(kCommands);

TEST(CounterFields, ListTheTotalsThenEachCommandInTableOrder) {
  ASSERT_EQ(kFields.size(), kCounterCount + 3);
  EXPECT_EQ(kFields.Name(0), "calls");
  EXPECT_EQ(kFields.Name(kCounterCount), "absorb_calls");
  EXPECT_EQ(kFields.Name(kCounterCount + 2), "new_calls");
  EXPECT_EQ(kFields.Find("new_calls"), kCounterCount + 2);
  EXPECT_EQ(kFields.Find("wait_time_ms"), static_cast<std::size_t>(Counter::kWaitTimeMs));
  EXPECT_EQ(kFields.Find("gone_calls"), std::nullopt);
}

// Counters with a distinct value in every field of kFields.
Counters Distinct() {
  Counters counters;
  for (std::size_t field = 0; field < kFields.size(); ++field)
    kFields.Slot(counters, field) = (uint64_t{1} << (field * 3 % 60)) + field;
  return counters;
}

std::vector<uint8_t> Encode(uint64_t request_id, const Counters& counters,
                            const CounterFields& fields) {
  std::vector<uint8_t> buffer(kMaxStatsReplySize);
  const std::size_t size =
      EncodeStatsReply(request_id, counters, fields,
                       std::span<uint8_t, kMaxStatsReplySize>(buffer.data(), kMaxStatsReplySize));
  buffer.resize(size);
  return buffer;
}

TEST(StatsMessages, ANamedReplyRoundTripsEveryField) {
  const Counters counters = Distinct();
  const uint64_t id = 0x0102030405060708 | kNamedReplyBit;
  const auto decoded = DecodeStatsReply(Encode(id, counters, kFields), kFields);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->request_id, id);
  EXPECT_EQ(decoded->counters.values, counters.values);
  EXPECT_EQ(decoded->counters.command_calls, counters.command_calls);
}

TEST(StatsMessages, AReplyFromANodeWithMoreCountersKeepsTheOnesThisNodeKnowsByName) {
  // The newer node has a command this one lacks, and lists its commands in another order.
  constexpr std::string_view kNewer[] = {"brand_new_calls", "inspect_calls", "absorb_calls"};
  const CounterFields newer(kNewer);
  Counters sent;
  newer.Slot(sent, *newer.Find("absorb_calls")) = 11;
  newer.Slot(sent, *newer.Find("inspect_calls")) = 22;
  newer.Slot(sent, *newer.Find("brand_new_calls")) = 33;
  sent.Add(Counter::kDenied, 44);
  constexpr std::string_view kOlder[] = {"absorb_calls", "inspect_calls"};
  const CounterFields older(kOlder);
  const auto decoded = DecodeStatsReply(Encode(kNamedReplyBit | 9, sent, newer), older);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->counters.command_calls[0], 11u);
  EXPECT_EQ(decoded->counters.command_calls[1], 22u);
  EXPECT_EQ(decoded->counters.command_calls[2], 0u);
  EXPECT_EQ(decoded->counters.Get(Counter::kDenied), 44u);
}

TEST(StatsMessages, AReplyFromANodeWithFewerCountersLeavesTheOnesItLacksAtZero) {
  constexpr std::string_view kOlder[] = {"absorb_calls"};
  const CounterFields older(kOlder);
  Counters sent;
  sent.CountCall(0);
  const auto decoded = DecodeStatsReply(Encode(kNamedReplyBit | 9, sent, older), kFields);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->counters.Get(Counter::kCalls), 1u);
  EXPECT_EQ(decoded->counters.command_calls[0], 1u);
  EXPECT_EQ(decoded->counters.command_calls[1], 0u);
  EXPECT_EQ(decoded->counters.command_calls[2], 0u);
}

TEST(StatsMessages, ARequestFromShield20GetsItsOwnEighteenCountersByPosition) {
  const Counters counters = Distinct();
  const std::vector<uint8_t> reply = Encode(42, counters, kFields);  // no kNamedReplyBit
  ASSERT_EQ(reply.size(), kShield20ReplySize);
  EXPECT_EQ(reply[0], 42);
  for (std::size_t i = 0; i < kShield20Fields.size(); ++i) {
    uint64_t value = 0;
    for (std::size_t b = 0; b < 8; ++b)
      value |= static_cast<uint64_t>(reply[8 + 8 * i + b]) << (8 * b);
    const auto field = kFields.Find(kShield20Fields[i]);
    EXPECT_EQ(value, field ? kFields.Value(counters, *field) : 0) << kShield20Fields[i];
  }
}

TEST(StatsMessages, AReplyInShield20sFormIsReadByItsCountersNames) {
  std::vector<uint8_t> reply(kShield20ReplySize, 0);
  reply[0] = 7;
  for (std::size_t i = 0; i < kShield20Fields.size(); ++i)
    reply[8 + 8 * i] = static_cast<uint8_t>(i + 1);
  const auto decoded = DecodeStatsReply(reply, kFields);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->request_id, 7u);
  EXPECT_EQ(decoded->counters.Get(Counter::kCalls), 1u);
  EXPECT_EQ(decoded->counters.Get(Counter::kPropagationErrors), 18u);
  EXPECT_EQ(decoded->counters.command_calls[0], 8u);  // absorb_calls, 2.0's eighth
  EXPECT_EQ(decoded->counters.command_calls[1], 9u);  // inspect_calls
  EXPECT_EQ(decoded->counters.command_calls[2], 0u);  // new_calls: 2.0 has none
  EXPECT_EQ(decoded->counters.Get(Counter::kWaited), 0u);
}

TEST(StatsMessages, EveryCutOfANamedReplyIsIgnoredAndOnlyTheWholeOneIsRead) {
  const std::vector<uint8_t> named = Encode(kNamedReplyBit | 1, Distinct(), kFields);
  for (std::size_t len = 0; len < named.size(); ++len) {
    if (len == kShield20ReplySize) continue;  // that length is 2.0's form, read by position
    EXPECT_FALSE(DecodeStatsReply({named.data(), len}, kFields).has_value()) << len;
  }
  EXPECT_TRUE(DecodeStatsReply(named, kFields).has_value());
}

TEST(StatsMessages, MessagesOfNeitherFormAreIgnored) {
  const std::vector<uint8_t> named = Encode(kNamedReplyBit | 1, Distinct(), kFields);
  std::vector<uint8_t> truncated(named.begin(), named.end() - 1);
  EXPECT_FALSE(DecodeStatsReply(truncated, kFields).has_value());
  std::vector<uint8_t> trailing = named;
  trailing.push_back(0);
  EXPECT_FALSE(DecodeStatsReply(trailing, kFields).has_value());
  std::vector<uint8_t> other_magic = named;
  other_magic[8] ^= 1;
  EXPECT_FALSE(DecodeStatsReply(other_magic, kFields).has_value());
  EXPECT_FALSE(
      DecodeStatsReply(std::vector<uint8_t>(kShield20ReplySize - 8, 0), kFields).has_value());
  EXPECT_FALSE(DecodeStatsReply(std::vector<uint8_t>(8, 0), kFields).has_value());
  EXPECT_FALSE(
      DecodeStatsReply(std::vector<uint8_t>(kMaxStatsReplySize + 8, 0), kFields).has_value());
  const std::vector<uint8_t> long_request(kStatsRequestSize + 1, 0);
  EXPECT_FALSE(DecodeStatsRequest(long_request).has_value());
  uint8_t request[kStatsRequestSize];
  EncodeStatsRequest(42, std::span<uint8_t, kStatsRequestSize>(request));
  EXPECT_EQ(DecodeStatsRequest(request), 42u);
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
                         testing_support::CaseName());

}  // namespace
}  // namespace shield
