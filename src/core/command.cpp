#include "core/command.hpp"

#include <algorithm>

#include "core/int_parse.hpp"

namespace shield {

std::optional<int64_t> ParsePositive(std::string_view text) noexcept {
  // The common case first: up to 18 digits without a leading zero always fit in int64, so the
  // digits are all there is to check (every argument of an ordinary call takes this path).
  if (!text.empty() && text.size() <= kDigitsThatFit && text.front() >= '1' &&
      text.front() <= '9') {
    return ParseDigits(text);
  }
  const auto value = ParseStrictInt64(text);
  if (!value || *value <= 0) return std::nullopt;
  return value;
}

bool EqualsIgnoringCase(std::string_view text, std::string_view upper) noexcept {
  if (text.size() != upper.size()) return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const char folded = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
    if (folded != upper[i]) return false;
  }
  return true;
}

LimitWords SplitLimitWords(std::span<const std::string_view> args) noexcept {
  LimitWords words;
  if (args.size() < 2) words.error = Error::kArity;
  for (std::size_t i = 2; i < args.size() && words.error == Error::kNone; ++i) {
    if (IsVerbose(args[i])) {
      if (words.verbose) words.error = Error::kSyntax;
      words.verbose = true;
    } else if (i == 2) {
      words.tokens = args[i];
    } else {
      words.error = Error::kArity;
    }
  }
  return words;
}

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

std::string_view ErrorReply(Error error) noexcept {
  switch (error) {
    case Error::kNone:
    case Error::kArity:
      return "";
    case Error::kCapacity:
      return "ERR capacity must be positive";
    case Error::kPeriod:
      return "ERR period must be positive";
    case Error::kTokens:
      return "ERR tokens must be positive";
    case Error::kBurst:
      return "ERR burst must be positive";
    case Error::kPeriodTooLarge:
      return "ERR period value too large";
    case Error::kBurstTooLarge:
      return "ERR burst value too large";
    case Error::kSyntax:
      return "ERR syntax error";
    case Error::kTooManyBuckets:
      return "ERR too many buckets: SHIELD.absorb_multi takes at most 1000";
    case Error::kStatsResetMoved:
      return "ERR SHIELD.stats RESET is now SHIELD.stats_reset, an admin command (flags write "
             "admin), so that read-only users cannot wipe the counters";
    case Error::kDuplicateKey:
      return "ERR key appears more than once in SHIELD.absorb_multi";
    case Error::kTimeout:
      return "ERR timeout must be between 1 and 60000";
    case Error::kNeedsCluster:
      return "ERR SHIELD.stats CLUSTER needs cluster mode";
    case Error::kCannotBlock:
      return "ERR SHIELD.stats CLUSTER cannot run inside MULTI or a script";
    case Error::kPropagation:
      return "ERR Shield cannot propagate its write to replicas and the AOF (is SET or DEL "
             "renamed?); nothing was written";
    case Error::kCellUsage:
      return "Cell error: Store error: Usage: cl.throttle <key> <max_burst> <count per period> "
             "<period> [<quantity>]";
    case Error::kCellInteger:
      return "Cell error: Store error: Couldn't parse as integer: ";
    case Error::kCellZeroRate:
      return "Cell error: Store error: Zero rates are not supported";
    case Error::kCellNegativeRate:
      return "Cell error: Store error: Negative rates are not supported";
    case Error::kCellMaxBurst:
      return "Cell error: Store error: max_burst must be between 0 and 9223372036854775806";
    case Error::kCellInvalidStored:
      return "Cell error: Store error: invalid theoretical arrival time in Redis";
    case Error::kGcraRate:
      return "ERR rate too high: at most 1000000000 tokens per second";
    case Error::kGcraInvalidStored:
      return "ERR invalid theoretical arrival time in Redis";
    case Error::kLimit:
      return "ERR limit must be positive";
    case Error::kWindow:
      return "ERR window must be positive";
    case Error::kWindowTooLarge:
      return "ERR window value too large";
    case Error::kQuotaPeriod:
      return "ERR period must be HOUR, DAY or MONTH";
    case Error::kInvalidWindow:
      return "ERR invalid sliding window state in Redis";
    case Error::kInvalidStored:
      return "ERR invalid token count in Redis";
    case Error::kForeignTat:
      return "ERR the key holds a GCRA time (CL.THROTTLE or SHIELD.gcra), not a count: use one "
             "algorithm per key";
    case Error::kCellPeriodTooLarge:
      return "Cell error: Store error: period too large: a call's interval must end before the "
             "year 2554";
    case Error::kWrongType:
      return "WRONGTYPE Operation against a key holding the wrong kind of value";
  }
  return "ERR internal error";
}

bool IsVerbose(std::string_view word) noexcept {
  return EqualsIgnoringCase(word, "VERBOSE");
}

BucketArgs ParseBucketArgs(std::span<const std::string_view> args,
                           const BucketSyntax& syntax) noexcept {
  if (args.size() < 2) return {Error::kArity};
  BucketText text{args[0], args[1], std::nullopt, std::nullopt};
  std::size_t i = 2;
  const auto is_option = [&](std::string_view word) {
    return IsBurst(word) || (syntax.verbose && IsVerbose(word));
  };
  if (i < args.size() && (syntax.tokens_required || !is_option(args[i]))) text.tokens = args[i++];
  if (syntax.tokens_required && !text.tokens) return {Error::kArity};

  bool verbose = false;
  for (; i < args.size(); ++i) {
    if (syntax.verbose && IsVerbose(args[i])) {
      if (verbose) return {Error::kSyntax};
      verbose = true;
    } else if (IsBurst(args[i]) && i + 1 < args.size()) {
      if (text.burst) return {Error::kSyntax};
      text.burst = args[++i];
    } else {
      return {Error::kArity};
    }
  }
  BucketArgs parsed = ParseValues(text);
  parsed.verbose = verbose;
  return parsed;
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

bool HasDuplicate(std::span<std::string_view> names) noexcept {
  std::sort(names.begin(), names.end());
  return std::adjacent_find(names.begin(), names.end()) != names.end();
}

Error CheckExpiry(const BucketArgs& args, int64_t now_ms) noexcept {
  if (ExpiryFits(now_ms, args.limits.window_ms)) return Error::kNone;
  return args.has_burst ? Error::kBurstTooLarge : Error::kPeriodTooLarge;
}

std::optional<int64_t> ParseStoredTokens(std::string_view value) noexcept {
  return ParseStoredInt64(value);
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

StatsArgs ParseStatsArgs(std::span<const std::string_view> args) noexcept {
  if (args.empty()) return {};
  if (EqualsIgnoringCase(args[0], "RESET")) return {Error::kStatsResetMoved};
  if (!EqualsIgnoringCase(args[0], "CLUSTER")) return {Error::kSyntax};
  if (args.size() == 1) return {Error::kNone, StatsMode::kCluster, kDefaultStatsTimeoutMs};
  if (args.size() != 3 || !EqualsIgnoringCase(args[1], "TIMEOUT")) return {Error::kSyntax};
  const auto timeout = ParsePositive(args[2]);
  if (!timeout || *timeout > kMaxStatsTimeoutMs) return {Error::kTimeout};
  return {Error::kNone, StatsMode::kCluster, *timeout};
}

}  // namespace shield
