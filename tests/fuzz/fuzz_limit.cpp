// SHIELD.limit and SHIELD.settle's core: calls decoded from the fuzz input (any number of keys,
// policies of every algorithm with BURST, COST and SETTLE, options, names that are keywords or
// junk, keys holding another algorithm's value or junk) are parsed and decided, and settlements
// run over a bucket's history with the clock moving. After every step:
//   - each policy's Outcome is its algorithm's own Decide for the same operation (the model of a
//     policy is its own command), and remaining never passes the policy's limit;
//   - the call is allowed exactly when every policy is, writes only then (and never in a dry run),
//     and its wait is the longest of the refusing policies' (never when one can never allow);
//   - a settlement gives back exactly what the bucket lacked of its maximum, takes exactly what it
//     holds, owes at most one period's refill, and reads back as the balance it replied;
// and the sanitizers watch for undefined behaviour.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/bucket/bucket_policy.hpp"
#include "core/gcra/gcra_policy.hpp"
#include "core/limit/limit.hpp"
#include "core/quota/quota_policy.hpp"
#include "core/window/window_policy.hpp"
#include "fuzz_common.hpp"

namespace shield_fuzz {
namespace {

using shield::Error;
using shield::Operation;
using shield::Outcome;
using shield::StoredValue;
namespace limit = shield::limit;

constexpr std::array<std::string_view, 8> kNames = {"ip",     "day", "a-b_9", "COST",
                                                    "settle", "x y", "",      "ip"};
constexpr std::array<std::string_view, 6> kAlgorithms = {"BUCKET", "gcra",  "Window",
                                                         "QUOTA",  "LEAKY", "1"};
constexpr std::array<std::string_view, 5> kOptions = {"DRYRUN", "HEADERS", "REFUND", "headers",
                                                      "FAST"};
constexpr std::array<std::string_view, 4> kUnits = {"HOUR", "day", "MONTH", "WEEK"};

Outcome Own(const limit::Policy& policy, const StoredValue& stored, Operation operation,
            int64_t tokens, int64_t now_ms, int64_t now_ns) {
  switch (policy.algorithm) {
    case limit::Algorithm::kBucket:
      return shield::bucket::Decide(policy.bucket, stored, operation, tokens, now_ms,
                                    shield::Detail::kFull);
    case limit::Algorithm::kGcra:
      return shield::gcra::Decide(policy.gcra, stored, operation, tokens, now_ns,
                                  shield::Detail::kFull, Error::kGcraInvalidStored);
    case limit::Algorithm::kWindow:
      return shield::window::Decide(policy.window, stored, operation, tokens, now_ms,
                                    shield::Detail::kFull);
    case limit::Algorithm::kQuota:
      return shield::quota::Decide(policy.quota, policy.period, stored, operation, tokens, now_ms,
                                   shield::Detail::kFull);
  }
  return {};
}

// One SHIELD.limit call: words, parse, decide against stored values, check.
void FuzzCall(FuzzedDataProvider& fdp, int64_t now_ms) {
  const int64_t now_ns = now_ms * shield::kNanosPerMilli;
  std::vector<std::string> owned;
  owned.reserve(64);
  const std::size_t keys = fdp.ConsumeIntegralInRange<std::size_t>(1, 3);
  std::vector<std::string_view> words;
  for (std::size_t p = 0; p < keys; ++p) {
    words.push_back(kNames[fdp.ConsumeIntegralInRange<std::size_t>(0, kNames.size() - 1)]);
    const std::size_t algorithm =
        fdp.ConsumeIntegralInRange<std::size_t>(0, kAlgorithms.size() - 1);
    words.push_back(kAlgorithms[algorithm]);
    owned.push_back(Str(Interesting(fdp, -2, kInt64Max)));
    words.push_back(owned.back());
    if (algorithm == 3) {
      words.push_back(kUnits[fdp.ConsumeIntegralInRange<std::size_t>(0, kUnits.size() - 1)]);
    } else {
      owned.push_back(Str(Interesting(fdp, -2, kInt64Max)));
      words.push_back(owned.back());
    }
    while (fdp.ConsumeBool() && words.size() < 40) {
      switch (fdp.ConsumeIntegralInRange<int>(0, 2)) {
        case 0:
          words.push_back("BURST");
          break;
        case 1:
          words.push_back("COST");
          break;
        default:
          words.push_back("SETTLE");
          owned.push_back(Str(Interesting(fdp, -1, 1'000'000)));
          words.push_back(owned.back());
          break;
      }
      owned.push_back(Str(Interesting(fdp, -1, kInt64Max)));
      words.push_back(owned.back());
    }
  }
  while (fdp.ConsumeBool() && words.size() < 48) {
    words.push_back(kOptions[fdp.ConsumeIntegralInRange<std::size_t>(0, kOptions.size() - 1)]);
  }
  Trace().push_back("call: " + Words(words));

  std::vector<limit::Policy> policies(keys);
  std::vector<std::string_view> names(keys);
  limit::Options options;
  const limit::ParseError parsed =
      limit::ParsePolicies(words, policies, names, options, now_ms, now_ns);
  if (parsed.error != Error::kNone) {
    Check(parsed.policy == SIZE_MAX || parsed.policy < keys,
          "the error names a policy of the call");
    return;
  }

  // What each key holds: nothing, a value its own command wrote a moment ago, or junk.
  std::vector<std::string> values(keys);
  std::vector<StoredValue> stored(keys);
  for (std::size_t p = 0; p < keys; ++p) {
    const int kind = fdp.ConsumeIntegralInRange<int>(0, 2);
    if (kind == 1) {
      const int64_t earlier = now_ms - Interesting(fdp, 0, 3'600'000);
      const Outcome written = Own(policies[p], {}, Operation::kTake, Interesting(fdp, 1, 1'000'000),
                                  earlier, earlier * shield::kNanosPerMilli);
      if (written.write == shield::KeyWrite::kStore && written.expire_at_ms > now_ms) {
        values[p] = std::string(written.Text());
        stored[p] = {true, values[p], written.expire_at_ms};
      }
    } else if (kind == 2) {
      values[p] = fdp.ConsumeRandomLengthString(24);
      stored[p] = {true, values[p], fdp.ConsumeBool() ? shield::kNoExpiry : now_ms + 1'000};
    }
  }

  std::vector<Outcome> outcomes(keys);
  for (std::size_t p = 0; p < keys; ++p) {
    outcomes[p] = limit::Decide(policies[p], stored[p], options, now_ms, now_ns);
    const Outcome& outcome = outcomes[p];
    if (outcome.error != Error::kNone) return;  // the call replies the error and writes nothing
    Operation operation = Operation::kTake;
    int64_t tokens = policies[p].cost;
    if (policies[p].settle) {
      operation = Operation::kSettle;
      tokens = policies[p].settle_delta;
    } else if (options.refund) {
      operation = Operation::kGive;
    } else if (options.dry_run || policies[p].cost == 0) {
      operation = Operation::kPeek;
    }
    const Outcome model = Own(policies[p], stored[p], operation, tokens, now_ms, now_ns);
    Check(outcome.allowed == model.allowed && outcome.write == model.write &&
              outcome.Text() == model.Text() && outcome.expire_at_ms == model.expire_at_ms &&
              outcome.committed.remaining == model.committed.remaining &&
              outcome.retry_after_ms == model.retry_after_ms,
          "a policy decides as its own command would");
    Check(outcome.committed.remaining <= outcome.quota &&
              outcome.unchanged.remaining <= outcome.quota,
          "remaining never passes the policy's limit");
    Check(outcome.allowed ? outcome.retry_after_ms == 0
                          : outcome.retry_after_ms > 0 || outcome.retry_after_ms == shield::kNever,
          "a refusing policy waits, an allowing one does not");
  }
  const limit::CallDecision call = limit::DecideCall(policies, outcomes, options);
  const bool all = std::ranges::all_of(outcomes, [](const Outcome& o) { return o.allowed; });
  Check(call.allowed == all, "the call is allowed exactly when every policy is");
  Check(call.write == (all && !options.dry_run), "the call writes only when allowed, never dry");
  int64_t longest = 0;
  for (const Outcome& outcome : outcomes) {
    if (outcome.allowed) continue;
    longest = (longest == shield::kNever || outcome.retry_after_ms == shield::kNever)
                  ? shield::kNever
                  : std::max(longest, outcome.retry_after_ms);
  }
  Check(call.retry_after_ms == longest, "the call waits for its slowest refusing policy");
}

// Settlements on one bucket over a history with the clock moving.
void FuzzSettle(FuzzedDataProvider& fdp, int64_t now_ms) {
  const int64_t capacity = Interesting(fdp, 1, 1'000'000);
  const int64_t period_ms = Interesting(fdp, 1, 1'000'000) * shield::kMillisPerSecond;
  const auto limits =
      fdp.ConsumeBool() ? std::optional(shield::PlainLimits(capacity, period_ms))
                        : shield::BurstLimits(capacity, period_ms, Interesting(fdp, 1, 10'000'000));
  if (!limits) return;
  shield::StoredBucket stored{0, shield::kNoExpiry};
  for (int step = 0; step < 16 && fdp.remaining_bytes() > 0; ++step) {
    now_ms += Interesting(fdp, 0, 2 * limits->window_ms);
    const int64_t delta = Interesting(fdp, -2'000'000, 2'000'000);
    Trace().push_back("settle " + Str(delta) + " at " + Str(now_ms));
    const shield::BucketState before = shield::StateAt(*limits, stored, now_ms);
    const shield::SettleDecision settled = shield::Settle(*limits, stored, delta, now_ms);
    const shield::BucketState after = shield::StateAt(*limits, settled.store, now_ms);
    Check(settled.balance >= -limits->capacity, "the debt is at most one period's refill");
    Check(settled.store.expire_at_ms - now_ms <= limits->window_ms + limits->period_ms,
          "a bucket in debt expires within its fill time and one period");
    Check(after.available == std::max<int64_t>(settled.balance, 0),
          "the bucket reads back as the balance it replied");
    if (delta > 0 && before.available >= delta) {
      Check(settled.balance == before.available - delta, "a settle takes what the bucket holds");
    }
    if (delta <= 0 && !shield::InDebt(before)) {
      Check(settled.balance == std::min(limits->max_tokens, before.available - delta),
            "a settle gives back up to the bucket's maximum");
    }
    stored = settled.store;
  }
}

}  // namespace
}  // namespace shield_fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  shield_fuzz::Trace().clear();
  const int64_t now_ms = shield_fuzz::Interesting(fdp, 1, 4'102'444'800'000);  // to 2100
  if (fdp.ConsumeBool()) {
    shield_fuzz::FuzzCall(fdp, now_ms);
  } else {
    shield_fuzz::FuzzSettle(fdp, now_ms);
  }
  return 0;
}
