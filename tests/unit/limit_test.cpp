// SHIELD.limit's core (core/limit/): parsing a call, and the call's decision over policies of
// every algorithm, against each algorithm's own Decide as the model.
#include "core/limit/limit.hpp"

#include <gtest/gtest.h>

#include <array>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "case_name.hpp"
#include "core/bucket/bucket_policy.hpp"
#include "core/gcra/gcra_policy.hpp"
#include "core/quota/quota_policy.hpp"
#include "core/window/window_policy.hpp"
#include "fake_store.hpp"

namespace shield::limit {
namespace {

constexpr int64_t kNowMs = 1'700'000'000'000;
constexpr int64_t kNowNs = kNowMs * kNanosPerMilli;

struct Parsed {
  ParseError error;
  std::vector<Policy> policies;
  Options options;
};

Parsed Parse(const std::vector<std::string_view>& words, std::size_t count) {
  Parsed parsed;
  parsed.policies.resize(count);
  std::vector<std::string_view> names(count);
  parsed.error = ParsePolicies(words, parsed.policies, names, parsed.options, kNowMs, kNowNs);
  return parsed;
}

TEST(ParsePolicies, ReadsEveryAlgorithmWithItsOptionsAndTheCallsOptions) {
  const auto parsed =
      Parse({"ip",  "bucket", "5",    "1",   "BURST", "10",     "g",       "GCRA",
             "30",  "60",     "COST", "2",   "w",     "WINDOW", "100",     "60",
             "day", "QUOTA",  "1000", "day", "COST",  "0",      "headers", "DRYRUN"},
            4);
  ASSERT_EQ(parsed.error.error, Error::kNone);
  EXPECT_EQ(parsed.policies[0].algorithm, Algorithm::kBucket);
  EXPECT_EQ(parsed.policies[0].bucket.max_tokens, 10);
  EXPECT_EQ(parsed.policies[1].algorithm, Algorithm::kGcra);
  EXPECT_EQ(parsed.policies[1].cost, 2);
  EXPECT_EQ(parsed.policies[2].window.window_ms, 60'000);
  EXPECT_EQ(parsed.policies[3].cost, 0);
  EXPECT_TRUE(parsed.options.headers && parsed.options.dry_run && !parsed.options.refund);
}

struct BadCase {
  const char* name;
  std::vector<std::string_view> words;
  std::size_t count;
  Error error;
  std::size_t policy;
};

// gtest prints a parameter it cannot name byte by byte, padding included.
void PrintTo(const BadCase& c, std::ostream* os) {
  *os << c.name;
}

class BadPolicies : public testing::TestWithParam<BadCase> {};

TEST_P(BadPolicies, AreRefusedNamingThePolicyWhereThereIsOne) {
  const auto& c = GetParam();
  const auto parsed = Parse(c.words, c.count);
  EXPECT_EQ(parsed.error.error, c.error);
  EXPECT_EQ(parsed.error.policy, c.policy);
}

const BadCase kBadCases[] = {
    {"AZeroCapacity", {"p", "BUCKET", "0", "1"}, 1, Error::kCapacity, 0},
    {"AnUnknownAlgorithm", {"p", "LEAKY", "1", "1"}, 1, Error::kAlgorithm, 0},
    {"AKeywordAsAName", {"Refund", "BUCKET", "1", "1"}, 1, Error::kPolicyName, SIZE_MAX},
    {"ANameTooLong",
     {std::string_view("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
      "BUCKET", "1", "1"},
     1,
     Error::kPolicyName,
     SIZE_MAX},
    {"TheSameNameTwice",
     {"p", "BUCKET", "1", "1", "p", "QUOTA", "1", "DAY"},
     2,
     Error::kDuplicatePolicy,
     SIZE_MAX},
    {"BurstOnAWindow", {"p", "WINDOW", "1", "1", "BURST", "2"}, 1, Error::kSyntax, SIZE_MAX},
    {"CostAndSettleTogether",
     {"p", "BUCKET", "1", "1", "COST", "1", "SETTLE", "1", "2"},
     1,
     Error::kSyntax,
     0},
    {"ANegativeSettlement",
     {"p", "GCRA", "1", "1", "SETTLE", "-1", "2"},
     1,
     Error::kSettleAmount,
     0},
    {"SettleWithRefund",
     {"p", "BUCKET", "1", "1", "SETTLE", "1", "2", "REFUND"},
     1,
     Error::kSyntax,
     0},
    {"AnOptionTwice", {"p", "BUCKET", "1", "1", "HEADERS", "headers"}, 1, Error::kSyntax, SIZE_MAX},
    {"AQuotaOfAWeek", {"p", "QUOTA", "1", "WEEK"}, 1, Error::kQuotaPeriod, 0},
};

INSTANTIATE_TEST_SUITE_P(Limit, BadPolicies, testing::ValuesIn(kBadCases),
                         testing_support::CaseName());

TEST(ParseShape, CountsTheKeysAndRefusesTooFewWords) {
  const std::vector<std::string_view> two_keys = {"2", "a", "b",      "x", "BUCKET", "1",
                                                  "1", "y", "BUCKET", "1", "1"};
  EXPECT_EQ(ParseShape(two_keys).keys, 2u);
  const std::vector<std::string_view> short_call = {"2", "a", "b", "x", "BUCKET", "1", "1"};
  EXPECT_EQ(ParseShape(short_call).error, Error::kArity);
  const std::vector<std::string_view> zero = {"0", "a", "x", "BUCKET", "1", "1"};
  EXPECT_EQ(ParseShape(zero).error, Error::kNumkeys);
}

// ---- the call over every pair of algorithms
// ------------------------------------------------------

// A policy of each algorithm with a limit of 2, and what its key holds when the limit is full
// (a fresh key) or used up (a call of 2 already taken, as the algorithm's own command leaves it).
Policy PolicyOf(Algorithm algorithm) {
  Policy policy;
  policy.name = kAlgorithmNames[static_cast<std::size_t>(algorithm)];
  policy.algorithm = algorithm;
  policy.bucket = PlainLimits(2, 3'600'000);
  policy.gcra = *GcraLimitsOf(policy.bucket);
  policy.window = {2, 3'600'000};
  policy.quota = {2, CalendarUnit::kMonth};
  policy.period = *PeriodAt(CalendarUnit::kMonth, kNowMs);
  return policy;
}

using Held = StoredString;

Held UsedUp(const Policy& policy) {
  Held held;
  Options take;
  Policy two = policy;
  two.cost = 2;
  held.Apply(Decide(two, held.View(), take, kNowMs, kNowNs));
  return held;
}

// The model: each algorithm's own Decide, as its own command would call it.
Outcome Alone(const Policy& policy, const Held& held, Operation operation) {
  switch (policy.algorithm) {
    case Algorithm::kBucket:
      return bucket::Decide(policy.bucket, held.View(), operation, policy.cost, kNowMs,
                            Detail::kFull);
    case Algorithm::kGcra:
      return gcra::Decide(policy.gcra, held.View(), operation, policy.cost, kNowNs, Detail::kFull,
                          Error::kGcraInvalidStored);
    case Algorithm::kWindow:
      return window::Decide(policy.window, held.View(), operation, policy.cost, kNowMs,
                            Detail::kFull);
    case Algorithm::kQuota:
      return quota::Decide(policy.quota, policy.period, held.View(), operation, policy.cost, kNowMs,
                           Detail::kFull);
  }
  return {};
}

struct Pair {
  Algorithm first;
  bool first_used_up;
  Algorithm second;
  bool second_used_up;
};

std::vector<Pair> EveryPair() {
  std::vector<Pair> pairs;
  for (std::size_t a = 0; a < kAlgorithmNames.size(); ++a) {
    for (std::size_t b = 0; b < kAlgorithmNames.size(); ++b) {
      for (const bool a_used : {false, true}) {
        for (const bool b_used : {false, true}) {
          pairs.push_back({static_cast<Algorithm>(a), a_used, static_cast<Algorithm>(b), b_used});
        }
      }
    }
  }
  return pairs;
}

void PrintTo(const Pair& p, std::ostream* os) {
  *os << kAlgorithmNames[static_cast<std::size_t>(p.first)] << (p.first_used_up ? " used up" : "")
      << " and " << kAlgorithmNames[static_cast<std::size_t>(p.second)]
      << (p.second_used_up ? " used up" : "");
}

class EveryPairOfAlgorithms : public testing::TestWithParam<Pair> {};

TEST_P(EveryPairOfAlgorithms, IsAllowedOnlyWhenBothAreAndDecidesEachAsItsOwnCommandWould) {
  const Pair& pair = GetParam();
  const std::array policies = {PolicyOf(pair.first), PolicyOf(pair.second)};
  const std::array held = {pair.first_used_up ? UsedUp(policies[0]) : Held{},
                           pair.second_used_up ? UsedUp(policies[1]) : Held{}};
  for (const Options options : {Options{}, Options{.dry_run = true}, Options{.refund = true}}) {
    std::array<Outcome, 2> outcomes;
    for (std::size_t i = 0; i < 2; ++i) {
      outcomes[i] = Decide(policies[i], held[i].View(), options, kNowMs, kNowNs);
      const Operation operation = options.refund    ? Operation::kGive
                                  : options.dry_run ? Operation::kPeek
                                                    : Operation::kTake;
      const Outcome model = Alone(policies[i], held[i], operation);
      EXPECT_EQ(outcomes[i].allowed, model.allowed);
      EXPECT_EQ(outcomes[i].write, model.write);
      EXPECT_EQ(outcomes[i].Text(), model.Text());
      EXPECT_EQ(outcomes[i].committed.remaining, model.committed.remaining);
      EXPECT_EQ(outcomes[i].retry_after_ms, model.retry_after_ms);
      EXPECT_LE(outcomes[i].committed.remaining, outcomes[i].quota);
    }
    const CallDecision call = DecideCall(policies, outcomes, options);
    const bool both = options.refund || (!pair.first_used_up && !pair.second_used_up);
    EXPECT_EQ(call.allowed, both);
    EXPECT_EQ(call.write, both && !options.dry_run);
    EXPECT_EQ(call.counted, !options.refund && !options.dry_run);
    EXPECT_EQ(call.taken, call.write && !options.refund ? 2u : 0u);
    if (!call.allowed) {
      int64_t longest = 0;
      for (const Outcome& outcome : outcomes) {
        if (!outcome.allowed) longest = std::max(longest, outcome.retry_after_ms);
      }
      EXPECT_EQ(call.retry_after_ms, longest);
      EXPECT_GT(call.retry_after_ms, 0);
    } else {
      EXPECT_EQ(call.retry_after_ms, 0);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Limit, EveryPairOfAlgorithms, testing::ValuesIn(EveryPair()),
                         [](const auto& test_info) {
                           const Pair& p = test_info.param;
                           auto part = [](Algorithm algorithm, bool used) {
                             std::string name(kAlgorithmNames[static_cast<std::size_t>(algorithm)]);
                             return (used ? "UsedUp" : "Fresh") +
                                    std::string(1, static_cast<char>(name[0] - 'a' + 'A')) +
                                    name.substr(1);
                           };
                           return part(p.first, p.first_used_up) + "And" +
                                  part(p.second, p.second_used_up);
                         });

TEST(DecideCall, ACallThatCanNeverBeAllowedSaysNever) {
  const std::array policies = {PolicyOf(Algorithm::kBucket), PolicyOf(Algorithm::kQuota)};
  std::array<Policy, 2> costly = policies;
  costly[0].cost = 3;  // more than the bucket ever holds
  std::array<Outcome, 2> outcomes;
  for (std::size_t i = 0; i < 2; ++i) outcomes[i] = Decide(costly[i], {}, {}, kNowMs, kNowNs);
  EXPECT_EQ(DecideCall(costly, outcomes, {}).retry_after_ms, kNever);
}

TEST(FormatHeaderItem, WritesAStructuredFieldItemWithItsSeparator) {
  char text[kMaxHeaderItemLength];
  std::size_t len = FormatHeaderItem(text, true, "ip", 'q', 10, 'w', 2);
  EXPECT_EQ(std::string_view(text, len), "\"ip\";q=10;w=2");
  len = FormatHeaderItem(text, false, "day", 'r', 999, 't', 3600);
  EXPECT_EQ(std::string_view(text, len), ", \"day\";r=999;t=3600");
}

}  // namespace
}  // namespace shield::limit
