// CL.THROTTLE's GCRA core (src/core/gcra/gcra.hpp) against an exact model in unbounded integers.
//
// THE CONTRACT (docs/commands.md, "CL.THROTTLE"):
//
//  1. Arguments after the key: 3 or 4 words, else the usage error; each an integer as Rust reads
//     an i64 (optional sign, decimal digits, leading zeros, in range), else "Couldn't parse as
//     integer" naming the first bad one; then count or period 0 (or an interval of 0 ns) is a zero
//     rate, a negative one a negative rate; then max_burst outside [0, 2^63-2].
//  2. With I = floor(period * 10^9 / count), L = max_burst + 1, a call of quantity q at `now`
//     (ns) on a key holding TAT (none: now):
//         base = max(TAT, now), new = base + I * q
//         limited  when  new - now > I * L  or  new > 2^64 - 1
//     limited: nothing written; retry = new - I * L - now, or never when I * q > I * L or
//     new > 2^64 - 1. Allowed: the key holds max(new, now); q = 0 writes nothing; a result of
//     `now` deletes the key (nothing to delete: nothing written); else it is stored with the
//     expiry ceil(TAT / 10^6) ms.
//  3. ttl = (the TAT after the call, or base when limited) - now; remaining = max(0, L - ceil(ttl /
//     I)); reply seconds are floor(d / 10^9), plus one when d mod 10^9 >= 10^6.
//  4. Stored values are read as Rust reads a u64: an optional '+', decimal digits, at most 2^64-1.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/gcra/gcra.hpp"
#include "fuzz_common.hpp"

namespace {

using shield_fuzz::Check;
using shield_fuzz::Int;
using shield_fuzz::Interesting;
using shield_fuzz::Str;
using shield_fuzz::Trace;

const Int kMaxTat = Int(UINT64_MAX);
const Int kBillion = 1'000'000'000;
const Int kMillion = 1'000'000;

// Rust's str::parse::<i64> / ::<u64>.
std::optional<Int> RustInt(std::string_view text, bool is_signed) {
  bool negative = false;
  if (!text.empty() && (text[0] == '+' || (is_signed && text[0] == '-'))) {
    negative = text[0] == '-';
    text.remove_prefix(1);
  }
  if (text.empty()) return std::nullopt;
  Int value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  if (negative) value = -value;
  const Int lo = is_signed ? Int(INT64_MIN) : Int(0);
  const Int hi = is_signed ? Int(INT64_MAX) : kMaxTat;
  if (value < lo || value > hi) return std::nullopt;
  return value;
}

// A 128-bit core value, exactly.
Int Wide(shield::Int128 value) {
  const bool negative = value < 0;
  const auto magnitude = static_cast<shield::UInt128>(negative ? -value : value);
  Int result = Int(static_cast<uint64_t>(magnitude >> 64));
  result <<= 64;
  result += Int(static_cast<uint64_t>(magnitude));
  return negative ? Int(-result) : result;
}

Int CeilDiv(const Int& a, const Int& b) {
  return (a + b - 1) / b;
}

Int Seconds(const Int& ns) {
  return ns / kBillion + ((ns % kBillion) >= kMillion ? 1 : 0);
}

void CheckArgs(const std::vector<std::string_view>& words) {
  const shield::ThrottleArgs core = shield::ParseThrottleArgs(words);
  shield::Error expected = shield::Error::kNone;
  std::size_t bad = 0;
  Int values[4] = {0, 0, 0, 1};
  if (words.size() != 3 && words.size() != 4) {
    expected = shield::Error::kCellUsage;
  } else {
    for (std::size_t i = 0; i < words.size() && expected == shield::Error::kNone; ++i) {
      const auto value = RustInt(words[i], true);
      if (!value) {
        expected = shield::Error::kCellInteger;
        bad = i;
      } else {
        values[i] = *value;
      }
    }
  }
  if (expected == shield::Error::kNone) {
    const Int& count = values[1];
    const Int& period = values[2];
    if (count == 0 || period == 0) {
      expected = shield::Error::kCellZeroRate;
    } else if (count < 0 || period < 0) {
      expected = shield::Error::kCellNegativeRate;
    } else if (period * kBillion / count == 0) {
      expected = shield::Error::kCellZeroRate;
    } else if (values[0] < 0 || values[0] > Int(INT64_MAX) - 1) {
      expected = shield::Error::kCellMaxBurst;
    }
  }
  Check(core.error == expected, "ParseThrottleArgs error " +
                                    std::to_string(static_cast<int>(core.error)) + ", model " +
                                    std::to_string(static_cast<int>(expected)));
  if (expected == shield::Error::kCellInteger) Check(core.bad_integer == bad, "bad integer index");
  if (expected != shield::Error::kNone) return;
  Check(Int(core.limits.limit) == values[0] + 1, "limit");
  Check(Int(core.limits.count) == values[1] && Int(core.limits.period_s) == values[2], "rate");
  Check(Wide(core.limits.interval_ns) == values[2] * kBillion / values[1], "interval");
  Check(Int(core.quantity) == values[3], "quantity");
}

std::string RandomWord(FuzzedDataProvider& fdp) {
  switch (fdp.ConsumeIntegralInRange<int>(0, 3)) {
    case 0:
      return std::to_string(Interesting(fdp, INT64_MIN, INT64_MAX));
    case 1:
      return std::to_string(Interesting(fdp, 0, 2'000'000'000));
    case 2:
      return (fdp.ConsumeBool() ? "+" : "0") + std::to_string(Interesting(fdp, 0, 1'000'000));
    default:
      return fdp.ConsumeRandomLengthString(24);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  Trace().clear();

  // 1. Arguments.
  std::vector<std::string> owned;
  const int count = fdp.ConsumeIntegralInRange<int>(0, 5);
  for (int i = 0; i < count; ++i) owned.push_back(RandomWord(fdp));
  std::vector<std::string_view> words(owned.begin(), owned.end());
  Trace().push_back("args:" + shield_fuzz::Words(words));
  CheckArgs(words);

  // 4. A stored value.
  const std::string stored_text =
      fdp.ConsumeBool() ? RandomWord(fdp) : std::to_string(fdp.ConsumeIntegral<uint64_t>());
  const auto parsed = shield::ParseTat(stored_text);
  const auto model_parsed = RustInt(stored_text, false);
  Check(parsed.has_value() == model_parsed.has_value(),
        "ParseTat accepts differently: " + stored_text);
  if (parsed) Check(Int(*parsed) == *model_parsed, "ParseTat reads another value");

  // 2-3. A history of calls on one key.
  const std::string limit_words[] = {std::to_string(Interesting(fdp, 0, INT64_MAX - 1)),
                                     std::to_string(Interesting(fdp, 1, INT64_MAX)),
                                     std::to_string(Interesting(fdp, 1, INT64_MAX))};
  const std::string_view limit_views[] = {limit_words[0], limit_words[1], limit_words[2]};
  const shield::ThrottleArgs args = shield::ParseThrottleArgs(limit_views);
  if (args.error != shield::Error::kNone) return 0;  // a zero rate: checked above
  const shield::GcraLimits& limits = args.limits;
  Trace().push_back("limits: max_burst " + limit_words[0] + ", " + limit_words[1] + " per " +
                    limit_words[2] + " s");
  const Int interval = Wide(limits.interval_ns);
  const Int limit = Int(limits.limit);
  const Int tolerance = interval * limit;

  std::optional<uint64_t> tat;
  int64_t expire_ms = INT64_MAX;
  if (parsed && fdp.ConsumeBool()) tat = *parsed;
  int64_t now = Interesting(fdp, 0, INT64_MAX);
  for (int step = 0; step < 64 && fdp.remaining_bytes() > 0; ++step) {
    const int64_t move = Interesting(fdp, -1'000'000'000'000, 1'000'000'000'000);
    now = static_cast<int64_t>(shield_fuzz::Clamp(static_cast<__int128>(now) + move, 0, INT64_MAX));
    if (tat && now / 1'000'000 > expire_ms) tat.reset();  // Redis expired the key
    int64_t quantity = fdp.ConsumeBool() ? Interesting(fdp, INT64_MIN, INT64_MAX)
                                         : fdp.ConsumeIntegralInRange<int64_t>(-3, 5);
    Trace().push_back("at " + Str(now) + " ns, tat " + (tat ? std::to_string(*tat) : "none") +
                      ", quantity " + Str(quantity));

    const shield::GcraDecision core = shield::Throttle(limits, tat, quantity, now);

    const Int base = tat && Int(*tat) > Int(now) ? Int(*tat) : Int(now);
    const Int increment = interval * Int(quantity);
    const Int new_tat = base + increment;
    const bool limited = new_tat - Int(now) > tolerance || new_tat > kMaxTat;
    Check(core.limited == limited, "limited");
    Int after = base;
    if (limited) {
      Check(core.write == shield::GcraWrite::kNothing, "a limited call writes nothing");
      const bool never = increment > tolerance || new_tat > kMaxTat;
      if (never) {
        Check(core.retry_after_ns == shield::kNeverNs, "retry: never");
      } else {
        Check(Wide(core.retry_after_ns) == new_tat - tolerance - Int(now), "retry after");
      }
    } else {
      after = new_tat > Int(now) ? new_tat : Int(now);
      shield::GcraWrite write = shield::GcraWrite::kStore;
      if (quantity == 0) {
        write = shield::GcraWrite::kNothing;
      } else if (after == Int(now)) {
        write = tat ? shield::GcraWrite::kDelete : shield::GcraWrite::kNothing;
      }
      Check(core.write == write, "write");
      if (write == shield::GcraWrite::kStore) {
        Check(Int(core.new_tat_ns) == after, "stored TAT");
        Check(Int(core.expire_at_ms) == CeilDiv(after, kMillion), "expiry");
      }
    }
    const Int ttl = after - Int(now);
    Check(Wide(core.reset_after_ns) == ttl, "reset after");
    const Int used = CeilDiv(ttl, interval);
    Check(Int(core.remaining) == (used >= limit ? Int(0) : limit - used), "remaining");

    const shield::ThrottleReply reply = shield::ThrottleReplyFor(limits, core);
    Check(reply[0] == (limited ? 1 : 0) && Int(reply[1]) == limit && reply[2] == core.remaining,
          "reply fields 1-3");
    const Int retry_s = !limited || core.retry_after_ns == shield::kNeverNs
                            ? Int(-1)
                            : Seconds(Wide(core.retry_after_ns));
    Check(Int(reply[3]) == retry_s, "retry after in seconds");
    Check(Int(reply[4]) == Seconds(ttl), "reset after in seconds");

    if (core.write == shield::GcraWrite::kStore) {
      tat = core.new_tat_ns;
      expire_ms = core.expire_at_ms;
    } else if (core.write == shield::GcraWrite::kDelete) {
      tat.reset();
    }
  }
  return 0;
}
