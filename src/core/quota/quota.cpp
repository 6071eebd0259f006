#include "core/quota/quota.hpp"

#include <algorithm>
#include <limits>

#include "core/common/int_parse.hpp"
#include "core/common/numeric.hpp"

namespace shield {
namespace {

constexpr int64_t kInt64Min = std::numeric_limits<int64_t>::min();

// The Gregorian calendar repeats every 400 years: 146097 days. Years are counted from March, so
// that the leap day is the last day of its year; 719468 is the number of days from 0000-03-01 to
// 1970-01-01.
constexpr int64_t kDaysPerEra = 146'097;
constexpr int64_t kEpochShift = 719'468;

std::optional<CalendarUnit> ParseUnit(std::string_view text) noexcept {
  if (EqualsIgnoringCase(text, "HOUR")) return CalendarUnit::kHour;
  if (EqualsIgnoringCase(text, "DAY")) return CalendarUnit::kDay;
  if (EqualsIgnoringCase(text, "MONTH")) return CalendarUnit::kMonth;
  return std::nullopt;
}

// [start, start + length) for a period of fixed length, aligned on the epoch.
std::optional<CalendarPeriod> FixedPeriod(int64_t now_ms, int64_t length_ms) noexcept {
  const Int128 start = static_cast<Int128>(FloorDiv(now_ms, length_ms)) * length_ms;
  const Int128 end = start + length_ms;
  if (end > kInt64Max) return std::nullopt;
  return CalendarPeriod{static_cast<int64_t>(std::max<Int128>(start, kInt64Min)),
                        static_cast<int64_t>(end), length_ms};
}

std::optional<CalendarPeriod> MonthPeriod(int64_t now_ms) noexcept {
  const CivilDate today = CivilFromDays(FloorDiv(now_ms, kMsPerDay));
  const CivilDate first{today.year, today.month, 1};
  const CivilDate next = today.month == 12 ? CivilDate{today.year + 1, 1, 1}
                                           : CivilDate{today.year, today.month + 1, 1};
  const Int128 start = static_cast<Int128>(DaysFromCivil(first)) * kMsPerDay;
  const Int128 end = static_cast<Int128>(DaysFromCivil(next)) * kMsPerDay;
  if (end > kInt64Max) return std::nullopt;
  return CalendarPeriod{static_cast<int64_t>(std::max<Int128>(start, kInt64Min)),
                        static_cast<int64_t>(end), static_cast<int64_t>(end - start)};
}

}  // namespace

bool IsLeapYear(int64_t year) noexcept {
  return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
}

int64_t DaysInMonth(int64_t year, int64_t month) noexcept {
  constexpr int64_t kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month == 2 && IsLeapYear(year)) return 29;
  return kDays[month - 1];
}

int64_t DaysFromCivil(const CivilDate& date) noexcept {
  const int64_t year = date.month <= 2 ? date.year - 1 : date.year;  // years start in March
  const int64_t era = FloorDiv(year, 400);
  const int64_t year_of_era = year - era * 400;                                       // [0, 399]
  const int64_t month_from_march = date.month > 2 ? date.month - 3 : date.month + 9;  // [0, 11]
  const int64_t day_of_year = (153 * month_from_march + 2) / 5 + date.day - 1;        // [0, 365]
  const int64_t day_of_era =
      year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;  // [0, 146096]
  return era * kDaysPerEra + day_of_era - kEpochShift;
}

CivilDate CivilFromDays(int64_t days) noexcept {
  const int64_t shifted = days + kEpochShift;  // |days| < 2^37 for any int64 of milliseconds
  const int64_t era = FloorDiv(shifted, kDaysPerEra);
  const int64_t day_of_era = shifted - era * kDaysPerEra;  // [0, 146096]
  const int64_t year_of_era =
      (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
  const int64_t day_of_year =
      day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);  // [0, 365]
  const int64_t month_from_march = (5 * day_of_year + 2) / 153;                // [0, 11]
  const int64_t day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
  const int64_t month = month_from_march < 10 ? month_from_march + 3 : month_from_march - 9;
  const int64_t year = year_of_era + era * 400 + (month <= 2 ? 1 : 0);
  return {year, month, day};
}

std::optional<CalendarPeriod> PeriodAt(CalendarUnit unit, int64_t now_ms) noexcept {
  switch (unit) {
    case CalendarUnit::kHour:
      return FixedPeriod(now_ms, kMsPerHour);
    case CalendarUnit::kDay:
      return FixedPeriod(now_ms, kMsPerDay);
    case CalendarUnit::kMonth:
      return MonthPeriod(now_ms);
  }
  return std::nullopt;
}

QuotaState QuotaAt(const CalendarPeriod& period, const StoredBucket& stored,
                   int64_t now_ms) noexcept {
  if (stored.expire_at_ms == kNoExpiry) {
    return {std::max<int64_t>(stored.tokens, 0), period.end_ms};
  }
  // Redis keeps a key through its expiry's millisecond; the quota has reset by then.
  if (stored.expire_at_ms <= now_ms) return {0, period.end_ms};
  return {std::max<int64_t>(stored.tokens, 0), std::max(stored.expire_at_ms, period.end_ms)};
}

int64_t QuotaRemaining(const QuotaLimits& limits, const QuotaState& state) noexcept {
  return std::max<int64_t>(limits.limit - state.used, 0);  // both >= 0: no overflow
}

QuotaDecision QuotaAbsorb(const QuotaLimits& limits, const CalendarPeriod& period,
                          const StoredBucket& stored, int64_t tokens, int64_t now_ms) noexcept {
  const QuotaState before = QuotaAt(period, stored, now_ms);
  if (tokens > QuotaRemaining(limits, before)) return {false, before, before};
  return {true, before, {before.used + tokens, before.reset_at_ms}};  // <= limit: fits
}

VerboseValues QuotaVerbose(const QuotaLimits& limits, const CalendarPeriod& period,
                           const QuotaDecision& decision, int64_t tokens, int64_t now_ms) noexcept {
  const QuotaState& now = decision.allowed ? decision.after : decision.before;
  const int64_t reset_after_ms = MsUntil(now.reset_at_ms, now_ms);
  int64_t retry_after_ms = 0;
  if (!decision.allowed) retry_after_ms = tokens > limits.limit ? kNever : reset_after_ms;
  return {decision.allowed ? 1 : 0,
          QuotaRemaining(limits, now),
          limits.limit,
          period.length_ms / kMillisPerSecond,
          retry_after_ms,
          reset_after_ms};
}

QuotaArgs ParseQuotaArgs(std::span<const std::string_view> args, int64_t now_ms) noexcept {
  std::optional<CalendarUnit> unit;
  const LimitArgs common = ParseLimitArgs(args, [&unit](std::string_view text) {
    unit = ParseUnit(text);
    return unit ? Error::kNone : Error::kQuotaPeriod;
  });
  if (common.error != Error::kNone) return {common.error};
  const auto period = PeriodAt(*unit, now_ms);
  if (!period) return {Error::kPeriodTooLarge};
  return {Error::kNone,  {common.limit, *unit}, *period,
          common.tokens, common.verbose,        common.dry_run};
}

}  // namespace shield
