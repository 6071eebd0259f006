#include "core/limit/limit.hpp"

#include <algorithm>

#include "core/bucket/bucket_args.hpp"
#include "core/bucket/bucket_policy.hpp"
#include "core/common/args.hpp"
#include "core/gcra/gcra_policy.hpp"
#include "core/quota/quota_policy.hpp"
#include "core/window/window_policy.hpp"

namespace shield::limit {
namespace {

// Words a policy's name may not be: they would read as the grammar's own.
constexpr std::array<std::string_view, 11> kKeywords = {"BUCKET",  "GCRA",   "WINDOW", "QUOTA",
                                                        "BURST",   "COST",   "SETTLE", "DRYRUN",
                                                        "HEADERS", "REFUND", "WAIT"};

bool IsNameChar(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

bool ValidName(std::string_view name) noexcept {
  return !name.empty() && name.size() <= kMaxNameLength && std::ranges::all_of(name, IsNameChar) &&
         std::ranges::none_of(kKeywords, [name](std::string_view keyword) {
           return EqualsIgnoringCase(name, keyword);
         });
}

std::optional<Algorithm> ParseAlgorithm(std::string_view word) noexcept {
  for (std::size_t i = 0; i < kAlgorithmNames.size(); ++i) {
    if (EqualsIgnoringCase(word, kKeywords[i])) return static_cast<Algorithm>(i);
  }
  return std::nullopt;
}

// The policy's words after its name and algorithm: two values, then BURST <n> (BUCKET and GCRA)
// and COST <n> in any order, each at most once. Reads them into `policy`; `next` is the index of
// the first word after the policy.
Error ParseOne(std::span<const std::string_view> words, std::size_t& next, Policy& policy,
               int64_t now_ms, int64_t now_ns) noexcept {
  std::size_t i = next;
  if (i + 2 > words.size()) return Error::kArity;
  const std::string_view first = words[i];
  const std::string_view second = words[i + 1];
  i += 2;
  std::optional<std::string_view> burst;
  std::optional<std::string_view> cost;
  std::optional<std::string_view> reserved;
  std::optional<std::string_view> actual;
  const bool takes_burst =
      policy.algorithm == Algorithm::kBucket || policy.algorithm == Algorithm::kGcra;
  while (i + 1 < words.size()) {
    if (takes_burst && EqualsIgnoringCase(words[i], "BURST")) {
      if (burst) return Error::kSyntax;
      burst = words[i + 1];
    } else if (EqualsIgnoringCase(words[i], "COST")) {
      if (cost || reserved) return Error::kSyntax;
      cost = words[i + 1];
    } else if (takes_burst && EqualsIgnoringCase(words[i], "SETTLE") && i + 2 < words.size()) {
      if (cost || reserved) return Error::kSyntax;
      reserved = words[i + 1];
      actual = words[i + 2];
      ++i;
    } else {
      break;
    }
    i += 2;
  }
  next = i;

  switch (policy.algorithm) {
    case Algorithm::kBucket:
    case Algorithm::kGcra: {
      const std::string_view bucket_words[] = {first, second, "BURST", burst.value_or("")};
      BucketArgs args = ParseBucketArgs({bucket_words, burst ? 4u : 2u},
                                        {.tokens_required = false, .verbose = false});
      if (args.error == Error::kNone) args.error = CheckExpiry(args, now_ms);
      if (args.error != Error::kNone) return args.error;
      policy.bucket = args.limits;
      if (policy.algorithm == Algorithm::kGcra) {
        const auto gcra = GcraLimitsOf(args.limits);
        if (!gcra) return Error::kGcraRate;
        if (const Error error = CheckTatRoom(gcra->interval_ns, now_ns, Error::kPeriodTooLarge);
            error != Error::kNone) {
          return error;
        }
        policy.gcra = *gcra;
      }
      break;
    }
    case Algorithm::kWindow: {
      const std::string_view window_words[] = {first, second};
      const WindowArgs args = ParseWindowArgs(window_words, now_ms);
      if (args.error != Error::kNone) return args.error;
      policy.window = args.limits;
      break;
    }
    case Algorithm::kQuota: {
      const std::string_view quota_words[] = {first, second};
      const QuotaArgs args = ParseQuotaArgs(quota_words, now_ms);
      if (args.error != Error::kNone) return args.error;
      policy.quota = args.limits;
      policy.period = args.period;
      break;
    }
  }
  if (cost) {
    const auto value = ParseStrictInt64(*cost);
    if (!value || *value < 0) return Error::kCost;
    policy.cost = *value;
  }
  if (reserved) {
    const auto reserved_value = ParseStrictInt64(*reserved);
    const auto actual_value = ParseStrictInt64(*actual);
    if (!reserved_value || !actual_value || *reserved_value < 0 || *actual_value < 0) {
      return Error::kSettleAmount;
    }
    policy.settle = true;
    policy.settle_delta = *actual_value - *reserved_value;  // both >= 0: no overflow
  }
  return Error::kNone;
}

}  // namespace

Shape ParseShape(std::span<const std::string_view> args) noexcept {
  if (args.size() < 3) return {Error::kArity};
  const auto keys = ParsePositive(args[0]);
  if (!keys) return {Error::kNumkeys};
  if (static_cast<uint64_t>(*keys) > kMaxPolicies) return {Error::kTooManyPolicies};
  const auto count = static_cast<std::size_t>(*keys);
  // The keys, then at least a name, an algorithm and two values per policy.
  if (args.size() - 1 < count + 4 * count) return {Error::kArity};
  return {Error::kNone, count};
}

ParseError ParsePolicies(std::span<const std::string_view> words, std::span<Policy> policies,
                         std::span<std::string_view> name_scratch, Options& options, int64_t now_ms,
                         int64_t now_ns) noexcept {
  std::size_t next = 0;
  for (std::size_t p = 0; p < policies.size(); ++p) {
    Policy& policy = policies[p];
    if (next + 2 > words.size()) return {Error::kArity};
    policy.name = words[next];
    if (!ValidName(policy.name)) return {Error::kPolicyName};
    const auto algorithm = ParseAlgorithm(words[next + 1]);
    if (!algorithm) return {Error::kAlgorithm, p};
    policy.algorithm = *algorithm;
    next += 2;
    if (const Error error = ParseOne(words, next, policy, now_ms, now_ns); error != Error::kNone) {
      return {error, p};
    }
  }
  for (; next < words.size(); ++next) {
    bool* option = nullptr;
    if (EqualsIgnoringCase(words[next], "DRYRUN")) {
      option = &options.dry_run;
    } else if (EqualsIgnoringCase(words[next], "HEADERS")) {
      option = &options.headers;
    } else if (EqualsIgnoringCase(words[next], "REFUND")) {
      option = &options.refund;
    }
    if (option == nullptr || *option) return {Error::kSyntax};
    *option = true;
  }
  // REFUND gives costs back; a settled policy has none to give.
  for (std::size_t p = 0; p < policies.size() && options.refund; ++p) {
    if (policies[p].settle) return {Error::kSyntax, p};
  }
  // Names are unique (they are the headers' keys): sorted copies, O(N log N).
  for (std::size_t p = 0; p < policies.size(); ++p) name_scratch[p] = policies[p].name;
  if (HasDuplicate(name_scratch.first(policies.size()))) return {Error::kDuplicatePolicy};
  return {};
}

Outcome Decide(const Policy& policy, const StoredValue& stored, const Options& options,
               int64_t now_ms, int64_t now_ns) noexcept {
  if (policy.settle) {
    const int64_t delta = policy.settle_delta;
    switch (policy.algorithm) {
      case Algorithm::kBucket:
        return bucket::Decide(policy.bucket, stored, Operation::kSettle, delta, now_ms,
                              Detail::kFull);
      case Algorithm::kGcra:
        return gcra::Decide(policy.gcra, stored, Operation::kSettle, delta, now_ns, Detail::kFull,
                            Error::kGcraInvalidStored);
      case Algorithm::kWindow:
      case Algorithm::kQuota:
        break;  // the grammar gives them no SETTLE
    }
  }
  Operation operation = Operation::kTake;
  if (options.refund) {
    operation = Operation::kGive;
  } else if (options.dry_run || policy.cost == 0) {
    operation = Operation::kPeek;
  }
  switch (policy.algorithm) {
    case Algorithm::kBucket:
      return bucket::Decide(policy.bucket, stored, operation, policy.cost, now_ms, Detail::kFull);
    case Algorithm::kGcra:
      return gcra::Decide(policy.gcra, stored, operation, policy.cost, now_ns, Detail::kFull,
                          Error::kGcraInvalidStored);
    case Algorithm::kWindow:
      return window::Decide(policy.window, stored, operation, policy.cost, now_ms, Detail::kFull);
    case Algorithm::kQuota:
      return quota::Decide(policy.quota, policy.period, stored, operation, policy.cost, now_ms,
                           Detail::kFull);
  }
  return Failed(Error::kAlgorithm);
}

CallDecision DecideCall(std::span<const Policy> policies, std::span<const Outcome> outcomes,
                        const Options& options) noexcept {
  CallDecision call;
  for (const Outcome& outcome : outcomes) {
    if (outcome.allowed) continue;
    call.allowed = false;
    call.retry_after_ms = CombineRetryAfterMs(call.retry_after_ms, outcome.retry_after_ms);
  }
  if (call.allowed) call.retry_after_ms = 0;
  call.write = call.allowed && !options.dry_run;
  call.counted = !options.refund && !options.dry_run;
  if (!call.write) return call;
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    const Outcome& outcome = outcomes[i];
    const int64_t taken = policies[i].settle ? outcome.taken : policies[i].cost;
    if (!options.refund && __builtin_add_overflow(call.taken, taken, &call.taken)) {
      call.taken = UINT64_MAX;
    }
    if (__builtin_add_overflow(call.refunded, outcome.refunded, &call.refunded)) {
      call.refunded = UINT64_MAX;
    }
  }
  return call;
}

std::size_t FormatHeaderItem(char* out, bool first_item, std::string_view name, char first_key,
                             int64_t first, char second_key, int64_t second) noexcept {
  char* p = out;
  if (!first_item) {
    *p++ = ',';
    *p++ = ' ';
  }
  *p++ = '"';
  for (const char c : name) *p++ = c;  // at most kMaxNameLength of [A-Za-z0-9_-]
  *p++ = '"';
  *p++ = ';';
  *p++ = first_key;
  *p++ = '=';
  p += FormatInt64(first, p);
  *p++ = ';';
  *p++ = second_key;
  *p++ = '=';
  p += FormatInt64(second, p);
  return static_cast<std::size_t>(p - out);
}

}  // namespace shield::limit
