#include "core/command.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace shield {
namespace {

struct ArgsCase {
  const char* capacity;
  const char* period;
  std::optional<const char*> tokens;
  Error error;
};

// Each argument is checked in the order capacity, period, tokens; the period's size comes last.
const ArgsCase kArgsCases[] = {
    {"10", "60", std::nullopt, Error::kNone},
    {"10", "60", "3", Error::kNone},
    {"0", "60", std::nullopt, Error::kCapacity},
    {"-1", "60", std::nullopt, Error::kCapacity},
    {"abc", "60", std::nullopt, Error::kCapacity},
    {"1.5", "60", std::nullopt, Error::kCapacity},
    {"+5", "60", std::nullopt, Error::kCapacity},
    {"05", "60", std::nullopt, Error::kCapacity},
    {"9223372036854775808", "60", std::nullopt, Error::kCapacity},
    {"0", "0", "0", Error::kCapacity},
    {"10", "0", std::nullopt, Error::kPeriod},
    {"10", "-60", std::nullopt, Error::kPeriod},
    {"10", "", std::nullopt, Error::kPeriod},
    {"10", "0", "0", Error::kPeriod},
    {"10", "60", "0", Error::kTokens},
    {"10", "60", "-3", Error::kTokens},
    {"10", "60", "x", Error::kTokens},
    {"10", "9223372036854775", std::nullopt, Error::kNone},
    {"10", "9223372036854776", std::nullopt, Error::kPeriodTooLarge},
    {"10", "9223372036854775807", std::nullopt, Error::kPeriodTooLarge},
    {"10", "9223372036854775807", "0", Error::kTokens},
};

class ArgsTable : public testing::TestWithParam<ArgsCase> {};

TEST_P(ArgsTable, ReportsTheFirstFailingArgument) {
  const auto& c = GetParam();
  const auto args = ParseAbsorbArgs(
      c.capacity, c.period, c.tokens ? std::optional<std::string_view>(*c.tokens) : std::nullopt);
  EXPECT_EQ(args.error, c.error);
}

INSTANTIATE_TEST_SUITE_P(Cases, ArgsTable, testing::ValuesIn(kArgsCases));

TEST(ParseAbsorbArgs, TokensDefaultToOne) {
  const auto args = ParseAbsorbArgs("30", "60", std::nullopt);
  EXPECT_EQ(args.tokens, 1);
  EXPECT_EQ(args.limits.capacity, 30);
  EXPECT_EQ(args.limits.period_ms, 60000);
}

TEST(ParseAbsorbArgs, LargestPeriodConvertsToMillisecondsExactly) {
  const auto args = ParseAbsorbArgs("1", "9223372036854775", "1");
  EXPECT_EQ(args.limits.period_ms, 9223372036854775000);
}

TEST(ErrorReply, UsesTheOriginalModulesWording) {
  EXPECT_EQ(ErrorReply(Error::kCapacity), "ERR capacity must be positive");
  EXPECT_EQ(ErrorReply(Error::kPeriod), "ERR period must be positive");
  EXPECT_EQ(ErrorReply(Error::kTokens), "ERR tokens must be positive");
  EXPECT_EQ(ErrorReply(Error::kPeriodTooLarge), "ERR period value too large");
  EXPECT_EQ(ErrorReply(Error::kInvalidStored), "ERR invalid token count in Redis");
  EXPECT_EQ(ErrorReply(Error::kWrongType),
            "WRONGTYPE Operation against a key holding the wrong kind of value");
}

TEST(ReplyFor, DeniedCallsReplyMinusOne) {
  EXPECT_EQ(ReplyFor({false, 0, 0}), -1);
  EXPECT_EQ(ReplyFor({true, 0, 5}), 0);
  EXPECT_EQ(ReplyFor({true, 17, 5}), 17);
}

}  // namespace
}  // namespace shield
