// The calendar quota of SHIELD.quota on a fake clock: the civil calendar against the standard
// library's, UTC periods at month ends, leap days and year ends, the quota's replies and expiry,
// a clock that goes back, int64 extremes and the arguments.
#include "core/quota/quota.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "case_name.hpp"
#include "fake_store.hpp"

namespace shield {
namespace {

using std::chrono::day;
using std::chrono::month;
using std::chrono::sys_days;
using std::chrono::year;
using std::chrono::year_month_day;

constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

// Unix milliseconds of a UTC date and time, by the standard library's calendar.
int64_t At(int y, unsigned m, unsigned d, int64_t hour = 0, int64_t minute = 0, int64_t second = 0,
           int64_t ms = 0) {
  const sys_days date{year_month_day{year{y}, month{m}, day{d}}};
  const int64_t days = date.time_since_epoch().count();
  return days * kMsPerDay + hour * 3'600'000 + minute * 60'000 + second * 1'000 + ms;
}

// --- the civil calendar --------------------------------------------------------------------------

TEST(Civil, EveryDayFrom1600To2500MatchesTheStandardLibrary) {
  const int64_t first = sys_days{year{1600} / 1 / 1}.time_since_epoch().count();
  const int64_t last = sys_days{year{2500} / 12 / 31}.time_since_epoch().count();
  for (int64_t days = first; days <= last; ++days) {
    const year_month_day expected{sys_days{std::chrono::days{days}}};
    const CivilDate date = CivilFromDays(days);
    ASSERT_EQ(date,
              (CivilDate{static_cast<int>(expected.year()), static_cast<unsigned>(expected.month()),
                         static_cast<unsigned>(expected.day())}))
        << days;
    ASSERT_EQ(DaysFromCivil(date), days);
  }
}

TEST(Civil, LeapYearsFollowTheGregorianRules) {
  EXPECT_TRUE(IsLeapYear(2024));
  EXPECT_FALSE(IsLeapYear(2023));
  EXPECT_FALSE(IsLeapYear(2100));
  EXPECT_TRUE(IsLeapYear(2000));
  EXPECT_FALSE(IsLeapYear(1900));
  EXPECT_EQ(DaysInMonth(2024, 2), 29);
  EXPECT_EQ(DaysInMonth(2100, 2), 28);
  EXPECT_EQ(DaysInMonth(2000, 2), 29);
  EXPECT_EQ(DaysInMonth(2023, 4), 30);
  EXPECT_EQ(DaysInMonth(2023, 12), 31);
}

TEST(Civil, TheDaysOfEveryInt64MillisecondRoundTrip) {
  for (const int64_t ms : {kMin, kMin + 1, int64_t{-1}, int64_t{0}, kMax - 1, kMax}) {
    const int64_t days = ms / kMsPerDay - (ms % kMsPerDay < 0 ? 1 : 0);
    const CivilDate date = CivilFromDays(days);
    EXPECT_EQ(DaysFromCivil(date), days) << ms;
    EXPECT_GE(date.month, 1);
    EXPECT_LE(date.month, 12);
    EXPECT_GE(date.day, 1);
    EXPECT_LE(date.day, DaysInMonth(date.year, date.month));
  }
}

// --- periods -------------------------------------------------------------------------------------

struct PeriodCase {
  const char* name;
  int64_t now_ms;
  CalendarUnit unit;
  int64_t start_ms;
  int64_t end_ms;
};

void PrintTo(const PeriodCase& c, std::ostream* os) {
  *os << c.name;
}

const CalendarUnit kHour = CalendarUnit::kHour;
const CalendarUnit kDay = CalendarUnit::kDay;
const CalendarUnit kMonth = CalendarUnit::kMonth;

const PeriodCase kPeriodCases[] = {
    {"AnHourStartsOnTheHour", At(2024, 5, 17, 13, 42, 7, 5), kHour, At(2024, 5, 17, 13),
     At(2024, 5, 17, 14)},
    {"TheFirstMillisecondOfAnHourIsInIt", At(2024, 5, 17, 13), kHour, At(2024, 5, 17, 13),
     At(2024, 5, 17, 14)},
    {"TheLastHourOfADayEndsAtMidnight", At(2024, 5, 17, 23, 59, 59, 999), kHour,
     At(2024, 5, 17, 23), At(2024, 5, 18)},
    {"TheLastHourOfAYearEndsInTheNextYear", At(2024, 12, 31, 23, 30), kHour, At(2024, 12, 31, 23),
     At(2025, 1, 1)},
    {"ADayStartsAtMidnightUtc", At(2024, 5, 17, 13, 42), kDay, At(2024, 5, 17), At(2024, 5, 18)},
    {"TheLeapDayIsADay", At(2024, 2, 29, 12), kDay, At(2024, 2, 29), At(2024, 3, 1)},
    {"TheLastDayOfAYearEndsOnNewYear", At(2024, 12, 31, 23, 59, 59, 999), kDay, At(2024, 12, 31),
     At(2025, 1, 1)},
    {"AMonthStartsOnTheFirst", At(2024, 5, 17, 13), kMonth, At(2024, 5, 1), At(2024, 6, 1)},
    {"TheLastMillisecondOfJanuaryIsInJanuary", At(2024, 1, 31, 23, 59, 59, 999), kMonth,
     At(2024, 1, 1), At(2024, 2, 1)},
    {"TheFirstMillisecondOfFebruaryIsInFebruary", At(2024, 2, 1), kMonth, At(2024, 2, 1),
     At(2024, 3, 1)},
    {"February2024HasALeapDay", At(2024, 2, 29, 23, 59, 59, 999), kMonth, At(2024, 2, 1),
     At(2024, 3, 1)},
    {"February2023HasNone", At(2023, 2, 28, 12), kMonth, At(2023, 2, 1), At(2023, 3, 1)},
    {"February2100HasNoneForACenturyIsNotLeap", At(2100, 2, 28, 12), kMonth, At(2100, 2, 1),
     At(2100, 3, 1)},
    {"February2000HasOneForEveryFourthCenturyIs", At(2000, 2, 29), kMonth, At(2000, 2, 1),
     At(2000, 3, 1)},
    {"AThirtyDayMonth", At(2024, 4, 30, 18), kMonth, At(2024, 4, 1), At(2024, 5, 1)},
    {"DecemberEndsOnNewYear", At(2024, 12, 31, 23, 59, 59, 999), kMonth, At(2024, 12, 1),
     At(2025, 1, 1)},
    {"NewYearStartsJanuary", At(2025, 1, 1), kMonth, At(2025, 1, 1), At(2025, 2, 1)},
    {"TheEpochIsTheStartOfEverything", 0, kMonth, 0, At(1970, 2, 1)},
    {"TheMillisecondBeforeTheEpochIsInDecember1969", -1, kMonth, At(1969, 12, 1), 0},
    {"TheDayBeforeTheEpoch", -1, kDay, -kMsPerDay, 0},
    {"TheHourBeforeTheEpoch", -1, kHour, -3'600'000, 0},
};

class Periods : public testing::TestWithParam<PeriodCase> {};

TEST_P(Periods, StartAndEndAreTheUtcBoundaries) {
  const auto& c = GetParam();
  const auto period = PeriodAt(c.unit, c.now_ms);
  ASSERT_TRUE(period.has_value());
  EXPECT_EQ(period->start_ms, c.start_ms);
  EXPECT_EQ(period->end_ms, c.end_ms);
  EXPECT_EQ(period->length_ms, c.end_ms - c.start_ms);
}

INSTANTIATE_TEST_SUITE_P(Instants, Periods, testing::ValuesIn(kPeriodCases),
                         testing_support::CaseName());

TEST(Periods, EveryMonthFrom1970To2200HasTheStandardLibrarysLength) {
  for (int y = 1970; y <= 2200; ++y) {
    for (unsigned m = 1; m <= 12; ++m) {
      const auto period = PeriodAt(kMonth, At(y, m, 15, 12));
      ASSERT_TRUE(period.has_value());
      const sys_days next =
          m == 12 ? sys_days{year{y + 1} / 1 / 1} : sys_days{year{y} / month{m + 1} / 1};
      ASSERT_EQ(period->start_ms, At(y, m, 1)) << y << "-" << m;
      ASSERT_EQ(period->end_ms, next.time_since_epoch().count() * kMsPerDay) << y << "-" << m;
    }
  }
}

TEST(Periods, APeriodEndingPastTheInt64MaximumHasNone) {
  EXPECT_FALSE(PeriodAt(kHour, kMax).has_value());
  EXPECT_FALSE(PeriodAt(kDay, kMax).has_value());
  EXPECT_FALSE(PeriodAt(kMonth, kMax).has_value());
  // The last whole hour before the maximum still fits.
  const int64_t last_hour_end = kMax / 3'600'000 * 3'600'000;
  EXPECT_TRUE(PeriodAt(kHour, last_hour_end - 1).has_value());
  EXPECT_FALSE(PeriodAt(kHour, last_hour_end).has_value());
}

TEST(Periods, APeriodStartingBeforeTheInt64MinimumIsClampedButKeepsItsLength) {
  for (const CalendarUnit unit : {kHour, kDay, kMonth}) {
    const auto period = PeriodAt(unit, kMin);
    ASSERT_TRUE(period.has_value());
    EXPECT_EQ(period->start_ms, kMin);
    EXPECT_GT(period->end_ms, kMin);
    EXPECT_GE(period->length_ms, 3'600'000);
  }
}

// --- the quota -----------------------------------------------------------------------------------

// One SHIELD.quota key as Redis holds it: a count that disappears at its expiry.
class FakeQuota {
 public:
  FakeQuota(int64_t limit, CalendarUnit unit, int64_t now_ms)
      : limits_{limit, unit}, now_(now_ms) {}

  int64_t Take(int64_t tokens = 1) { return QuotaReply(limits_, Decide(tokens)); }
  VerboseValues TakeVerbose(int64_t tokens = 1) {
    const QuotaDecision decision = Decide(tokens);
    return QuotaVerbose(limits_, *PeriodAt(limits_.unit, now_), decision, tokens, now_);
  }
  void SetTime(int64_t now_ms) { now_ = now_ms; }
  void Set(int64_t count, int64_t expire_at = kNoExpiry) {
    stored_ = StoredBucket{count, expire_at};
  }
  std::optional<StoredBucket> stored() {
    Expire();
    return stored_;
  }

 private:
  QuotaDecision Decide(int64_t tokens) {
    Expire();
    const auto period = PeriodAt(limits_.unit, now_);
    EXPECT_TRUE(period.has_value());
    const QuotaDecision decision =
        QuotaAbsorb(limits_, *period, stored_.value_or(StoredBucket{0, kNoExpiry}), tokens, now_);
    if (decision.allowed) stored_ = QuotaStore(decision.after);
    return decision;
  }
  // Redis keeps a key through the millisecond of its expiry (it expires when now > expiry).
  void Expire() {
    if (stored_ && stored_->expire_at_ms != kNoExpiry && stored_->expire_at_ms < now_)
      stored_.reset();
  }

  QuotaLimits limits_;
  int64_t now_;
  std::optional<StoredBucket> stored_;
};

struct QuotaStep {
  int64_t now_ms;
  int64_t tokens;
  int64_t reply;
};

struct QuotaCase {
  const char* name;
  int64_t limit;
  CalendarUnit unit;
  std::vector<QuotaStep> steps;
};

void PrintTo(const QuotaCase& c, std::ostream* os) {
  *os << c.name;
}

const QuotaCase kQuotaCases[] = {
    {"TheLimitIsAdmittedAndOneMoreIsDenied",
     5,
     kHour,
     {{At(2024, 5, 17, 13, 5), 5, 0}, {At(2024, 5, 17, 13, 59, 59, 999), 1, -1}}},
    {"TheNextHourStartsAfresh",
     5,
     kHour,
     {{At(2024, 5, 17, 13, 5), 5, 0}, {At(2024, 5, 17, 14), 2, 3}}},
    {"TokensAreTakenTogetherOrNotAtAll",
     10,
     kDay,
     {{At(2024, 5, 17, 1), 7, 3}, {At(2024, 5, 17, 2), 4, -1}, {At(2024, 5, 17, 3), 3, 0}}},
    {"TheLastMillisecondOfJanuaryIsStillJanuarys",
     100,
     kMonth,
     {{At(2024, 1, 3), 60, 40},
      {At(2024, 1, 31, 23, 59, 59, 999), 41, -1},
      {At(2024, 2, 1), 41, 59}}},
    {"TheLeapDayBelongsToFebruary",
     3,
     kMonth,
     {{At(2024, 2, 1), 3, 0}, {At(2024, 2, 29, 23, 59, 59, 999), 1, -1}, {At(2024, 3, 1), 1, 2}}},
    {"TheLeapDayIsADayOfItsOwn",
     2,
     kDay,
     {{At(2024, 2, 28, 23), 2, 0},
      {At(2024, 2, 29), 2, 0},
      {At(2024, 2, 29, 23), 1, -1},
      {At(2024, 3, 1), 1, 1}}},
    {"February2100EndsOnThe28th",
     1,
     kMonth,
     {{At(2100, 2, 28, 23, 59, 59, 999), 1, 0}, {At(2100, 3, 1), 1, 0}}},
    {"February2000RunsToThe29th",
     1,
     kMonth,
     {{At(2000, 2, 28), 1, 0}, {At(2000, 2, 29, 23, 59, 59, 999), 1, -1}, {At(2000, 3, 1), 1, 0}}},
    {"NewYearResetsTheDayAndTheMonth",
     4,
     kMonth,
     {{At(2024, 12, 31, 23, 59, 59, 999), 4, 0}, {At(2025, 1, 1), 4, 0}}},
};

class QuotaSteps : public testing::TestWithParam<QuotaCase> {};

TEST_P(QuotaSteps, RepliesCountTheTokensOfTheCurrentPeriod) {
  const auto& c = GetParam();
  FakeQuota quota(c.limit, c.unit, c.steps[0].now_ms);
  for (std::size_t i = 0; i < c.steps.size(); ++i) {
    quota.SetTime(c.steps[i].now_ms);
    EXPECT_EQ(quota.Take(c.steps[i].tokens), c.steps[i].reply) << "step " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Steps, QuotaSteps, testing::ValuesIn(kQuotaCases),
                         testing_support::CaseName());

TEST(QuotaKey, HoldsTheCountAndExpiresAtThePeriodsEnd) {
  FakeQuota quota(10, kMonth, At(2024, 2, 10, 8));
  EXPECT_EQ(quota.Take(3), 7);
  ASSERT_TRUE(quota.stored().has_value());
  EXPECT_EQ(quota.stored()->tokens, 3);
  EXPECT_EQ(quota.stored()->expire_at_ms, At(2024, 3, 1));
}

TEST(QuotaKey, ADeniedCallWritesNothing) {
  FakeQuota quota(2, kDay, At(2024, 2, 10, 8));
  EXPECT_EQ(quota.Take(2), 0);
  const auto before = quota.stored();
  EXPECT_EQ(quota.Take(1), -1);
  EXPECT_EQ(quota.stored()->tokens, before->tokens);
  EXPECT_EQ(quota.stored()->expire_at_ms, before->expire_at_ms);
}

TEST(QuotaVerbose, AnAllowedCallReportsThePeriodAndTheTimeToItsEnd) {
  FakeQuota quota(10, kMonth, At(2024, 2, 28, 12));
  // February 2024: 29 days; a day and a half to its end.
  EXPECT_EQ(quota.TakeVerbose(4),
            (VerboseValues{1, 6, 10, int64_t{29} * 86'400, 0, int64_t{36} * 3'600'000}));
}

TEST(QuotaVerbose, ADeniedCallWaitsForThePeriodsEnd) {
  FakeQuota quota(10, kHour, At(2024, 2, 28, 12, 45));
  quota.Take(8);
  EXPECT_EQ(quota.TakeVerbose(3), (VerboseValues{0, 2, 10, 3'600, 900'000, 900'000}));
}

TEST(QuotaVerbose, MoreTokensThanTheLimitCanNeverBeTaken) {
  FakeQuota quota(10, kDay, At(2024, 2, 28, 18));
  EXPECT_EQ(quota.TakeVerbose(11),
            (VerboseValues{0, 10, 10, 86'400, kNever, int64_t{6} * 3'600'000}));
  EXPECT_FALSE(quota.stored().has_value());
}

TEST(QuotaVerbose, WaitingRetryAfterIsEnoughAndOneMillisecondLessIsNot) {
  FakeQuota quota(5, kDay, At(2024, 12, 31, 17, 3, 4, 5));
  quota.Take(5);
  const int64_t retry_ms = quota.TakeVerbose(1)[4];
  EXPECT_EQ(retry_ms, At(2025, 1, 1) - At(2024, 12, 31, 17, 3, 4, 5));
  quota.SetTime(At(2024, 12, 31, 17, 3, 4, 5) + retry_ms - 1);
  EXPECT_EQ(quota.Take(1), -1);
  quota.SetTime(At(2024, 12, 31, 17, 3, 4, 5) + retry_ms);
  EXPECT_EQ(quota.Take(1), 4);
}

// --- the clock going back, and keys from elsewhere -----------------------------------------------

TEST(QuotaClock, AClockThatGoesBackAnHourKeepsCountingUntilTheKeysExpiry) {
  FakeQuota quota(5, kHour, At(2024, 5, 17, 14, 0, 0, 500));
  EXPECT_EQ(quota.Take(4), 1);
  quota.SetTime(At(2024, 5, 17, 13, 59, 59));  // the previous hour
  EXPECT_EQ(quota.Take(2), -1);
  EXPECT_EQ(quota.Take(1), 0);
  EXPECT_EQ(quota.stored()->expire_at_ms, At(2024, 5, 17, 15));  // not moved back to 14:00
  EXPECT_EQ(quota.TakeVerbose(1)[5], At(2024, 5, 17, 15) - At(2024, 5, 17, 13, 59, 59));
}

TEST(QuotaClock, AKeyWithoutExpiryCountsInTheCurrentPeriodAndGetsItsEnd) {
  FakeQuota quota(5, kDay, At(2024, 5, 17, 9));
  quota.Set(3);
  EXPECT_EQ(quota.Take(1), 1);
  EXPECT_EQ(quota.stored()->expire_at_ms, At(2024, 5, 18));
}

TEST(QuotaClock, AKeyAtItsExpirysMillisecondHasReset) {
  // Redis still holds the key at that millisecond; the next period has begun.
  FakeQuota quota(5, kDay, At(2024, 5, 17, 9));
  quota.Set(5, At(2024, 5, 18));
  quota.SetTime(At(2024, 5, 18));
  EXPECT_EQ(quota.Take(1), 4);
  EXPECT_EQ(quota.stored()->expire_at_ms, At(2024, 5, 19));
}

// --- int64 extremes ------------------------------------------------------------------------------

TEST(QuotaExtremes, TheLargestLimitAndTokensTakeEverythingWithoutOverflow) {
  FakeQuota quota(kMax, kMonth, At(2024, 5, 17));
  EXPECT_EQ(quota.Take(kMax), 0);
  EXPECT_EQ(quota.Take(1), -1);
  EXPECT_EQ(quota.stored()->tokens, kMax);
}

TEST(QuotaExtremes, StoredCountsBeyondTheLimitDenyAndNegativeOnesReadAsZero) {
  FakeQuota quota(10, kDay, At(2024, 5, 17));
  quota.Set(kMax, At(2024, 5, 18));
  EXPECT_EQ(quota.TakeVerbose(1), (VerboseValues{0, 0, 10, 86'400, 86'400'000, 86'400'000}));
  quota.Set(kMin, At(2024, 5, 18));
  EXPECT_EQ(quota.Take(1), 9);
  EXPECT_EQ(quota.stored()->tokens, 1);
}

TEST(QuotaExtremes, AnExpiryAtTheInt64MaximumKeepsCountingAndReportsItsDistance) {
  FakeQuota quota(10, kHour, At(2024, 5, 17, 9));
  quota.Set(4, kMax);
  EXPECT_EQ(quota.TakeVerbose(1), (VerboseValues{1, 5, 10, 3'600, 0, kMax - At(2024, 5, 17, 9)}));
  EXPECT_EQ(quota.stored()->expire_at_ms, kMax);
}

// --- arguments -----------------------------------------------------------------------------------

struct ArgsCase {
  const char* name;
  std::vector<std::string_view> args;  // after the key
  Error error;
  CalendarUnit unit = kHour;
  int64_t tokens = 1;
  bool verbose = false;
};

void PrintTo(const ArgsCase& c, std::ostream* os) {
  *os << c.name;
}

const ArgsCase kArgsCases[] = {
    {"LimitAndHour", {"10", "HOUR"}, Error::kNone, kHour},
    {"DayInLowerCase", {"10", "day"}, Error::kNone, kDay},
    {"MonthInMixedCase", {"10", "MoNtH"}, Error::kNone, kMonth},
    {"TokensAreOptional", {"10", "DAY", "3"}, Error::kNone, kDay, 3},
    {"VerboseWithoutTokens", {"10", "DAY", "VERBOSE"}, Error::kNone, kDay, 1, true},
    {"TokensThenVerbose", {"10", "MONTH", "4", "verbose"}, Error::kNone, kMonth, 4, true},
    {"OneArgumentIsTooFew", {"10"}, Error::kArity},
    {"AnExtraWordIsAnArityError", {"10", "DAY", "1", "extra"}, Error::kArity},
    {"TokensAfterVerboseAreAnArityError", {"10", "DAY", "VERBOSE", "2"}, Error::kArity},
    {"VerboseTwiceIsASyntaxError", {"10", "DAY", "VERBOSE", "VERBOSE"}, Error::kSyntax},
    {"ZeroLimit", {"0", "DAY"}, Error::kLimit},
    {"WordLimit", {"ten", "DAY"}, Error::kLimit},
    {"LimitIsCheckedFirst", {"0", "WEEK", "0"}, Error::kLimit},
    {"AWeekIsNotAPeriod", {"10", "WEEK"}, Error::kQuotaPeriod},
    {"SecondsAreNotAPeriod", {"10", "3600"}, Error::kQuotaPeriod},
    {"PluralIsNotAPeriod", {"10", "HOURS"}, Error::kQuotaPeriod},
    {"EmptyPeriod", {"10", ""}, Error::kQuotaPeriod},
    {"PeriodBeforeTokens", {"10", "YEAR", "0"}, Error::kQuotaPeriod},
    {"ZeroTokens", {"10", "DAY", "0"}, Error::kTokens},
    {"TokensPastInt64", {"10", "DAY", "9223372036854775808"}, Error::kTokens},
};

class QuotaArguments : public testing::TestWithParam<ArgsCase> {};

TEST_P(QuotaArguments, ParseToTheExpectedErrorOrQuota) {
  const auto& c = GetParam();
  const QuotaArgs args = ParseQuotaArgs(c.args, At(2024, 2, 10, 8));
  EXPECT_EQ(args.error, c.error);
  if (c.error != Error::kNone) return;
  EXPECT_EQ(args.limits.unit, c.unit);
  EXPECT_EQ(args.tokens, c.tokens);
  EXPECT_EQ(args.verbose, c.verbose);
  EXPECT_EQ(args.period.start_ms, PeriodAt(c.unit, At(2024, 2, 10, 8))->start_ms);
}

INSTANTIATE_TEST_SUITE_P(Args, QuotaArguments, testing::ValuesIn(kArgsCases),
                         testing_support::CaseName());

TEST(QuotaArguments, APeriodEndingPastTheInt64MaximumIsTooLarge) {
  const std::vector<std::string_view> args = {"10", "HOUR"};
  EXPECT_EQ(ParseQuotaArgs(args, kMax).error, Error::kPeriodTooLarge);
  EXPECT_EQ(ErrorReply(Error::kQuotaPeriod), "ERR period must be HOUR, DAY or MONTH");
}

}  // namespace
}  // namespace shield
