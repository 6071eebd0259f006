#include "core/bucket/bucket_args.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "case_name.hpp"

namespace shield {
namespace {

struct ArgsCase {
  const char* name;
  std::vector<std::string_view> args;  // after the key
  Error error;
};

void PrintTo(const ArgsCase& c, std::ostream* os) {
  *os << c.name;
}

// Structure first (arity, repeated options), then each value in the order capacity, period,
// tokens, burst; the period's size and the time to fill a BURST bucket come last.
const ArgsCase kArgsCases[] = {
    {"CapacityAndPeriodAreEnough", {"10", "60"}, Error::kNone},
    {"TokensAreOptional", {"10", "60", "3"}, Error::kNone},
    {"OneArgumentIsTooFew", {"10"}, Error::kArity},
    {"AnExtraWordIsAnArityError", {"10", "60", "1", "extra"}, Error::kArity},
    {"TwoTokenCountsAreAnArityError", {"10", "60", "1", "2"}, Error::kArity},
    {"BurstWithoutAValueIsAnArityError", {"10", "60", "BURST"}, Error::kArity},
    {"VerboseTwiceIsASyntaxError", {"10", "60", "VERBOSE", "verbose"}, Error::kSyntax},
    {"BurstTwiceIsASyntaxError", {"10", "60", "BURST", "5", "burst", "6"}, Error::kSyntax},
    {"ZeroCapacity", {"0", "60"}, Error::kCapacity},
    {"NegativeCapacity", {"-1", "60"}, Error::kCapacity},
    {"WordCapacity", {"abc", "60"}, Error::kCapacity},
    {"DecimalCapacity", {"1.5", "60"}, Error::kCapacity},
    {"PlusSignedCapacity", {"+5", "60"}, Error::kCapacity},
    {"ZeroPaddedCapacity", {"05", "60"}, Error::kCapacity},
    {"CapacityPastInt64", {"9223372036854775808", "60"}, Error::kCapacity},
    {"CapacityIsCheckedFirst", {"0", "0", "0"}, Error::kCapacity},
    {"ZeroPeriod", {"10", "0"}, Error::kPeriod},
    {"NegativePeriod", {"10", "-60"}, Error::kPeriod},
    {"EmptyPeriod", {"10", ""}, Error::kPeriod},
    {"PeriodBeforeTokens", {"10", "0", "0"}, Error::kPeriod},
    {"ZeroTokens", {"10", "60", "0"}, Error::kTokens},
    {"NegativeTokens", {"10", "60", "-3"}, Error::kTokens},
    {"WordTokens", {"10", "60", "x"}, Error::kTokens},
    {"ZeroBurst", {"10", "60", "BURST", "0"}, Error::kBurst},
    {"WordBurst", {"10", "60", "1", "BURST", "many"}, Error::kBurst},
    {"TokensBeforeBurst", {"10", "60", "0", "BURST", "0"}, Error::kTokens},
    {"LargestPeriodFits", {"10", "9223372036854775"}, Error::kNone},
    {"PeriodPastInt64Milliseconds", {"10", "9223372036854776"}, Error::kPeriodTooLarge},
    {"LargestInt64Period", {"10", "9223372036854775807"}, Error::kPeriodTooLarge},
    {"TokensBeforeThePeriodsSize", {"10", "9223372036854775807", "0"}, Error::kTokens},
    {"BurstWhoseFillTimePassesInt64",
     {"1", "9223372036854775", "BURST", "2"},
     Error::kBurstTooLarge},
    {"SmallBurstOfAHugePeriodFits", {"1000", "9223372036854775", "BURST", "1"}, Error::kNone},
    {"OptionsInAnyOrderAndCase", {"10", "60", "2", "verbose", "Burst", "20"}, Error::kNone},
    {"VerboseWithoutTokens", {"10", "60", "VERBOSE"}, Error::kNone},
};

class ArgsTable : public testing::TestWithParam<ArgsCase> {};

TEST_P(ArgsTable, ReportsTheFirstFailingArgument) {
  const auto& c = GetParam();
  const auto args = ParseBucketArgs(c.args, {.tokens_required = false, .verbose = true});
  EXPECT_EQ(args.error, c.error);
}

INSTANTIATE_TEST_SUITE_P(Absorb, ArgsTable, testing::ValuesIn(kArgsCases),
                         testing_support::CaseName());

TEST(ParseBucketArgs, TokensDefaultToOneAndTheBucketHoldsItsCapacity) {
  const std::string_view words[] = {"30", "60"};
  const auto args = ParseBucketArgs(words, {false, true});
  EXPECT_EQ(args.tokens, 1);
  EXPECT_EQ(args.limits.capacity, 30);
  EXPECT_EQ(args.limits.period_ms, 60000);
  EXPECT_EQ(args.limits.max_tokens, 30);
  EXPECT_EQ(args.limits.window_ms, 60000);
  EXPECT_FALSE(args.verbose);
  EXPECT_FALSE(args.has_burst);
}

TEST(ParseBucketArgs, LargestPeriodConvertsToMillisecondsExactly) {
  const std::string_view words[] = {"1", "9223372036854775", "1"};
  const auto args = ParseBucketArgs(words, {false, true});
  EXPECT_EQ(args.limits.period_ms, 9223372036854775000);
}

TEST(ParseBucketArgs, BurstSetsTheMaximumAndTheTimeToFillIt) {
  const std::string_view words[] = {"3", "60", "BURST", "10", "VERBOSE"};
  const auto args = ParseBucketArgs(words, {false, true});
  ASSERT_EQ(args.error, Error::kNone);
  EXPECT_TRUE(args.verbose);
  EXPECT_TRUE(args.has_burst);
  EXPECT_EQ(args.limits.max_tokens, 10);
  EXPECT_EQ(args.limits.window_ms, 200'000);  // 10 tokens at 3 per 60 s
}

TEST(ParseBucketArgs, RefundTakesTheWordVerboseForItsTokens) {
  const std::string_view words[] = {"10", "60", "VERBOSE"};
  EXPECT_EQ(ParseBucketArgs(words, {.tokens_required = true, .verbose = false}).error,
            Error::kTokens);
  const std::string_view missing[] = {"10", "60"};
  EXPECT_EQ(ParseBucketArgs(missing, {.tokens_required = true, .verbose = false}).error,
            Error::kArity);
}

TEST(ParseMultiBucket, BurstFollowsTheCapacityAfterAColon) {
  const auto args = ParseMultiBucket("5:7", "60", "2");
  ASSERT_EQ(args.error, Error::kNone);
  EXPECT_EQ(args.limits.capacity, 5);
  EXPECT_EQ(args.limits.max_tokens, 7);
  EXPECT_EQ(args.tokens, 2);
  EXPECT_EQ(ParseMultiBucket("5:", "60", "2").error, Error::kBurst);
  EXPECT_EQ(ParseMultiBucket(":7", "60", "2").error, Error::kCapacity);
  EXPECT_EQ(ParseMultiBucket("5:7:9", "60", "2").error, Error::kBurst);
  EXPECT_EQ(ParseMultiBucket("5", "60", "0").error, Error::kTokens);
}

TEST(CheckExpiry, NamesWhatMadeTheWindowTooLong) {
  const std::string_view plain[] = {"10", "9223372036854775"};
  EXPECT_EQ(CheckExpiry(ParseBucketArgs(plain, {false, true}), 1'700'000'000'000),
            Error::kPeriodTooLarge);
  const std::string_view burst[] = {"10", "9223372036854775", "BURST", "10"};
  EXPECT_EQ(CheckExpiry(ParseBucketArgs(burst, {false, true}), 1'700'000'000'000),
            Error::kBurstTooLarge);
  const std::string_view small[] = {"10", "60", "BURST", "100"};
  EXPECT_EQ(CheckExpiry(ParseBucketArgs(small, {false, true}), 1'700'000'000'000), Error::kNone);
}

TEST(HasDuplicate, FindsTwoEqualNamesAnywhereInTheList) {
  std::vector<std::string_view> names = {"d", "a", "c", "b", "a"};
  EXPECT_TRUE(HasDuplicate(names));
  std::vector<std::string_view> distinct = {"d", "a", "c", "b", "ab"};
  EXPECT_FALSE(HasDuplicate(distinct));
  std::vector<std::string_view> one = {"a"};
  EXPECT_FALSE(HasDuplicate(one));
}

TEST(HasDuplicate, TellsApartNamesThatDifferOnlyAfterANul) {
  using std::string_view_literals::operator""sv;
  std::vector<std::string_view> names = {"a\0b"sv, "a\0c"sv};
  EXPECT_FALSE(HasDuplicate(names));
}

TEST(CombineRetryAfterMs, NeverWinsOverAnyWaitAndOtherwiseTheLongestWaitWins) {
  EXPECT_EQ(CombineRetryAfterMs(0, 5988), 5988);
  EXPECT_EQ(CombineRetryAfterMs(5988, 10), 5988);
  EXPECT_EQ(CombineRetryAfterMs(5988, kNever), kNever);
  EXPECT_EQ(CombineRetryAfterMs(kNever, 0), kNever);
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
  EXPECT_EQ(ReplyFor({false, {3, 0}, {3, 0}}), -1);
  EXPECT_EQ(ReplyFor({true, {1, 0}, {0, 0}}), 0);
  EXPECT_EQ(ReplyFor({true, {18, 0}, {17, 0}}), 17);
}

TEST(ErrorReply, NewErrorsSayWhatToFix) {
  EXPECT_EQ(ErrorReply(Error::kBurst), "ERR burst must be positive");
  EXPECT_EQ(ErrorReply(Error::kBurstTooLarge), "ERR burst value too large");
  EXPECT_EQ(ErrorReply(Error::kSyntax), "ERR syntax error");
  EXPECT_EQ(ErrorReply(Error::kDuplicateKey),
            "ERR key appears more than once in SHIELD.absorb_multi");
  EXPECT_EQ(ErrorReply(Error::kArity), "");
}

}  // namespace
}  // namespace shield
