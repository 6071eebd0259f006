// The calendar quota behind SHIELD.quota, as pure arithmetic: no Redis, no clock, no time zone
// (every period is UTC, computed from days since the epoch). The caller passes the current time
// in and stores what comes out.
//
// "At most `limit` per UTC hour, day or month." Storage format: one string key per quota holding
// the decimal count of tokens taken in the period, with an absolute expiry at the period's end
// (the first millisecond of the next period), so the key disappears when the quota resets. A
// missing key is an unused quota.
//
// A key that outlives the current period's end (written with a longer period, or before the
// clock went back) keeps counting until its own expiry: a quota never forgets tokens early.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "core/bucket/bucket.hpp"
#include "core/common/args.hpp"
#include "core/common/reply.hpp"

namespace shield {

enum class CalendarUnit { kHour, kDay, kMonth };

inline constexpr int64_t kMsPerHour = 3'600'000;
inline constexpr int64_t kMsPerDay = 86'400'000;

// A date of the proleptic Gregorian calendar.
struct CivilDate {
  int64_t year;
  int64_t month;  // 1..12
  int64_t day;    // 1..31
  friend bool operator==(const CivilDate&, const CivilDate&) = default;
};

bool IsLeapYear(int64_t year) noexcept;
int64_t DaysInMonth(int64_t year, int64_t month) noexcept;

// Days since 1970-01-01 of a valid date, and back. Exact for every day an int64 count of
// milliseconds can name.
int64_t DaysFromCivil(const CivilDate& date) noexcept;
CivilDate CivilFromDays(int64_t days) noexcept;

// The UTC period holding an instant: [start_ms, end_ms), and its length.
struct CalendarPeriod {
  int64_t start_ms;   // clamped at the int64 minimum (only for instants near it)
  int64_t end_ms;     // the first millisecond of the next period
  int64_t length_ms;  // 3600000, 86400000, or 28..31 days
};

// The period of `unit` holding `now_ms`; nullopt when its end does not fit in int64.
std::optional<CalendarPeriod> PeriodAt(CalendarUnit unit, int64_t now_ms) noexcept;

// A validated quota: limit positive.
struct QuotaLimits {
  int64_t limit;
  CalendarUnit unit;
};

// The quota at one instant: tokens taken in the period (never below 0), and when they are
// forgotten (the key's expiry).
struct QuotaState {
  int64_t used;
  int64_t reset_at_ms;
};

// The quota at `now_ms` from what the key holds, read as a bucket key is ({0, kNoExpiry} for a
// missing key): a count whose expiry has come is 0; the count lives until the later of its
// expiry and the period's end.
QuotaState QuotaAt(const CalendarPeriod& period, const StoredBucket& stored,
                   int64_t now_ms) noexcept;

// Tokens that can still be taken: limit - used, never below 0.
int64_t QuotaRemaining(const QuotaLimits& limits, const QuotaState& state) noexcept;

struct QuotaDecision {
  bool allowed;
  QuotaState before;
  QuotaState after;  // equal to `before` when denied
};

QuotaDecision QuotaAbsorb(const QuotaLimits& limits, const CalendarPeriod& period,
                          const StoredBucket& stored, int64_t tokens, int64_t now_ms) noexcept;

// What to store: the count, expiring when the quota resets.
inline StoredBucket QuotaStore(const QuotaState& state) noexcept {
  return {state.used, state.reset_at_ms};
}

// The integer reply: tokens left after the take, or -1.
inline int64_t QuotaReply(const QuotaLimits& limits, const QuotaDecision& decision) noexcept {
  return decision.allowed ? QuotaRemaining(limits, decision.after) : kDeniedReply;
}

// The VERBOSE values: capacity is the limit, period the seconds of the current calendar period,
// reset_after_ms the time until the quota resets, retry_after_ms the same when denied (kNever
// when tokens > limit).
VerboseValues QuotaVerbose(const QuotaLimits& limits, const CalendarPeriod& period,
                           const QuotaDecision& decision, int64_t tokens, int64_t now_ms) noexcept;

// SHIELD.quota's arguments after the key: `<limit> HOUR|DAY|MONTH [<tokens>] [VERBOSE]`.
struct QuotaArgs {
  Error error = Error::kNone;
  QuotaLimits limits{};
  CalendarPeriod period{};  // the period holding now_ms
  int64_t tokens = kDefaultTokens;
  bool verbose = false;
  bool dry_run = false;  // DRYRUN: decide and reply, write nothing
};

// Structure first (a word where VERBOSE may stand that is not VERBOSE is kArity, VERBOSE twice
// is kSyntax), then values in order: limit, period (any case), tokens; then whether the period
// holding `now_ms` ends within int64 (kPeriodTooLarge).
QuotaArgs ParseQuotaArgs(std::span<const std::string_view> args, int64_t now_ms) noexcept;

}  // namespace shield
