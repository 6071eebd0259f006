// CL.THROTTLE's GCRA on a fake clock: redis-cell's documented examples and test cases as tables,
// rates from one a day to a billion a second, int64 extremes, a clock that goes back, and keys in
// redis-cell's format.
#include "core/gcra/gcra.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "case_name.hpp"
#include "core/common/int_parse.hpp"

namespace shield {
namespace {

constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
constexpr int64_t kInt64Min = std::numeric_limits<int64_t>::min();
constexpr int64_t kSecond = kNanosPerSecond;
constexpr int64_t kMilli = kNanosPerMilli;
constexpr int64_t kStartNs = 1'700'000'000'123'456'000;  // an ordinary unix time, in whole µs

GcraLimits Limits(int64_t max_burst, int64_t count, int64_t period_s) {
  const std::string args[] = {std::to_string(max_burst), std::to_string(count),
                              std::to_string(period_s)};
  const std::string_view views[] = {args[0], args[1], args[2]};
  const ThrottleArgs parsed = ParseThrottleArgs(views);
  EXPECT_EQ(parsed.error, Error::kNone);
  return parsed.limits;
}

// One key as Redis holds it for CL.THROTTLE: the TAT and its expiry in ms; the key is gone once
// the time in ms passes the expiry, as in Redis. Calls reply like CL.THROTTLE.
class FakeCellKey {
 public:
  explicit FakeCellKey(const GcraLimits& limits) : limits_(limits) {}

  ThrottleReply Call(int64_t quantity = 1) { return ThrottleReplyFor(limits_, Decide(quantity)); }

  GcraDecision Decide(int64_t quantity) {
    Expire();
    const GcraDecision decision = Throttle(limits_, tat_, quantity, now_ns);
    if (decision.write == GcraWrite::kStore) {
      tat_ = decision.new_tat_ns;
      expire_at_ms_ = decision.expire_at_ms;
    } else if (decision.write == GcraWrite::kDelete) {
      tat_.reset();
    }
    return decision;
  }

  // As if a client (or redis-cell) had written the key: SET key <tat>, no expiry.
  void Set(uint64_t tat) {
    tat_ = tat;
    expire_at_ms_ = kInt64Max;
  }
  std::optional<uint64_t> tat() {
    Expire();
    return tat_;
  }
  int64_t expire_at_ms() const { return expire_at_ms_; }

  int64_t now_ns = kStartNs;

 private:
  void Expire() {
    if (tat_ && now_ns / kMilli > expire_at_ms_) tat_.reset();
  }

  GcraLimits limits_;
  std::optional<uint64_t> tat_;
  int64_t expire_at_ms_ = kInt64Max;
};

// redis-cell's `remaining`, as its source computes it: (tolerance - ttl) and the interval both
// truncated to microseconds, divided in floating point, truncated; 0 unless tolerance - ttl
// exceeds minus one interval. For comparing with ours, where the interval is at least 1 µs.
int64_t RedisCellRemaining(const GcraLimits& limits, int64_t ttl_ns) {
  const auto interval = static_cast<int64_t>(limits.interval_ns);
  const int64_t next = static_cast<int64_t>(limits.tolerance_ns) - ttl_ns;
  if (next <= -interval) return 0;
  // Whole microseconds first, as redis-cell divides them.
  return static_cast<int64_t>(
      static_cast<double>(next / 1000) /      // NOLINT(bugprone-integer-division)
      static_cast<double>(interval / 1000));  // NOLINT(bugprone-integer-division)
}

// --- argument parsing ---------------------------------------------------------------------------

struct ParseCase {
  const char* name;
  std::vector<std::string_view> args;  // after the key
  Error error;
  std::size_t bad_integer = 0;
};

void PrintTo(const ParseCase& c, std::ostream* os) {
  *os << c.name;
}

const ParseCase kParseCases[] = {
    {"ThreeArgumentsAreEnough", {"15", "30", "60"}, Error::kNone},
    {"QuantityIsOptional", {"15", "30", "60", "1"}, Error::kNone},
    {"TwoArgumentsGetTheUsageLine", {"15", "30"}, Error::kCellUsage},
    {"FiveArgumentsGetTheUsageLine", {"15", "30", "60", "1", "1"}, Error::kCellUsage},
    {"AWordIsNotAnInteger", {"abc", "30", "60"}, Error::kCellInteger, 0},
    {"ADecimalIsNotAnInteger", {"15", "1.5", "60"}, Error::kCellInteger, 1},
    {"AnEmptyPeriodIsNotAnInteger", {"15", "30", ""}, Error::kCellInteger, 2},
    {"ASpaceIsNotPartOfAnInteger", {"15", "30", "60", " 1"}, Error::kCellInteger, 3},
    {"ALoneSignIsNotAnInteger", {"+", "30", "60"}, Error::kCellInteger, 0},
    {"AValuePastInt64IsNotAnInteger", {"9223372036854775808", "30", "60"}, Error::kCellInteger},
    {"TheFirstBadIntegerIsNamed", {"15", "x", "y"}, Error::kCellInteger, 1},
    {"AnIntegerErrorComesBeforeAZeroRate", {"15", "0", "x"}, Error::kCellInteger, 2},
    {"APlusSignIsAccepted", {"+15", "+30", "+60", "+1"}, Error::kNone},
    {"LeadingZerosAreAccepted", {"015", "030", "060", "01"}, Error::kNone},
    {"MinusZeroIsZero", {"-0", "30", "60"}, Error::kNone},
    {"ZeroCountIsAZeroRate", {"15", "0", "60"}, Error::kCellZeroRate},
    {"ZeroPeriodIsAZeroRate", {"15", "30", "0"}, Error::kCellZeroRate},
    {"ZeroCountWithANegativePeriodIsAZeroRate", {"15", "0", "-60"}, Error::kCellZeroRate},
    {"MoreThanABillionPerSecondIsAZeroRate", {"15", "2000000001", "2"}, Error::kCellZeroRate},
    {"ABillionPerSecondIsTheFastestRate", {"15", "1000000000", "1"}, Error::kNone},
    {"NegativeCountIsANegativeRate", {"15", "-30", "60"}, Error::kCellNegativeRate},
    {"NegativePeriodIsANegativeRate", {"15", "30", "-60"}, Error::kCellNegativeRate},
    {"TwoNegativesAreStillANegativeRate", {"15", "-30", "-60"}, Error::kCellNegativeRate},
    {"NegativeMaxBurst", {"-1", "30", "60"}, Error::kCellMaxBurst},
    {"MaxBurstWhoseLimitOverflows", {"9223372036854775807", "30", "60"}, Error::kCellMaxBurst},
    {"TheLargestMaxBurst", {"9223372036854775806", "30", "60"}, Error::kNone},
    {"TheRateIsCheckedBeforeMaxBurst", {"-1", "0", "60"}, Error::kCellZeroRate},
    {"Int64ExtremesOfCountAndPeriod",
     {"0", "9223372036854775807", "9223372036854775807", "-9223372036854775808"},
     Error::kNone},
};

class ThrottleArguments : public testing::TestWithParam<ParseCase> {};

TEST_P(ThrottleArguments, AreCheckedInRedisCellsOrder) {
  const ParseCase& c = GetParam();
  const ThrottleArgs parsed = ParseThrottleArgs(c.args);
  EXPECT_EQ(parsed.error, c.error);
  if (c.error == Error::kCellInteger) {
    EXPECT_EQ(parsed.bad_integer, c.bad_integer);
  }
}

INSTANTIATE_TEST_SUITE_P(Table, ThrottleArguments, testing::ValuesIn(kParseCases),
                         testing_support::CaseName());

TEST(ThrottleArgumentsParsed, GiveTheLimitTheIntervalAndTheTolerance) {
  const std::string_view args[] = {"15", "30", "60", "3"};
  const ThrottleArgs parsed = ParseThrottleArgs(args);
  ASSERT_EQ(parsed.error, Error::kNone);
  EXPECT_EQ(parsed.limits.limit, 16);
  EXPECT_EQ(parsed.limits.interval_ns, 2 * kSecond);
  EXPECT_EQ(parsed.limits.tolerance_ns, 32 * kSecond);
  EXPECT_EQ(parsed.quantity, 3);
}

TEST(ThrottleArgumentsParsed, DefaultToAQuantityOfOne) {
  const std::string_view args[] = {"15", "30", "60"};
  EXPECT_EQ(ParseThrottleArgs(args).quantity, 1);
}

TEST(ThrottleErrors, ReadAsRedisCellWritesThem) {
  EXPECT_EQ(ErrorReply(Error::kCellUsage),
            "Cell error: Store error: Usage: cl.throttle <key> <max_burst> <count per period> "
            "<period> [<quantity>]");
  EXPECT_EQ(ErrorReply(Error::kCellInteger),
            "Cell error: Store error: Couldn't parse as integer: ");
  EXPECT_EQ(ErrorReply(Error::kCellZeroRate),
            "Cell error: Store error: Zero rates are not supported");
}

// redis-cell divides the period in nanoseconds by the count in floating point and truncates;
// exact integer division gives the same interval for every period below 2^53 ns (104 days).
TEST(EmissionInterval, EqualsRedisCellsFloatingPointOneForPeriodsUnder104Days) {
  std::mt19937_64 rng(11);
  std::uniform_int_distribution<int64_t> periods(1, 9'007'199);  // 9007199 s * 1e9 < 2^53
  for (int i = 0; i < 200'000; ++i) {
    const int64_t period_s = periods(rng);
    const int64_t period_ns = period_s * kSecond;
    std::uniform_int_distribution<int64_t> counts(1, i % 2 == 0 ? 10'000 : period_ns);
    const int64_t count = counts(rng);
    const auto floating =
        static_cast<int64_t>(static_cast<double>(period_ns) / static_cast<double>(count));
    ASSERT_EQ(Limits(0, count, period_s).interval_ns, floating)
        << count << " per " << period_s << " s";
  }
}

// --- redis-cell's README and tests --------------------------------------------------------------

struct Step {
  int64_t at_ms;  // since the start
  int64_t quantity;
  ThrottleReply reply;
};

struct ScenarioCase {
  const char* name;
  int64_t max_burst;
  int64_t count;
  int64_t period_s;
  std::vector<Step> steps;
};

void PrintTo(const ScenarioCase& c, std::ostream* os) {
  *os << c.name;
}

const ScenarioCase kScenarios[] = {
    // README: "CL.THROTTLE user123 15 30 60" on a new key.
    {"ReadmeFifteenBurstThirtyPerMinute", 15, 30, 60, {{0, 1, {0, 16, 15, -1, 2}}}},
    // The author's answer in redis-cell's issue #37: "cl.throttle user123 5 5 3600".
    {"FiveBurstFivePerHour", 5, 5, 3600, {{0, 1, {0, 6, 5, -1, 720}}}},
    // redis-cell's end-to-end test: one per two seconds, no burst.
    {"EndToEndOnePerTwoSecondsNoBurst",
     0,
     1,
     2,
     {{0, 1, {0, 1, 0, -1, 2}}, {0, 1, {1, 1, 0, 2, 2}}, {2'000, 1, {0, 1, 0, -1, 2}}}},
    // redis-cell's unit test: limit 5 (max_burst 4), one per second; replies in seconds.
    {"UnitTestLimitFiveOnePerSecond",
     4,
     1,
     1,
     {
         {0, 6, {1, 5, 5, -1, 0}},  // more than the limit never succeeds
         {0, 1, {0, 5, 4, -1, 1}},
         {0, 1, {0, 5, 3, -1, 2}},
         {0, 1, {0, 5, 2, -1, 3}},
         {0, 1, {0, 5, 1, -1, 4}},
         {0, 1, {0, 5, 0, -1, 5}},
         {0, 1, {1, 5, 0, 1, 5}},
         {3'000, 1, {0, 5, 2, -1, 3}},
         {3'100, 1, {0, 5, 1, -1, 4}},  // reset 3.9 s: rounded up
         {4'000, 1, {0, 5, 1, -1, 4}},
         {8'000, 1, {0, 5, 4, -1, 1}},
         {9'500, 1, {0, 5, 4, -1, 1}},
         {9'500, 0, {0, 5, 4, -1, 1}},  // quantity 0 only looks
         {9'500, 2, {0, 5, 2, -1, 3}},
         {9'500, 5, {1, 5, 2, 3, 3}},
     }},
};

class RedisCellScenario : public testing::TestWithParam<ScenarioCase> {};

TEST_P(RedisCellScenario, RepliesWhatRedisCellReplies) {
  const ScenarioCase& c = GetParam();
  FakeCellKey key(Limits(c.max_burst, c.count, c.period_s));
  for (std::size_t i = 0; i < c.steps.size(); ++i) {
    const Step& step = c.steps[i];
    key.now_ns = kStartNs + step.at_ms * kMilli;
    EXPECT_EQ(key.Call(step.quantity), step.reply) << "step " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Table, RedisCellScenario, testing::ValuesIn(kScenarios),
                         testing_support::CaseName());

TEST(RedisCellUnitTest, ReportsTheExactDurationsBehindTheRoundedSeconds) {
  FakeCellKey key(Limits(4, 1, 1));
  for (int i = 0; i < 5; ++i) key.Call();
  key.now_ns = kStartNs + 3'000 * kMilli;
  key.Call();
  key.now_ns = kStartNs + 3'100 * kMilli;
  const GcraDecision allowed = key.Decide(1);
  EXPECT_EQ(allowed.reset_after_ns, 3'900 * kMilli);
  key.now_ns = kStartNs + 9'500 * kMilli;
  key.Decide(1);
  key.Decide(2);
  const GcraDecision limited = key.Decide(5);
  EXPECT_TRUE(limited.limited);
  EXPECT_EQ(limited.retry_after_ns, 3 * kSecond);
  EXPECT_EQ(limited.reset_after_ns, 3 * kSecond);
}

// --- rounding of the second-based fields --------------------------------------------------------

struct SecondsCase {
  const char* name;
  int64_t ns;
  int64_t seconds;
};

void PrintTo(const SecondsCase& c, std::ostream* os) {
  *os << c.name;
}

const SecondsCase kSecondsCases[] = {
    {"ZeroIsZero", 0, 0},
    {"LessThanAMillisecondIsDropped", kMilli - 1, 0},
    {"AMillisecondRoundsUp", kMilli, 1},
    {"AWholeSecondStays", kSecond, 1},
    {"ASecondAndLessThanAMillisecondStays", kSecond + kMilli - 1, 1},
    {"ASecondAndAMillisecondRoundsUp", kSecond + kMilli, 2},
    {"AlmostTwoSecondsRoundsUp", 2 * kSecond - 1, 2},
    {"TwoHundredDaysAndAlmostASecondIsExact", int64_t{200} * 86'400 * kSecond + kSecond - 1,
     200 * 86'400 + 1},
};

class CellSecondsTable : public testing::TestWithParam<SecondsCase> {};

TEST_P(CellSecondsTable, RoundUpOnlyWhenAMillisecondIsLeft) {
  EXPECT_EQ(CellSeconds(GetParam().ns), GetParam().seconds);
}

INSTANTIATE_TEST_SUITE_P(Table, CellSecondsTable, testing::ValuesIn(kSecondsCases),
                         testing_support::CaseName());

// --- rates from one a day to a billion a second -------------------------------------------------

struct RateCase {
  const char* name;
  int64_t max_burst;
  int64_t count;
  int64_t period_s;
};

void PrintTo(const RateCase& c, std::ostream* os) {
  *os << c.name;
}

const RateCase kRates[] = {
    {"OnePerDay", 0, 1, 86'400},
    {"TenPerDayBurstThree", 3, 10, 86'400},
    {"OnePerHour", 2, 1, 3'600},
    {"SevenPerMinute", 6, 7, 60},
    {"ThreePerSecond", 2, 3, 1},
    {"ThousandPerSecond", 99, 1'000, 1},
    {"TwoThousandPerSecond", 0, 2'000, 1},      // redis-cell's issue #80
    {"SixThousandPerSecond", 5'999, 6'000, 1},  // redis-cell's issue #50
    {"ThreeHundredThousandPerSecond", 10, 300'000, 1},
    {"MillionPerSecond", 999, 1'000'000, 1},
    {"BillionPerSecond", 1'000, 1'000'000'000, 1},
};

class Rates : public testing::TestWithParam<RateCase> {};

TEST_P(Rates, ANewKeyAllowsTheWholeLimitAtOnceThenDenies) {
  const RateCase& c = GetParam();
  FakeCellKey key(Limits(c.max_burst, c.count, c.period_s));
  const int64_t limit = c.max_burst + 1;
  for (int64_t i = 0; i < limit; ++i) {
    const ThrottleReply reply = key.Call();
    ASSERT_EQ(reply[0], 0) << "call " << i;
    ASSERT_EQ(reply[2], limit - 1 - i) << "call " << i;
  }
  const ThrottleReply denied = key.Call();
  EXPECT_EQ(denied[0], 1);
  EXPECT_EQ(denied[2], 0);
}

TEST_P(Rates, ACallerThatWaitsRetryAfterIsAllowedAndNotOneNanosecondSooner) {
  const RateCase& c = GetParam();
  const GcraLimits limits = Limits(c.max_burst, c.count, c.period_s);
  FakeCellKey key(limits);
  std::mt19937_64 rng(5);
  std::uniform_int_distribution<int64_t> jitter(0, static_cast<int64_t>(limits.interval_ns));
  for (int round = 0; round < 50; ++round) {
    key.now_ns += jitter(rng);
    GcraDecision decision = key.Decide(1);
    while (!decision.limited) decision = key.Decide(1);
    const auto retry = static_cast<int64_t>(decision.retry_after_ns);
    ASSERT_GT(retry, 0);
    FakeCellKey sooner = key;
    sooner.now_ns += retry - 1;
    ASSERT_TRUE(sooner.Decide(1).limited) << "round " << round;
    key.now_ns += retry;
    ASSERT_FALSE(key.Decide(1).limited) << "round " << round;
  }
}

TEST_P(Rates, ACallerAtExactlyTheRateIsNeverDenied) {
  const RateCase& c = GetParam();
  const GcraLimits limits = Limits(c.max_burst, c.count, c.period_s);
  FakeCellKey key(limits);
  for (int i = 0; i < 1'000; ++i) {
    ASSERT_FALSE(key.Decide(1).limited) << "call " << i;
    key.now_ns += static_cast<int64_t>(limits.interval_ns);
  }
}

TEST_P(Rates, RemainingIsExactlyWhatCanBeTakenNow) {
  const RateCase& c = GetParam();
  const GcraLimits limits = Limits(c.max_burst, c.count, c.period_s);
  FakeCellKey key(limits);
  std::mt19937_64 rng(3);
  std::uniform_int_distribution<int64_t> wait(0, 3 * static_cast<int64_t>(limits.interval_ns));
  for (int round = 0; round < 100; ++round) {
    key.now_ns += wait(rng);
    const int64_t remaining = key.Decide(0).remaining;
    FakeCellKey probe = key;
    if (remaining > 0) {
      ASSERT_FALSE(probe.Decide(remaining).limited) << "round " << round;
    }
    ASSERT_TRUE(probe.Decide(1).limited) << "round " << round;
    key.Decide(1 + round % 3);
  }
}

TEST_P(Rates, TheKeyLivesUntilItsTatAndNoLonger) {
  const RateCase& c = GetParam();
  FakeCellKey key(Limits(c.max_burst, c.count, c.period_s));
  const GcraDecision decision = key.Decide(1);
  ASSERT_EQ(decision.write, GcraWrite::kStore);
  const auto tat = static_cast<Int128>(decision.new_tat_ns);
  EXPECT_GE(static_cast<Int128>(decision.expire_at_ms) * kMilli, tat);
  EXPECT_LT(static_cast<Int128>(decision.expire_at_ms - 1) * kMilli, tat);
}

INSTANTIATE_TEST_SUITE_P(Table, Rates, testing::ValuesIn(kRates), testing_support::CaseName());

// --- where redis-cell's floating point is exact, we reply the same ------------------------------

TEST(Remaining, EqualsRedisCellsWheneverTheIntervalIsAWholeNumberOfMicroseconds) {
  std::mt19937_64 rng(17);
  const GcraLimits cases[] = {Limits(15, 30, 60),        Limits(4, 1, 1),
                              Limits(99, 1'000, 1),      Limits(0, 1, 86'400),
                              Limits(999, 1'000'000, 1), Limits(5'999, 8'000, 1)};
  for (const GcraLimits& limits : cases) {
    ASSERT_EQ(limits.interval_ns % 1000, 0);
    std::uniform_int_distribution<int64_t> ttl(0, static_cast<int64_t>(limits.tolerance_ns));
    for (int i = 0; i < 20'000; ++i) {
      // A hand-made TAT, to the nanosecond, within the tolerance of now.
      const int64_t ttl_ns = ttl(rng);
      FakeCellKey key(limits);
      key.Set(static_cast<uint64_t>(kStartNs + ttl_ns));
      ASSERT_EQ(key.Decide(0).remaining, RedisCellRemaining(limits, ttl_ns)) << ttl_ns;
    }
  }
}

// redis-cell's issue #50: 6000 per second with max_burst 6000 replied a remaining above the
// limit, because it truncates the 166,666 ns interval to 166 µs.
TEST(Remaining, NeverExceedsTheLimitWhereRedisCellsMicrosecondsDo) {
  const GcraLimits limits = Limits(6'000, 6'000, 1);
  FakeCellKey key(limits);
  EXPECT_EQ(key.Call(), (ThrottleReply{0, 6'001, 6'000, -1, 0}));  // reset: 0.17 ms
  EXPECT_EQ(RedisCellRemaining(limits, static_cast<int64_t>(limits.interval_ns)), 6'024);
}

// --- int64 extremes -----------------------------------------------------------------------------

TEST(Extremes, TheLargestMaxBurstAllowsAndCountsExactly) {
  FakeCellKey key(Limits(kInt64Max - 1, 1, 1));
  EXPECT_EQ(key.Call(), (ThrottleReply{0, kInt64Max, kInt64Max - 1, -1, 1}));
  EXPECT_EQ(key.Call(1000), (ThrottleReply{0, kInt64Max, kInt64Max - 1001, -1, 1001}));
}

TEST(Extremes, AQuantityOfInt64MaxIsNeverAllowedAndWritesNothing) {
  FakeCellKey key(Limits(kInt64Max - 1, kInt64Max, kInt64Max));
  const GcraDecision decision = key.Decide(kInt64Max);
  EXPECT_TRUE(decision.limited);
  EXPECT_EQ(decision.write, GcraWrite::kNothing);
  EXPECT_EQ(decision.retry_after_ns, kNeverNs);
  EXPECT_EQ(key.tat(), std::nullopt);
}

TEST(Extremes, AHugePeriodDeniesWhatItsTatCouldNotStore) {
  // One per 2^63-1 s: the first call's TAT would be far past 2^64 ns.
  FakeCellKey key(Limits(0, 1, kInt64Max));
  const ThrottleReply reply = key.Call();
  EXPECT_EQ(reply, (ThrottleReply{1, 1, 1, -1, 0}));
  EXPECT_EQ(key.tat(), std::nullopt);
}

TEST(Extremes, AQuantityOfInt64MinGivesEverythingBack) {
  FakeCellKey key(Limits(10, 1, 60));
  key.Call(5);
  const GcraDecision decision = key.Decide(kInt64Min);
  EXPECT_FALSE(decision.limited);
  EXPECT_EQ(decision.write, GcraWrite::kDelete);
  EXPECT_EQ(decision.remaining, 11);
  EXPECT_EQ(key.tat(), std::nullopt);
}

TEST(Extremes, TheLatestStorableTatIsReadAndDenies) {
  FakeCellKey key(Limits(4, 1, 1));
  key.Set(kMaxTat);
  const GcraDecision decision = key.Decide(1);
  EXPECT_TRUE(decision.limited);
  EXPECT_EQ(decision.remaining, 0);
  EXPECT_EQ(decision.retry_after_ns, kNeverNs);  // its TAT cannot grow
  EXPECT_EQ(decision.reset_after_ns, static_cast<Int128>(kMaxTat) - kStartNs);
  EXPECT_EQ(ThrottleReplyFor(Limits(4, 1, 1), decision)[4], 16'746'744'074);
}

TEST(Extremes, TheLatestNanosecondOfInt64IsAnOrdinaryNow) {
  FakeCellKey key(Limits(2, 1, 1));
  key.now_ns = kInt64Max;
  EXPECT_EQ(key.Call(), (ThrottleReply{0, 3, 2, -1, 1}));
  const auto tat = key.tat();
  ASSERT_TRUE(tat);
  EXPECT_EQ(*tat, static_cast<uint64_t>(kInt64Max) + kSecond);
}

// --- the clock going backward -------------------------------------------------------------------

TEST(ClockGoingBack, DeniesUntilTheTatIsWithinTheToleranceAgain) {
  const GcraLimits limits = Limits(2, 1, 1);
  FakeCellKey key(limits);
  for (int i = 0; i < 3; ++i) key.Call();  // TAT = start + 3 s: all used
  key.now_ns = kStartNs - 10 * kSecond;    // the clock steps back 10 s
  const GcraDecision peek = key.Decide(0);
  EXPECT_TRUE(peek.limited);  // the TAT is 13 s ahead, the tolerance 3 s
  EXPECT_EQ(peek.remaining, 0);
  EXPECT_EQ(peek.retry_after_ns, 10 * kSecond);
  EXPECT_EQ(peek.reset_after_ns, 13 * kSecond);
  EXPECT_EQ(key.tat(), static_cast<uint64_t>(kStartNs + 3 * kSecond));  // nothing written
  key.now_ns = kStartNs + kSecond;
  EXPECT_EQ(key.Call(), (ThrottleReply{0, 3, 0, -1, 3}));
}

TEST(ClockGoingBack, NeverRepliesANegativeField) {
  const GcraLimits limits = Limits(5, 10, 1);
  FakeCellKey key(limits);
  std::mt19937_64 rng(23);
  std::uniform_int_distribution<int64_t> step(-500 * kMilli, 400 * kMilli);
  for (int i = 0; i < 5'000; ++i) {
    key.now_ns += step(rng);
    const ThrottleReply reply = key.Call(i % 4);
    ASSERT_GE(reply[2], 0);
    ASSERT_LE(reply[2], reply[1]);
    ASSERT_GE(reply[3], reply[0] == 1 ? 0 : -1);
    ASSERT_GE(reply[4], 0);
  }
}

// --- keys in redis-cell's format ----------------------------------------------------------------

struct TatCase {
  const char* name;
  const char* text;
  std::optional<uint64_t> tat;
};

void PrintTo(const TatCase& c, std::ostream* os) {
  *os << c.name;
}

const TatCase kTatCases[] = {
    {"RedisCellsOwnExample", "1559260935732768000", 1'559'260'935'732'768'000u},
    {"Zero", "0", 0},
    {"LeadingZeros", "0001", 1},
    {"APlusSign", "+42", 42},
    {"TheLargestUnsigned64BitValue", "18446744073709551615", kMaxTat},
    {"PastUnsigned64Bits", "18446744073709551616", std::nullopt},
    {"Negative", "-1", std::nullopt},
    {"MinusZero", "-0", std::nullopt},
    {"Empty", "", std::nullopt},
    {"ALoneSign", "+", std::nullopt},
    {"Decimal", "1.5", std::nullopt},
    {"Spaces", " 1", std::nullopt},
    {"AShieldTokenBucketIsStillANumber", "17", 17},
    {"Text", "abc", std::nullopt},
};

class StoredTat : public testing::TestWithParam<TatCase> {};

TEST_P(StoredTat, IsReadAsRedisCellReadsIt) {
  EXPECT_EQ(ParseTat(GetParam().text), GetParam().tat);
}

INSTANTIATE_TEST_SUITE_P(Table, StoredTat, testing::ValuesIn(kTatCases),
                         testing_support::CaseName());

TEST(StoredTatFormat, IsPlainDecimalNanosecondsAndReadsBack) {
  char text[kInt64TextCapacity];
  for (const uint64_t tat : {uint64_t{0}, uint64_t{1'559'260'935'732'768'000u}, kMaxTat}) {
    const std::string_view written(text, FormatUInt64(tat, text));
    EXPECT_EQ(written, std::to_string(tat));
    EXPECT_EQ(ParseTat(written), tat);
  }
}

TEST(StoredTatFormat, AKeyRedisCellWroteIsReadAsTheCallsItHolds) {
  // redis-cell wrote the TAT 3 intervals ahead, to the nanosecond: 3 of 5 are used.
  const GcraLimits limits = Limits(4, 1, 1);
  FakeCellKey key(limits);
  key.Set(static_cast<uint64_t>(kStartNs + 3 * kSecond - 123));
  EXPECT_EQ(key.Call(0), (ThrottleReply{0, 5, 2, -1, 3}));
  EXPECT_EQ(key.Call(), (ThrottleReply{0, 5, 1, -1, 4}));
  EXPECT_EQ(key.tat(), static_cast<uint64_t>(kStartNs + 4 * kSecond - 123));
}

TEST(StoredTatFormat, ATatInThePastIsAFullBurst) {
  FakeCellKey key(Limits(4, 1, 1));
  key.Set(static_cast<uint64_t>(kStartNs - kSecond));
  EXPECT_EQ(key.Call(6), (ThrottleReply{1, 5, 5, -1, 0}));
  EXPECT_EQ(key.Call(), (ThrottleReply{0, 5, 4, -1, 1}));
  EXPECT_EQ(key.tat(), static_cast<uint64_t>(kStartNs + kSecond));
}

TEST(StoredTatFormat, TheExpiryIsTheFirstMillisecondAtOrAfterTheTat) {
  FakeCellKey key(Limits(4, 3, 1));  // 333,333,333 ns apart
  const GcraDecision decision = key.Decide(1);
  EXPECT_EQ(decision.new_tat_ns, static_cast<uint64_t>(kStartNs + 333'333'333));
  EXPECT_EQ(decision.expire_at_ms, (kStartNs + 333'333'333) / kMilli + 1);
}

// --- quantity 0 and give-backs ------------------------------------------------------------------

TEST(QuantityZero, LooksWithoutWriting) {
  FakeCellKey key(Limits(4, 1, 1));
  EXPECT_EQ(key.Decide(0).write, GcraWrite::kNothing);
  EXPECT_EQ(key.tat(), std::nullopt);
  key.Call(2);
  const auto tat = key.tat();
  const GcraDecision peek = key.Decide(0);
  EXPECT_EQ(peek.write, GcraWrite::kNothing);
  EXPECT_EQ(peek.remaining, 3);
  EXPECT_EQ(key.tat(), tat);
}

TEST(NegativeQuantity, GivesBackWhatAnEarlierCallTook) {
  FakeCellKey key(Limits(4, 1, 1));
  key.Call(3);
  EXPECT_EQ(key.Call(-1), (ThrottleReply{0, 5, 3, -1, 2}));
  EXPECT_EQ(key.tat(), static_cast<uint64_t>(kStartNs + 2 * kSecond));
}

TEST(NegativeQuantity, GivingBackMoreThanWasTakenLeavesAFullBurstAndNoKey) {
  FakeCellKey key(Limits(4, 1, 1));
  key.Call(2);
  const GcraDecision decision = key.Decide(-3);
  EXPECT_EQ(decision.write, GcraWrite::kDelete);
  EXPECT_EQ(ThrottleReplyFor(Limits(4, 1, 1), decision), (ThrottleReply{0, 5, 5, -1, 0}));
  EXPECT_EQ(key.tat(), std::nullopt);
  EXPECT_EQ(key.Decide(-1).write, GcraWrite::kNothing);  // nothing to give back to
}

TEST(NegativeQuantity, CountsTheCallsItMadeAvailable) {
  FakeCellKey key(Limits(4, 1, 1));
  key.Call(3);
  EXPECT_EQ(key.Decide(-1).given_back, 1);
  EXPECT_EQ(key.Decide(-10).given_back, 2);  // the 2 still taken: never more
  EXPECT_EQ(key.Decide(1).given_back, 0);
  EXPECT_EQ(key.Decide(0).given_back, 0);
}

TEST(TatRoom, AHugePeriodIsAnErrorBeforeAnyCallIsDenied) {
  const Int128 interval = Limits(0, 1, kInt64Max).interval_ns;
  EXPECT_EQ(CheckTatRoom(interval, kStartNs, Error::kCellPeriodTooLarge),
            Error::kCellPeriodTooLarge);
  EXPECT_EQ(CheckTatRoom(Limits(0, 1, 3600).interval_ns, kStartNs, Error::kCellPeriodTooLarge),
            Error::kNone);
}

TEST(TellingATatApart, ACountWithAnExpiryIsNoTatAndATatMatchesItsExpiry) {
  // A TAT as Shield writes it: its key expires at the first millisecond at or after it.
  const uint64_t tat = kStartNs + 2 * kSecond + 123;
  const int64_t expire_at_ms = static_cast<int64_t>((tat + 999'999) / 1'000'000);
  EXPECT_TRUE(CountIsATat(static_cast<int64_t>(tat), expire_at_ms));
  EXPECT_FALSE(CountIsATat(7, expire_at_ms));                       // a bucket's count
  EXPECT_FALSE(CountIsATat(static_cast<int64_t>(tat), kNoExpiry));  // written by hand
  EXPECT_TRUE(TatTooOldForExpiry(7, kStartNs));                     // a count read as a TAT: 1970
  EXPECT_FALSE(TatTooOldForExpiry(tat, kStartNs));
  EXPECT_FALSE(TatTooOldForExpiry(kStartNs - kSecond / 2, kStartNs));  // within the slack
}

// --- SHIELD.gcra: SHIELD.absorb's arguments over the same limit ---------------------------------

TEST(ShieldGcra, ABurstOfSixteenAtThirtyPerMinuteIsCellsFifteenThirtySixty) {
  const auto limits = GcraLimitsOf(*BurstLimits(30, 60'000, 16));
  ASSERT_TRUE(limits);
  const GcraLimits cell = Limits(15, 30, 60);
  EXPECT_EQ(limits->limit, cell.limit);
  EXPECT_EQ(limits->count, cell.count);
  EXPECT_EQ(limits->period_s, cell.period_s);
  EXPECT_EQ(limits->interval_ns, cell.interval_ns);
  EXPECT_EQ(limits->tolerance_ns, cell.tolerance_ns);
}

TEST(ShieldGcra, WithoutBurstHoldsCapacity) {
  const auto limits = GcraLimitsOf(PlainLimits(10, 1'000));
  ASSERT_TRUE(limits);
  EXPECT_EQ(limits->limit, 10);
  EXPECT_EQ(limits->interval_ns, 100 * kMilli);
}

TEST(ShieldGcra, ABillionPerSecondIsTheFastestRate) {
  EXPECT_TRUE(GcraLimitsOf(PlainLimits(1'000'000'000, 1'000)));
  EXPECT_FALSE(GcraLimitsOf(PlainLimits(1'000'000'001, 1'000)));
  EXPECT_FALSE(GcraLimitsOf(PlainLimits(kInt64Max, 1'000)));
  EXPECT_EQ(ErrorReply(Error::kGcraRate),
            "ERR rate too high: at most 1000000000 tokens per second");
}

TEST(ShieldGcra, RepliesTheTokensLeftOrMinusOne) {
  const GcraLimits limits = *GcraLimitsOf(PlainLimits(30, 60'000));
  FakeCellKey key(limits);
  EXPECT_EQ(GcraReply(key.Decide(13)), 17);
  EXPECT_EQ(GcraReply(key.Decide(13)), 4);
  EXPECT_EQ(GcraReply(key.Decide(13)), -1);
}

// --- the SHIELD VERBOSE map ---------------------------------------------------------------------

TEST(GcraVerboseMap, AllowedCallReportsRemainingAndTheExactResetInMilliseconds) {
  const GcraLimits limits = Limits(15, 30, 60);
  FakeCellKey key(limits);
  EXPECT_EQ(GcraVerbose(limits, key.Decide(1)), (VerboseValues{1, 15, 30, 60, 0, 2'000}));
}

TEST(GcraVerboseMap, DeniedCallReportsTheExactWaitRoundedUpToTheMillisecond) {
  const GcraLimits limits = Limits(0, 3, 1);
  FakeCellKey key(limits);
  key.Decide(1);
  key.now_ns += 1'000;  // 1 µs later
  EXPECT_EQ(GcraVerbose(limits, key.Decide(1)), (VerboseValues{0, 0, 3, 1, 334, 334}));
  EXPECT_EQ(GcraVerbose(limits, key.Decide(2))[4], -1);  // more than the limit
}

}  // namespace
}  // namespace shield
