#include "core/bucket/bucket_args.hpp"

#include <algorithm>

#include "core/common/int_parse.hpp"
#include "core/wait/wait.hpp"

namespace shield {

namespace {

bool IsBurst(std::string_view word) noexcept {
  return EqualsIgnoringCase(word, "BURST");
}

// The raw text of one bucket's arguments, before any value is checked.
struct BucketText {
  std::string_view capacity;
  std::string_view period;
  std::optional<std::string_view> tokens;
  std::optional<std::string_view> burst;
};

// Checks the values in the original's order and builds the limits.
BucketArgs ParseValues(const BucketText& text) noexcept {
  BucketArgs args;
  const auto capacity = ParsePositive(text.capacity);
  if (!capacity) return {Error::kCapacity};
  const auto period = ParsePositive(text.period);
  if (!period) return {Error::kPeriod};
  if (text.tokens) {
    const auto tokens = ParsePositive(*text.tokens);
    if (!tokens) return {Error::kTokens};
    args.tokens = *tokens;
  }
  std::optional<int64_t> burst;
  if (text.burst) {
    burst = ParsePositive(*text.burst);
    if (!burst) return {Error::kBurst};
  }
  if (*period > kMaxPeriodSeconds) return {Error::kPeriodTooLarge};
  const int64_t period_ms = *period * kMillisPerSecond;
  if (!burst) {
    args.limits = PlainLimits(*capacity, period_ms);
    return args;
  }
  const auto limits = BurstLimits(*capacity, period_ms, *burst);
  if (!limits) return {Error::kBurstTooLarge};
  args.limits = *limits;
  args.has_burst = true;
  return args;
}

}  // namespace

BucketArgs ParseBucketArgs(std::span<const std::string_view> args,
                           const BucketSyntax& syntax) noexcept {
  if (args.size() < 2) return {Error::kArity};
  BucketText text{args[0], args[1], std::nullopt, std::nullopt};
  std::size_t i = 2;
  const auto is_wait = [&](std::string_view word) {
    return syntax.wait && EqualsIgnoringCase(word, "WAIT");
  };
  const auto is_option = [&](std::string_view word) {
    // Every option is a word: a count (the common third argument) is never one.
    if (!word.empty() && word.front() >= '0' && word.front() <= '9') return false;
    return IsBurst(word) || (syntax.verbose && IsVerbose(word)) ||
           (syntax.dry_run && EqualsIgnoringCase(word, "DRYRUN")) || is_wait(word);
  };
  if (i < args.size() && (syntax.tokens_required || !is_option(args[i]))) text.tokens = args[i++];
  if (syntax.tokens_required && !text.tokens) return {Error::kArity};

  bool verbose = false;
  bool dry_run = false;
  std::optional<std::string_view> wait;
  for (; i < args.size(); ++i) {
    if (syntax.verbose && IsVerbose(args[i])) {
      if (verbose) return {Error::kSyntax};
      verbose = true;
    } else if (syntax.dry_run && EqualsIgnoringCase(args[i], "DRYRUN")) {
      if (dry_run) return {Error::kSyntax};
      dry_run = true;
    } else if (IsBurst(args[i]) && i + 1 < args.size()) {
      if (text.burst) return {Error::kSyntax};
      text.burst = args[++i];
    } else if (is_wait(args[i]) && i + 1 < args.size()) {
      if (wait) return {Error::kSyntax};
      wait = args[++i];
    } else {
      return {Error::kArity};
    }
  }
  BucketArgs parsed = ParseValues(text);
  if (parsed.error != Error::kNone) return parsed;
  parsed.verbose = verbose;
  parsed.dry_run = dry_run;
  if (wait) {
    const auto wait_ms = ParseStrictInt64(*wait);
    if (!wait_ms || *wait_ms < 0 || *wait_ms > wait::kMaxWaitMs) return {Error::kWait};
    if (dry_run) return {Error::kWaitDryRun};
    parsed.wait_ms = *wait_ms;
  }
  return parsed;
}

SettleArgs ParseSettleArgs(std::span<const std::string_view> args, int64_t now_ms) noexcept {
  if (args.size() != 4 && args.size() != 6) return {Error::kArity};
  if (args.size() == 6 && !IsBurst(args[4])) return {Error::kSyntax};
  BucketText text{args[0], args[1], std::nullopt, std::nullopt};
  if (args.size() == 6) text.burst = args[5];
  // Capacity and period first, as every bucket command reads them; then the amounts.
  if (!ParsePositive(text.capacity)) return {Error::kCapacity};
  if (!ParsePositive(text.period)) return {Error::kPeriod};
  const auto reserved = ParseStrictInt64(args[2]);
  const auto actual = ParseStrictInt64(args[3]);
  if (!reserved || !actual || *reserved < 0 || *actual < 0) return {Error::kSettleAmount};
  const BucketArgs bucket = ParseValues(text);
  if (bucket.error != Error::kNone) return {bucket.error};
  // The furthest expiry a settle writes: a full window and one period of debt from now.
  if (!ExpiryFits(now_ms, bucket.limits.window_ms) ||
      !ExpiryFits(now_ms + bucket.limits.window_ms, MaxDebtMs(bucket.limits))) {
    return {bucket.has_burst ? Error::kBurstTooLarge : Error::kPeriodTooLarge};
  }
  return {Error::kNone, bucket.limits, *actual - *reserved};
}

BucketArgs ParseMultiBucket(std::string_view capacity, std::string_view period,
                            std::string_view tokens) noexcept {
  BucketText text{capacity, period, tokens, std::nullopt};
  if (const auto colon = capacity.find(':'); colon != std::string_view::npos) {
    // Built by hand, not with substr: substr can throw, which would link libstdc++'s exception
    // support (and its newer glibc symbols) into the module.
    text.capacity = {capacity.data(), colon};
    text.burst = std::string_view{capacity.data() + colon + 1, capacity.size() - colon - 1};
  }
  return ParseValues(text);
}

static_assert(kMaxMultiBuckets == 1000, "ErrorReply(kTooManyBuckets) names the limit");

Error CheckExpiry(const BucketArgs& args, int64_t now_ms) noexcept {
  if (ExpiryFits(now_ms, args.limits.window_ms)) return Error::kNone;
  return args.has_burst ? Error::kBurstTooLarge : Error::kPeriodTooLarge;
}

VerboseValues Verbose(const BucketLimits& limits, const AbsorbDecision& decision, int64_t tokens,
                      bool allowed) noexcept {
  const BucketState& now = allowed ? decision.after : decision.before;
  return {allowed ? 1 : 0,
          now.available,
          limits.capacity,
          limits.period_ms / kMillisPerSecond,
          allowed ? 0 : RetryAfterMs(limits, decision.before, tokens),
          ResetAfterMs(limits, now)};
}

}  // namespace shield
