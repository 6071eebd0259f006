// The sliding window of SHIELD.window on a fake clock: window edges, the exact retry and reset
// times, the stated error bound on random and adversarial traffic, a clock that goes back, int64
// extremes, the stored text and the arguments.
#include "core/window/window.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "case_name.hpp"
#include "fake_store.hpp"

namespace shield {
namespace {

// A unix time on a whole hour, so every window of a divisor of an hour starts there.
constexpr int64_t kHourMs = 1'700'002'800'000;
static_assert(kHourMs % 3'600'000 == 0);

// One SHIELD.window key as Redis holds it: the text, and an expiry at which it disappears. Every
// write goes through the stored text, as in the module.
class FakeWindow {
 public:
  FakeWindow(int64_t limit, int64_t window_ms, int64_t now_ms = kHourMs)
      : limits_{limit, window_ms}, now_ms_(now_ms) {}

  // Replies like SHIELD.window: tokens left after the take, or -1.
  int64_t Take(int64_t tokens = 1) {
    const WindowDecision decision = WindowAbsorb(limits_, Read(), tokens, now_ms_);
    if (decision.allowed) Write(decision.after.state);
    return WindowReply(limits_, decision);
  }
  VerboseValues TakeVerbose(int64_t tokens = 1) {
    const WindowDecision decision = WindowAbsorb(limits_, Read(), tokens, now_ms_);
    if (decision.allowed) Write(decision.after.state);
    return WindowVerbose(limits_, decision, tokens, now_ms_);
  }
  WindowNow Now() { return WindowAt(limits_, Read(), now_ms_); }
  int64_t Remaining() { return WindowRemaining(limits_, Now()); }
  int64_t RetryAfter(int64_t tokens) { return WindowRetryAfterMs(limits_, Now(), tokens, now_ms_); }
  int64_t ResetAfter() { return WindowResetAfterMs(limits_, Now(), now_ms_); }

  void Advance(int64_t ms) { now_ms_ += ms; }
  void SetTime(int64_t ms) { now_ms_ = ms; }
  int64_t now_ms() const { return now_ms_; }
  const WindowLimits& limits() const { return limits_; }
  // As if a client had written the key (SET key text [PXAT expire_at]).
  void SetText(std::string text, std::optional<int64_t> expire_at = std::nullopt) {
    text_ = std::move(text);
    expire_at_ = expire_at;
  }
  std::optional<std::string> text() {
    Expire();
    return text_;
  }
  std::optional<int64_t> expire_at() const { return expire_at_; }

 private:
  std::optional<WindowState> Read() {
    Expire();
    if (!text_) return std::nullopt;
    auto state = ParseWindowState(*text_);
    EXPECT_TRUE(state.has_value()) << *text_;
    return state;
  }
  void Write(const WindowState& state) {
    char buffer[kWindowStateTextCapacity];
    text_ = std::string(buffer, FormatWindowState(state, buffer));
    expire_at_ = WindowExpireAt(limits_, state);
  }
  void Expire() {
    if (text_ && expire_at_ && *expire_at_ <= now_ms_) text_.reset();
  }

  WindowLimits limits_;
  int64_t now_ms_;
  std::optional<std::string> text_;
  std::optional<int64_t> expire_at_;
};

// --- window edges, step by step ------------------------------------------------------------------

struct Step {
  int64_t advance_ms;  // before the call
  int64_t tokens;
  int64_t reply;  // tokens left, or -1
};

struct EdgeCase {
  const char* name;
  int64_t limit;
  int64_t window_ms;
  int64_t start_offset_ms;  // the first call, after kHourMs
  std::vector<Step> steps;
};

void PrintTo(const EdgeCase& c, std::ostream* os) {
  *os << c.name;
}

const EdgeCase kEdgeCases[] = {
    {"TheLimitIsAdmittedAndOneMoreIsDenied", 10, 60'000, 0, {{0, 10, 0}, {0, 1, -1}}},
    {"TokensAreTakenTogetherOrNotAtAll", 10, 60'000, 0, {{0, 7, 3}, {0, 4, -1}, {0, 3, 0}}},
    {"AtTheNextWindowsFirstMillisecondThePreviousWindowWeighsFully",
     10,
     60'000,
     0,
     {{0, 10, 0}, {59'999, 1, -1}, {1, 1, -1}}},
    {"ThePreviousWindowFadesByTheShareOfItStillCovered",
     10,
     60'000,
     0,
     // 6 s into the next window 9 of the 10 still count (ceil(10 * 54 / 60)); at 12 s, 8.
     {{0, 10, 0}, {65'999, 1, -1}, {1, 1, 0}, {6'000, 1, 0}, {0, 1, -1}}},
    {"AWeightedCountIsRoundedUpSoRoundingNeverAdmits",
     3,
     60'000,
     0,
     // 1 ms into the next window the 3 weigh ceil(3 * 59999 / 60000) = 3: nothing fits; the
     // first third of a token frees only at 20 s.
     {{0, 3, 0}, {60'001, 1, -1}, {19'998, 1, -1}, {1, 1, 0}}},
    {"TheLastMillisecondOfAWindowStillCountsItsOwnTokensFully",
     5,
     1'000,
     0,
     {{0, 5, 0}, {999, 1, -1}}},
    {"TwoWindowsLaterEverythingIsForgotten",
     5,
     1'000,
     0,
     {{0, 5, 0}, {1'000, 2, -1}, {1'000, 5, 0}}},
    {"AFirstCallLateInItsWindowStillStartsOnTheMultiple",
     4,
     10'000,
     9'999,
     // The window started 9999 ms ago; one ms later the 4 weigh fully in the next window.
     {{0, 4, 0}, {1, 1, -1}, {2'500, 1, 0}}},
    {"TokensTakenWhileThePreviousWindowFadesCountFullyInTheirOwn",
     10,
     60'000,
     0,
     // 30 s into the next window the 6 weigh 3 and 7 fit; 15 s later the 6 weigh 2 and the 7
     // still weigh 7: one more fits.
     {{0, 6, 4}, {90'000, 7, 0}, {15'000, 2, -1}, {0, 1, 0}}},
};

class WindowEdges : public testing::TestWithParam<EdgeCase> {};

TEST_P(WindowEdges, RepliesFollowTheWeightedCount) {
  const auto& c = GetParam();
  FakeWindow key(c.limit, c.window_ms, kHourMs + c.start_offset_ms);
  for (std::size_t i = 0; i < c.steps.size(); ++i) {
    key.Advance(c.steps[i].advance_ms);
    EXPECT_EQ(key.Take(c.steps[i].tokens), c.steps[i].reply) << "step " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Steps, WindowEdges, testing::ValuesIn(kEdgeCases),
                         testing_support::CaseName());

TEST(WindowKey, HoldsStartPreviousAndCurrentAndExpiresTwoWindowsAfterTheStart) {
  FakeWindow key(10, 60'000, kHourMs + 12'345);
  EXPECT_EQ(key.Take(3), 7);
  EXPECT_EQ(key.text(), "1700002800000:0:3");
  EXPECT_EQ(key.expire_at(), kHourMs + 120'000);
  key.Advance(60'000);
  EXPECT_EQ(key.Take(2), 5);  // 3 * 47655 / 60000 = 2.38..., counted as 3
  EXPECT_EQ(key.text(), "1700002860000:3:2");
  EXPECT_EQ(key.expire_at(), kHourMs + 180'000);
}

TEST(WindowKey, ADeniedCallWritesNothing) {
  FakeWindow key(2, 60'000);
  key.Take(2);
  const auto text = key.text();
  const auto expire_at = key.expire_at();
  key.Advance(70'000);
  EXPECT_EQ(key.Take(1), -1);
  EXPECT_EQ(key.text(), text);
  EXPECT_EQ(key.expire_at(), expire_at);
}

// --- retry_after_ms and reset_after_ms are exact -------------------------------------------------

struct RateCase {
  const char* name;
  int64_t limit;
  int64_t window_ms;
  int64_t tokens;
};

void PrintTo(const RateCase& c, std::ostream* os) {
  *os << c.name;
}

const RateCase kRateCases[] = {
    {"OnePerSecond", 1, 1'000, 1},
    {"TenPerMinute", 10, 60'000, 1},
    {"TenPerMinuteTakingThree", 10, 60'000, 3},
    {"TenPerMinuteTakingAllTen", 10, 60'000, 10},
    {"SevenPerThreeSeconds", 7, 3'000, 2},
    {"ThousandPerSecond", 1'000, 1'000, 7},
    {"MillionPerSecond", 1'000'000, 1'000, 999},
    {"SixtyPerHour", 60, 3'600'000, 1},
    {"HugeLimit", kMax, 1'000, kMax / 3},
};

class WindowTiming : public testing::TestWithParam<RateCase> {};

TEST_P(WindowTiming, CallerThatWaitsRetryAfterIsAllowedAndNotOneMillisecondSooner) {
  const auto& c = GetParam();
  FakeWindow key(c.limit, c.window_ms);
  std::mt19937_64 rng(11);
  std::uniform_int_distribution<int64_t> jitter(0, c.window_ms + c.window_ms / 2);
  for (int round = 0; round < 200; ++round) {
    key.Advance(jitter(rng));
    while (key.Take(c.tokens) >= 0) {
    }
    const int64_t retry_ms = key.RetryAfter(c.tokens);
    ASSERT_GT(retry_ms, 0) << "round " << round;
    if (retry_ms > 1) {
      FakeWindow sooner = key;
      sooner.Advance(retry_ms - 1);
      ASSERT_EQ(sooner.Take(c.tokens), -1) << "round " << round << " retry " << retry_ms;
    }
    key.Advance(retry_ms);
    ASSERT_GE(key.Take(c.tokens), 0) << "round " << round << " retry " << retry_ms;
  }
}

TEST_P(WindowTiming, ResetAfterIsWhenTheWholeLimitIsFreeAgain) {
  const auto& c = GetParam();
  FakeWindow key(c.limit, c.window_ms);
  std::mt19937_64 rng(5);
  std::uniform_int_distribution<int64_t> jitter(0, c.window_ms * 2);
  for (int round = 0; round < 100; ++round) {
    key.Advance(jitter(rng));
    key.Take(c.tokens);
    const int64_t reset_ms = key.ResetAfter();
    if (reset_ms == 0) {
      ASSERT_EQ(key.Remaining(), c.limit);
      continue;
    }
    FakeWindow sooner = key;
    sooner.Advance(reset_ms - 1);
    ASSERT_LT(sooner.Remaining(), c.limit) << "round " << round;
    FakeWindow later = key;
    later.Advance(reset_ms);
    ASSERT_EQ(later.Remaining(), c.limit) << "round " << round;
    ASSERT_EQ(later.ResetAfter(), 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Rates, WindowTiming, testing::ValuesIn(kRateCases),
                         testing_support::CaseName());

TEST(WindowVerbose, AnAllowedCallReportsTheLimitTheWindowAndWhenAllIsFree) {
  FakeWindow key(10, 60'000, kHourMs + 15'000);
  EXPECT_EQ(key.TakeVerbose(3), (VerboseValues{1, 7, 10, 60, 0, 105'000}));
}

TEST(WindowVerbose, ADeniedCallReportsWhatIsLeftAndTheExactWait) {
  FakeWindow key(10, 60'000);
  key.Take(8);
  key.Advance(60'000);  // the 8 weigh fully: 2 left
  // 5 fit when ceil(8 * (60000 - e) / 60000) <= 5: e >= 22500.
  EXPECT_EQ(key.TakeVerbose(5), (VerboseValues{0, 2, 10, 60, 22'500, 60'000}));
}

TEST(WindowVerbose, MoreTokensThanTheLimitCanNeverBeTaken) {
  FakeWindow key(10, 60'000);
  EXPECT_EQ(key.TakeVerbose(11), (VerboseValues{0, 10, 10, 60, kNever, 0}));
  EXPECT_FALSE(key.text().has_value());
}

// --- the error bound -----------------------------------------------------------------------------

// The largest count admitted in any window of `window_ms` milliseconds [a, a + window_ms), over
// a list of (time, tokens) admissions in time order.
int64_t MaxInAnyWindow(const std::vector<std::pair<int64_t, int64_t>>& admitted,
                       int64_t window_ms) {
  int64_t best = 0;
  int64_t sum = 0;
  std::size_t first = 0;
  for (const auto& [at, tokens] : admitted) {
    sum += tokens;
    while (admitted[first].first <= at - window_ms) sum -= admitted[first++].second;
    best = std::max(best, sum);
  }
  return best;
}

// The bound of docs/design.md#the-sliding-windows-bound: 2 * limit - ceil(2 * limit / window_ms).
int64_t StatedBound(int64_t limit, int64_t window_ms) {
  return 2 * limit - (2 * limit + window_ms - 1) / window_ms;
}

struct TrafficCase {
  const char* name;
  int64_t limit;
  int64_t window_ms;
  int64_t max_gap_ms;   // between calls, uniform from 0
  int64_t max_tokens;   // per call, uniform from 1
  int64_t burst_every;  // every so many calls, a pause of about a window (0: never)
};

void PrintTo(const TrafficCase& c, std::ostream* os) {
  *os << c.name;
}

const TrafficCase kTrafficCases[] = {
    {"SteadyTrafficAboveTheLimit", 10, 1'000, 60, 1, 0},
    {"SparseTraffic", 10, 1'000, 400, 1, 0},
    {"BurstsAfterPauses", 20, 1'000, 30, 3, 50},
    {"LargeTakesAgainstASmallLimit", 5, 2'000, 300, 5, 7},
    {"ManyTokensPerSecond", 1'000, 1'000, 5, 40, 100},
    {"LimitAboveTheWindowInMilliseconds", 5'000, 1'000, 3, 500, 40},
};

class WindowErrorBound : public testing::TestWithParam<TrafficCase> {};

TEST_P(WindowErrorBound, RandomTrafficNeverExceedsTheStatedBoundInAnyRealWindow) {
  const auto& c = GetParam();
  FakeWindow key(c.limit, c.window_ms, kHourMs + 123);
  std::mt19937_64 rng(2024);
  std::uniform_int_distribution<int64_t> gap(0, c.max_gap_ms);
  std::uniform_int_distribution<int64_t> tokens(1, c.max_tokens);
  std::vector<std::pair<int64_t, int64_t>> admitted;
  std::vector<int64_t> per_fixed_window;
  for (int call = 0; call < 20'000; ++call) {
    key.Advance(gap(rng));
    if (c.burst_every != 0 && call % c.burst_every == 0) key.Advance(c.window_ms - gap(rng) % 50);
    const int64_t take = tokens(rng);
    if (key.Take(take) >= 0) admitted.emplace_back(key.now_ms(), take);
  }
  ASSERT_FALSE(admitted.empty());
  EXPECT_LE(MaxInAnyWindow(admitted, c.window_ms), StatedBound(c.limit, c.window_ms));
  // Each fixed window on a multiple of the window admits at most the limit.
  EXPECT_LE(MaxInAnyWindow(admitted, 1), c.limit);
  std::vector<std::pair<int64_t, int64_t>> by_fixed;
  by_fixed.reserve(admitted.size());
  for (const auto& [at, take] : admitted) {
    by_fixed.emplace_back(at - at % c.window_ms, take);
  }
  EXPECT_LE(MaxInAnyWindow(by_fixed, 1), c.limit);
}

INSTANTIATE_TEST_SUITE_P(Traffic, WindowErrorBound, testing::ValuesIn(kTrafficCases),
                         testing_support::CaseName());

struct BoundCase {
  const char* name;
  int64_t limit;
  int64_t window_ms;
};

void PrintTo(const BoundCase& c, std::ostream* os) {
  *os << c.name;
}

const BoundCase kBoundCases[] = {
    {"TenPerSecond", 10, 1'000},
    {"OnePerSecond", 1, 1'000},
    {"HundredPerMinute", 100, 60'000},
    {"LimitOfTheWindowInMilliseconds", 1'000, 1'000},
    {"LimitAboveTheWindowInMilliseconds", 2'500, 1'000},
};

class WindowWorstCase : public testing::TestWithParam<BoundCase> {};

TEST_P(WindowWorstCase, TheWholeLimitAtTheLastMillisecondThenTheMostAllowedReachesTheBound) {
  const auto& c = GetParam();
  const int64_t window = c.window_ms;
  FakeWindow key(c.limit, window, kHourMs + window - 1);  // the last ms of a window
  ASSERT_EQ(key.Take(c.limit), 0);
  key.Advance(window - 1);  // 2 ms before the next window ends, still in [start - 1, start + W - 1)
  const int64_t more = key.Remaining();
  EXPECT_EQ(more, c.limit - (2 * c.limit + window - 1) / window);
  if (more > 0) {
    ASSERT_EQ(key.Take(more), 0);
  }
  EXPECT_EQ(c.limit + more, StatedBound(c.limit, window));
  const std::vector<std::pair<int64_t, int64_t>> admitted = {{kHourMs + window - 1, c.limit},
                                                             {key.now_ms(), more}};
  EXPECT_EQ(MaxInAnyWindow(admitted, window), StatedBound(c.limit, window));
}

INSTANTIATE_TEST_SUITE_P(Limits, WindowWorstCase, testing::ValuesIn(kBoundCases),
                         testing_support::CaseName());

class WindowEvenTraffic : public testing::TestWithParam<int64_t> {};

TEST_P(WindowEvenTraffic, AtTheLimitsRateLosesAtMostOneCallPerWindowAndNoneWithOneMoreToken) {
  // One call every 100 ms, the first `offset` ms into a window: a real sliding window of 1 s
  // holds 10 calls. The weighted count rounds the previous window's share up, so with a limit of
  // 10 a call may be denied once per window; a limit of 11 admits them all.
  const int64_t offset = GetParam();
  FakeWindow exact(10, 1'000, kHourMs + offset);
  FakeWindow headroom(11, 1'000, kHourMs + offset);
  int denied = 0;
  for (int call = 0; call < 1'000; ++call) {
    if (exact.Take(1) < 0) ++denied;
    ASSERT_GE(headroom.Take(1), 0) << "call " << call;
    exact.Advance(100);
    headroom.Advance(100);
  }
  EXPECT_LE(denied, 100);  // 100 windows
}

std::string OffsetName(const testing::TestParamInfo<int64_t>& info) {
  return "FirstCall" + std::to_string(info.param) + "MsIntoAWindow";
}

INSTANTIATE_TEST_SUITE_P(Offsets, WindowEvenTraffic, testing::Values(0, 1, 37, 50, 99), OffsetName);

// --- the clock going back ------------------------------------------------------------------------

TEST(WindowClock, AClockThatGoesBackBeforeTheStartForgetsNothing) {
  FakeWindow key(10, 60'000, kHourMs + 30'000);
  EXPECT_EQ(key.Take(4), 6);
  key.SetTime(kHourMs - 45'000);  // 75 s back, into the window before the stored one
  EXPECT_EQ(key.Remaining(), 6);
  EXPECT_EQ(key.Take(1), 5);
  EXPECT_EQ(key.text(), "1700002800000:0:5");  // the start does not move back
  // Retry and reset count from the stored timeline.
  EXPECT_EQ(key.ResetAfter(), 45'000 + 120'000);
  EXPECT_EQ(key.Take(6), -1);
  EXPECT_EQ(key.RetryAfter(6), 45'000 + 60'000 + 12'000);  // the 5 weigh 1 at 48 s in
}

TEST(WindowClock, AClockThatGoesBackWithinTheWindowCountsFromTheStart) {
  FakeWindow key(10, 60'000, kHourMs + 90'000);
  key.Take(10);  // window [kHourMs + 60000, +120000)
  key.Advance(-20'000);
  EXPECT_EQ(key.Take(1), -1);
  EXPECT_EQ(key.text(), "1700002860000:0:10");
}

// --- int64 extremes ------------------------------------------------------------------------------

TEST(WindowExtremes, TheLargestLimitAndTokensTakeEverythingWithoutOverflow) {
  FakeWindow key(kMax, 1'000);
  EXPECT_EQ(key.Take(kMax), 0);
  EXPECT_EQ(key.Take(1), -1);
  key.Advance(1'000);  // the previous window holds 2^63 - 1, weighted fully
  EXPECT_EQ(key.Take(1), -1);
  key.Advance(500);
  EXPECT_EQ(key.Remaining(), kMax / 2);  // ceil((2^63 - 1) / 2) still counted
  EXPECT_EQ(key.RetryAfter(kMax), 500);
}

TEST(WindowExtremes, StoredCountsAtTheInt64MaximumDenyWithoutOverflow) {
  FakeWindow key(10, 60'000);
  key.SetText("1700002800000:9223372036854775807:9223372036854775807");
  EXPECT_EQ(key.Remaining(), 0);
  EXPECT_EQ(key.Take(1), -1);
  EXPECT_EQ(key.RetryAfter(1), 120'000);  // both counts out after two windows
  EXPECT_EQ(key.ResetAfter(), 120'000);
}

TEST(WindowExtremes, NegativeStoredCountsReadAsZero) {
  FakeWindow key(10, 60'000);
  key.SetText("1700002800000:-5:-9223372036854775808");
  EXPECT_EQ(key.Take(1), 9);
  EXPECT_EQ(key.text(), "1700002800000:0:1");
}

TEST(WindowExtremes, AStartAtTheInt64MinimumIsLongGone) {
  FakeWindow key(10, 60'000);
  key.SetText("-9223372036854775808:10:10");
  EXPECT_EQ(key.Take(1), 9);
  EXPECT_EQ(key.text(), "1700002800000:0:1");
}

TEST(WindowExtremes, AStartAtTheInt64MaximumIsAClockGoneBackAndTheExpirySaturates) {
  FakeWindow key(10, 60'000);
  key.SetText("9223372036854775807:0:3");
  EXPECT_EQ(key.Take(1), 6);
  EXPECT_EQ(key.text(), "9223372036854775807:0:4");
  EXPECT_EQ(key.expire_at(), kMax);
  EXPECT_EQ(key.ResetAfter(), kMax - kHourMs + 120'000);  // no overflow
}

TEST(WindowExtremes, TimesAtBothEndsOfInt64) {
  const int64_t min = std::numeric_limits<int64_t>::min();
  FakeWindow early(3, 1'000, min + 5);
  EXPECT_EQ(early.Take(2), 1);
  EXPECT_EQ(early.text(), "-9223372036854775808:0:2");  // the aligned start is clamped
  EXPECT_TRUE(WindowExpiryFits(kMax - 2'000, 1'000));
  EXPECT_FALSE(WindowExpiryFits(kMax - 1'999, 1'000));
  EXPECT_FALSE(WindowExpiryFits(0, kMaxPeriodSeconds * 1'000));
  FakeWindow late(3, 1'000, kMax - 2'000);
  EXPECT_EQ(late.Take(3), 0);
  EXPECT_LE(*late.expire_at(), kMax);
}

// --- the stored text -----------------------------------------------------------------------------

struct TextCase {
  const char* name;
  std::string_view text;
  std::optional<WindowState> state;
};

void PrintTo(const TextCase& c, std::ostream* os) {
  *os << c.name;
}

const TextCase kTextCases[] = {
    {"ThreeNumbers", "1700002800000:3:5", WindowState{1'700'002'800'000, 3, 5}},
    {"Zeros", "0:0:0", WindowState{0, 0, 0}},
    {"LeadingZerosAndSigns", "+01:-0:007", WindowState{1, 0, 7}},
    {"Int64Extremes", "-9223372036854775808:9223372036854775807:9223372036854775807",
     WindowState{std::numeric_limits<int64_t>::min(), kMax, kMax}},
    {"TwoNumbers", "1:2", std::nullopt},
    {"FourNumbers", "1:2:3:4", std::nullopt},
    {"OneNumber", "17", std::nullopt},
    {"Empty", "", std::nullopt},
    {"EmptyParts", "::", std::nullopt},
    {"TrailingColon", "1:2:3:", std::nullopt},
    {"Spaces", "1: 2:3", std::nullopt},
    {"Decimal", "1:2.5:3", std::nullopt},
    {"PastInt64", "1:2:9223372036854775808", std::nullopt},
    {"Words", "start:prev:cur", std::nullopt},
};

class WindowText : public testing::TestWithParam<TextCase> {};

TEST_P(WindowText, ReadsAsTheStateOrIsInvalid) {
  const auto& c = GetParam();
  const auto state = ParseWindowState(c.text);
  ASSERT_EQ(state.has_value(), c.state.has_value());
  if (!state) return;
  EXPECT_EQ(state->start_ms, c.state->start_ms);
  EXPECT_EQ(state->previous, c.state->previous);
  EXPECT_EQ(state->current, c.state->current);
  char buffer[kWindowStateTextCapacity];
  const auto again = ParseWindowState({buffer, FormatWindowState(*state, buffer)});
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->start_ms, state->start_ms);
  EXPECT_EQ(again->current, state->current);
}

INSTANTIATE_TEST_SUITE_P(Texts, WindowText, testing::ValuesIn(kTextCases),
                         testing_support::CaseName());

TEST(WindowText, TheLongestStateFitsItsBuffer) {
  char buffer[kWindowStateTextCapacity];
  const WindowState longest{std::numeric_limits<int64_t>::min(),
                            std::numeric_limits<int64_t>::min(),
                            std::numeric_limits<int64_t>::min()};
  EXPECT_EQ(FormatWindowState(longest, buffer), 3 * 20 + 2);
}

// --- arguments -----------------------------------------------------------------------------------

struct ArgsCase {
  const char* name;
  std::vector<std::string_view> args;  // after the key
  Error error;
  int64_t tokens = 1;
  bool verbose = false;
};

void PrintTo(const ArgsCase& c, std::ostream* os) {
  *os << c.name;
}

const ArgsCase kArgsCases[] = {
    {"LimitAndWindowAreEnough", {"10", "60"}, Error::kNone},
    {"TokensAreOptional", {"10", "60", "3"}, Error::kNone, 3},
    {"VerboseWithoutTokens", {"10", "60", "verbose"}, Error::kNone, 1, true},
    {"TokensThenVerbose", {"10", "60", "4", "VERBOSE"}, Error::kNone, 4, true},
    {"OneArgumentIsTooFew", {"10"}, Error::kArity},
    {"AnExtraWordIsAnArityError", {"10", "60", "1", "extra"}, Error::kArity},
    {"TwoTokenCountsAreAnArityError", {"10", "60", "1", "2"}, Error::kArity},
    {"TokensAfterVerboseAreAnArityError", {"10", "60", "VERBOSE", "2"}, Error::kArity},
    {"VerboseTwiceIsASyntaxError", {"10", "60", "VERBOSE", "verbose"}, Error::kSyntax},
    {"ZeroLimit", {"0", "60"}, Error::kLimit},
    {"NegativeLimit", {"-1", "60"}, Error::kLimit},
    {"ZeroPaddedLimit", {"010", "60"}, Error::kLimit},
    {"LimitPastInt64", {"9223372036854775808", "60"}, Error::kLimit},
    {"LimitIsCheckedFirst", {"0", "0", "0"}, Error::kLimit},
    {"ZeroWindow", {"10", "0"}, Error::kWindow},
    {"DecimalWindow", {"10", "1.5"}, Error::kWindow},
    {"WindowBeforeTokens", {"10", "0", "0"}, Error::kWindow},
    {"ZeroTokens", {"10", "60", "0"}, Error::kTokens},
    {"WordTokens", {"10", "60", "all"}, Error::kTokens},
    {"TokensBeforeTheWindowsSize", {"10", "9223372036854775807", "0"}, Error::kTokens},
    {"WindowPastInt64Milliseconds", {"10", "9223372036854776"}, Error::kWindowTooLarge},
    {"TwoWindowsPastTheLargestExpiry", {"10", "4611686018427387"}, Error::kWindowTooLarge},
    {"AHundredYearWindowFits", {"10", "3155760000"}, Error::kNone},
};

class WindowArguments : public testing::TestWithParam<ArgsCase> {};

TEST_P(WindowArguments, ParseToTheExpectedErrorOrLimits) {
  const auto& c = GetParam();
  const WindowArgs args = ParseWindowArgs(c.args, kHourMs);
  EXPECT_EQ(args.error, c.error);
  if (c.error != Error::kNone) return;
  EXPECT_EQ(args.tokens, c.tokens);
  EXPECT_EQ(args.verbose, c.verbose);
  EXPECT_EQ(args.limits.window_ms, 1'000 * std::stoll(std::string(c.args[1])));
}

INSTANTIATE_TEST_SUITE_P(Args, WindowArguments, testing::ValuesIn(kArgsCases),
                         testing_support::CaseName());

TEST(WindowArguments, ErrorRepliesNameTheArgument) {
  EXPECT_EQ(ErrorReply(Error::kLimit), "ERR limit must be positive");
  EXPECT_EQ(ErrorReply(Error::kWindow), "ERR window must be positive");
  EXPECT_EQ(ErrorReply(Error::kWindowTooLarge), "ERR window value too large");
  EXPECT_EQ(ErrorReply(Error::kInvalidWindow), "ERR invalid sliding window state in Redis");
}

}  // namespace
}  // namespace shield
