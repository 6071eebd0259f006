// A slow, obviously correct reference model of Shield: the token bucket in exact rational
// arithmetic, and the argument grammar of docs/commands.md read plainly. It shares no code with
// src/core: the fuzz targets run the core and this model on the same inputs and compare them.
//
// THE CONTRACT (what the fuzz targets check, stated once here):
//
//  1. A bucket has a rate, `capacity / period_ms` tokens per millisecond, and a maximum M
//     (`capacity`, or BURST's n). Its window is the time an empty bucket takes to fill:
//     ceil(M * period_ms / capacity) ms.
//  2. Storage (docs/design.md, "How a bucket is stored"): a key holds a decimal count c and an
//     absolute expiry E. At time t the bucket holds, exactly,
//         level(t) = min(M, clamp(c, 0, M) + rate * max(0, t - (E - window)))
//     a missing key, or one without expiry, is full (level M); a key is gone once the clock has
//     passed its expiry (Redis's rule: t > E). When E - t is longer than the window (a key
//     written with other limits, a clock that went back) refill waits until it is within one.
//  3. Absorb n at t: allowed when level(t) >= n; then the bucket holds level(t) - n. Inspect is
//     absorb without the write. Refund n at t: a full bucket is left as it is (nothing written);
//     otherwise it holds min(M, level(t) + n). absorb_multi: allowed when every bucket holds
//     enough, and then all are taken; otherwise nothing is written anywhere.
//  4. A write at t of a level L stores c = floor(L) and keeps the refill under way to the whole
//     millisecond below: E = t + window - floor((L - c) / rate). So a write loses less than one
//     millisecond of refill: less than `rate` tokens (and less than one token), never a
//     negative amount.
//  5. Replies: the integer reply is floor of what the bucket holds after the call (absorb: -1 when
//     denied). VERBOSE: remaining is floor(level) after the take (denied: now);
//     retry_after_ms is the exact wait: the smallest w >= 0 such that level(t + w) >= n (waiting w
//     succeeds, w - 1 does not), -1 when n > M; reset_after_ms the smallest w with level(t + w)
//     = M. Waits beyond 2^63-1 ms reply 2^63-1 (the largest integer a reply carries).
//  6. Over any stretch of a history in which nothing but Shield's commands touched a bucket and
//     its limits stayed the same, the tokens granted never exceed
//         M + rate * (time the clock moved forward in that stretch) + tokens refunded in it
//     (time the clock goes back is not refill, and time it goes forward again counts once more:
//     the bound only ever credits forward motion). GrantLedger checks this, apart from 1-5.
//  7. Parsing (docs/commands.md): numbers are strict positive 64-bit integers; options follow the
//     tokens (or the period), in any order and case, each at most once; structure is checked
//     first (arity, then repeats, left to right), then the values in the order capacity, period,
//     tokens, burst, then the period's size, then the time to fill a BURST bucket. Stored counts
//     are an optional sign and decimal digits that fit in int64 (leading zeros allowed).
#pragma once

#include <boost/multiprecision/cpp_int.hpp>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace shield_model {

using Int = boost::multiprecision::cpp_int;
using Rational = boost::multiprecision::cpp_rational;

inline Int Int64Max() {
  return Int(std::numeric_limits<int64_t>::max());
}
inline Int Int64Min() {
  return Int(std::numeric_limits<int64_t>::min());
}

// floor and ceil of a rational (cpp_rational has neither).
inline Int Floor(const Rational& x) {
  const Int n = boost::multiprecision::numerator(x);
  const Int d = boost::multiprecision::denominator(x);  // always positive
  Int q = n / d;                                        // truncates toward zero
  if (n < 0 && q * d != n) q -= 1;
  return q;
}
inline Int Ceil(const Rational& x) {
  return -Floor(-x);
}

// A model-level failure: the model contradicted its own contract.
struct ModelBroken : std::logic_error {
  using std::logic_error::logic_error;
};
inline void Require(bool condition, const char* what) {
  if (!condition) throw ModelBroken(what);
}

// ---- The grammar ------------------------------------------------------------------------------

// The error replies of docs/commands.md. kArity stands for the server's own arity error.
namespace err {
inline constexpr std::string_view kNone = "";
inline constexpr std::string_view kArity = "ERR wrong number of arguments";
inline constexpr std::string_view kCapacity = "ERR capacity must be positive";
inline constexpr std::string_view kPeriod = "ERR period must be positive";
inline constexpr std::string_view kTokens = "ERR tokens must be positive";
inline constexpr std::string_view kBurst = "ERR burst must be positive";
inline constexpr std::string_view kPeriodTooLarge = "ERR period value too large";
inline constexpr std::string_view kBurstTooLarge = "ERR burst value too large";
inline constexpr std::string_view kSyntax = "ERR syntax error";
inline constexpr std::string_view kTimeout = "ERR timeout must be between 1 and 60000";
inline constexpr std::string_view kStatsResetMoved =
    "ERR SHIELD.stats RESET is now SHIELD.stats_reset, an admin command (flags write admin), so "
    "that read-only users cannot wipe the counters";
inline constexpr std::string_view kInvalidStored = "ERR invalid token count in Redis";
}  // namespace err

inline bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}

inline bool AllDigits(std::string_view s) {
  for (const char c : s) {
    if (!IsDigit(c)) return false;
  }
  return !s.empty();
}

// The value of a string of digits; stops growing once past 2^64 (any such value is out of range,
// and a stored count may carry thousands of leading zeros).
inline Int DigitsValue(std::string_view digits) {
  const Int beyond = Int(1) << 64;
  Int value = 0;
  for (const char c : digits) {
    if (value <= beyond) value = value * 10 + (c - '0');
  }
  return value;
}

// Option names are case-insensitive: ASCII letters only, as every Redis keyword.
inline bool SameWord(std::string_view word, std::string_view keyword) {
  if (word.size() != keyword.size()) return false;
  for (std::size_t i = 0; i < word.size(); ++i) {
    char c = word[i];
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - ('a' - 'A'));
    if (c != keyword[i]) return false;
  }
  return true;
}

// "Numbers are strict positive 64-bit integers (no +, leading zeros, spaces or decimals)."
inline std::optional<Int> PositiveNumber(std::string_view word) {
  if (!AllDigits(word) || word.front() == '0') return std::nullopt;
  const Int value = DigitsValue(word);
  if (value > Int64Max()) return std::nullopt;
  return value;
}

// Redis's string2ll, for the record: optional '-', digits without a leading zero, "0" alone, no
// "-0", and the value fits in int64.
inline std::optional<Int> StrictInt64(std::string_view word) {
  if (word == "0") return Int(0);
  const bool negative = !word.empty() && word.front() == '-';
  const std::string_view digits = negative ? word.substr(1) : word;
  if (!AllDigits(digits) || digits.front() == '0') return std::nullopt;
  const Int value = negative ? -DigitsValue(digits) : DigitsValue(digits);
  if (value > Int64Max() || value < Int64Min()) return std::nullopt;
  return value;
}

// "An optional sign and decimal digits that fit in a signed 64-bit integer (leading zeros
// allowed)."
inline std::optional<Int> StoredCount(std::string_view value) {
  bool negative = false;
  if (!value.empty() && (value.front() == '+' || value.front() == '-')) {
    negative = value.front() == '-';
    value.remove_prefix(1);
  }
  if (!AllDigits(value)) return std::nullopt;
  const Int magnitude = DigitsValue(value);
  const Int count = negative ? -magnitude : magnitude;
  if (count > Int64Max() || count < Int64Min()) return std::nullopt;
  return count;
}

// The largest period in seconds: its milliseconds fit in int64.
inline Int MaxPeriodSeconds() {
  return Int64Max() / 1000;
}

struct Limits {
  Int capacity;    // tokens per period
  Int period_ms;   // the period
  Int max_tokens;  // M
  Int window_ms;   // ceil(M * period_ms / capacity)

  Rational rate() const { return Rational(capacity, period_ms); }
};

inline Limits MakeLimits(const Int& capacity, const Int& period_ms, const Int& max_tokens) {
  const Rational fill = Rational(max_tokens * period_ms, capacity);
  return {capacity, period_ms, max_tokens, Ceil(fill)};
}

struct ParsedBucket {
  std::string_view error = err::kNone;
  Limits limits{};
  Int tokens = 1;
  bool has_burst = false;
  bool verbose = false;
};

// The words of one bucket as the grammar places them, before any value is read.
struct BucketWords {
  std::string_view capacity;
  std::string_view period;
  std::optional<std::string_view> tokens;
  std::optional<std::string_view> burst;
};

// Values in the documented order: capacity, period, tokens, burst; then the period's size; then
// the time to fill a BURST bucket.
inline ParsedBucket ReadValues(const BucketWords& words) {
  ParsedBucket out;
  const auto capacity = PositiveNumber(words.capacity);
  if (!capacity) return {err::kCapacity};
  const auto period = PositiveNumber(words.period);
  if (!period) return {err::kPeriod};
  if (words.tokens) {
    const auto tokens = PositiveNumber(*words.tokens);
    if (!tokens) return {err::kTokens};
    out.tokens = *tokens;
  }
  std::optional<Int> burst;
  if (words.burst) {
    burst = PositiveNumber(*words.burst);
    if (!burst) return {err::kBurst};
  }
  if (*period > MaxPeriodSeconds()) return {err::kPeriodTooLarge};
  const Int period_ms = *period * 1000;
  out.has_burst = burst.has_value();
  out.limits = MakeLimits(*capacity, period_ms, burst.value_or(*capacity));
  if (out.limits.window_ms > Int64Max()) return {err::kBurstTooLarge};
  return out;
}

// `<capacity> <period> [<tokens>] [BURST <n>] [VERBOSE]`, the words after the key. For refund
// the tokens are required (the third word is the tokens, whatever it says) and VERBOSE is not an
// option.
inline ParsedBucket ParseBucketCall(const std::vector<std::string_view>& args, bool tokens_required,
                                    bool accepts_verbose) {
  if (args.size() < 2) return {err::kArity};
  BucketWords words{args[0], args[1], std::nullopt, std::nullopt};
  auto is_verbose = [&](std::string_view w) { return accepts_verbose && SameWord(w, "VERBOSE"); };
  auto is_burst = [](std::string_view w) { return SameWord(w, "BURST"); };
  std::size_t next = 2;
  if (tokens_required) {
    if (args.size() < 3) return {err::kArity};
    words.tokens = args[next++];
  } else if (args.size() > 2 && !is_verbose(args[2]) && !is_burst(args[2])) {
    words.tokens = args[next++];
  }
  bool verbose = false;
  while (next < args.size()) {
    const std::string_view word = args[next];
    if (is_verbose(word)) {
      if (verbose) return {err::kSyntax};
      verbose = true;
      next += 1;
    } else if (is_burst(word) && next + 1 < args.size()) {
      if (words.burst) return {err::kSyntax};
      words.burst = args[next + 1];
      next += 2;
    } else {
      return {err::kArity};
    }
  }
  ParsedBucket out = ReadValues(words);
  out.verbose = verbose;
  return out;
}

// One absorb_multi bucket: `<capacity>[:<burst>] <period> <tokens>`; the burst is what follows
// the first colon.
inline ParsedBucket ParseMultiGroup(std::string_view capacity, std::string_view period,
                                    std::string_view tokens) {
  BucketWords words{capacity, period, tokens, std::nullopt};
  const std::size_t colon = capacity.find(':');
  if (colon != std::string_view::npos) {
    words.capacity = capacity.substr(0, colon);
    words.burst = capacity.substr(colon + 1);
  }
  return ReadValues(words);
}

// SHIELD.stats [CLUSTER [TIMEOUT <ms>]]; a first word RESET names SHIELD.stats_reset.
enum class StatsMode { kNode, kCluster };
struct ParsedStats {
  std::string_view error = err::kNone;
  StatsMode mode = StatsMode::kNode;
  Int timeout_ms = 0;
};

inline ParsedStats ParseStatsCall(const std::vector<std::string_view>& args) {
  if (args.empty()) return {};
  if (SameWord(args[0], "RESET")) return {err::kStatsResetMoved};
  if (args.size() == 1 && SameWord(args[0], "CLUSTER")) {
    return {err::kNone, StatsMode::kCluster, 1000};
  }
  if (args.size() == 3 && SameWord(args[0], "CLUSTER") && SameWord(args[1], "TIMEOUT")) {
    const auto timeout = PositiveNumber(args[2]);
    if (!timeout || *timeout > 60000) return {err::kTimeout};
    return {err::kNone, StatsMode::kCluster, *timeout};
  }
  return {err::kSyntax};
}

// ---- The bucket -------------------------------------------------------------------------------

// A key as Redis holds it: a string, and an absolute expiry in ms (none: no expiry).
struct Key {
  std::string value;
  std::optional<Int> expire_at_ms;
};

// The keys of one database, with Redis's expiry rule.
class Store {
 public:
  std::optional<Key> Get(int id) const {
    const auto it = keys_.find(id);
    if (it == keys_.end()) return std::nullopt;
    return it->second;
  }
  void Set(int id, Key key) { keys_[id] = std::move(key); }
  bool Delete(int id) { return keys_.erase(id) > 0; }
  // A key is gone once the clock has passed its expiry.
  void ExpireAt(const Int& now_ms) {
    for (auto it = keys_.begin(); it != keys_.end();) {
      if (it->second.expire_at_ms && now_ms > *it->second.expire_at_ms) {
        it = keys_.erase(it);
      } else {
        ++it;
      }
    }
  }
  const std::map<int, Key>& keys() const { return keys_; }

 private:
  std::map<int, Key> keys_;
};

// A bucket's level over time, from what its key holds:
//   level(t) = min(M, base + rate * max(0, t - anchor))
struct Curve {
  Limits limits;
  Rational base;  // in [0, M]
  Int anchor_ms;  // when refill starts from `base`

  Rational LevelAt(const Int& t) const {
    const Int since = t > anchor_ms ? Int(t - anchor_ms) : Int(0);
    const Rational level = base + limits.rate() * Rational(since);
    const Rational max = Rational(limits.max_tokens);
    return level < max ? level : max;
  }

  // The smallest w >= 0 with level(t + w) >= x; nullopt when x > M (never).
  std::optional<Int> WaitFor(const Rational& x, const Int& t) const {
    if (x > Rational(limits.max_tokens)) return std::nullopt;
    if (LevelAt(t) >= x) return Int(0);
    const Int w = Ceil(Rational(anchor_ms) + (x - base) / limits.rate() - Rational(t));
    // The definition, checked: w waits enough, one millisecond less does not.
    Require(w >= 1, "a wait for what the bucket does not hold is positive");
    Require(LevelAt(t + w) >= x, "waiting retry_after_ms is enough");
    Require(LevelAt(t + w - 1) < x, "waiting one millisecond less is not");
    return w;
  }
};

// Reads a key; nullopt when its value is not a token count.
inline std::optional<Curve> Read(const Limits& limits, const std::optional<Key>& key) {
  const Rational max = Rational(limits.max_tokens);
  if (!key) return Curve{limits, max, 0};
  const auto count = StoredCount(key->value);
  if (!count) return std::nullopt;
  if (!key->expire_at_ms) return Curve{limits, max, 0};  // no expiry: fully refilled
  Rational base = Rational(*count);
  if (base < 0) base = 0;
  if (base > max) base = max;
  return Curve{limits, base, *key->expire_at_ms - limits.window_ms};
}

// What a write of `level` at `t` stores (contract, point 4).
inline Key Write(const Limits& limits, const Rational& level, const Int& t) {
  const Int count = Floor(level);
  const Int kept_ms = Floor((level - Rational(count)) / limits.rate());
  return Key{count.str(), t + limits.window_ms - kept_ms};
}

// Every reply is a list of integers (an integer reply is a list of one), or an error.
struct Reply {
  std::string_view error = err::kNone;
  std::vector<Int> values{};
};

inline Int Saturated(const Int& wait) {
  return wait > Int64Max() ? Int64Max() : wait;
}

// The VERBOSE fields for one bucket: `before` is the bucket at t, `after` after the write (when
// the whole call was allowed), `n` the tokens asked for.
inline std::vector<Int> VerboseFields(const Limits& limits, const Curve& before,
                                      const std::optional<Curve>& after, const Int& n, bool allowed,
                                      const Int& t) {
  const Curve& now = allowed ? *after : before;
  const Rational level_now = now.LevelAt(t);
  Int retry = 0;
  if (!allowed) {
    const auto wait = before.WaitFor(Rational(n), t);
    retry = wait ? Saturated(*wait) : Int(-1);
  }
  const Int reset = Saturated(*now.WaitFor(Rational(limits.max_tokens), t));
  return {
      allowed ? 1 : 0, Floor(level_now), limits.capacity, limits.period_ms / 1000, retry, reset};
}

// The time check every bucket command makes before it reads a key: the furthest expiry a write
// can set, t + window, fits in int64.
inline std::string_view ExpiryError(const ParsedBucket& parsed, const Int& t) {
  if (t + parsed.limits.window_ms <= Int64Max()) return err::kNone;
  return parsed.has_burst ? err::kBurstTooLarge : err::kPeriodTooLarge;
}

// The amount a write lost to millisecond rounding: what the bucket should hold minus what it
// holds when read back at once. Contract, point 4: 0 <= loss < rate, and below one token (the
// whole tokens are stored exactly).
inline bool LossWithinBound(const Limits& limits, const Rational& intended, const Rational& kept) {
  const Rational loss = intended - kept;
  return loss >= 0 && loss < limits.rate() && loss < 1;
}

// The model of a Redis server with Shield: one database of keys, numbered buckets.
class Server {
 public:
  explicit Server(const Int& now_ms) : now_ms_(now_ms) {}

  const Int& now_ms() const { return now_ms_; }
  void SetClock(const Int& now_ms) {
    now_ms_ = now_ms;
    store_.ExpireAt(now_ms_);
  }
  Store& store() { return store_; }

  // SHIELD.absorb (and, with write = false, SHIELD.inspect).
  Reply Absorb(int id, const ParsedBucket& parsed, bool write, bool verbose) {
    if (!parsed.error.empty()) return {parsed.error};
    if (const auto e = ExpiryError(parsed, now_ms_); !e.empty()) return {e};
    const auto before = Read(parsed.limits, store_.Get(id));
    if (!before) return {err::kInvalidStored};
    const Rational level = before->LevelAt(now_ms_);
    const bool allowed = level >= Rational(parsed.tokens);
    std::optional<Curve> after;
    if (allowed) {
      const Key written = Write(parsed.limits, level - Rational(parsed.tokens), now_ms_);
      after = Read(parsed.limits, written);
      Require(
          LossWithinBound(parsed.limits, level - Rational(parsed.tokens), after->LevelAt(now_ms_)),
          "a write loses less than one millisecond of refill");
      if (write) store_.Set(id, written);
    }
    if (verbose || !write) {
      return {err::kNone,
              VerboseFields(parsed.limits, *before, after, parsed.tokens, allowed, now_ms_)};
    }
    return {err::kNone, {allowed ? Floor(after->LevelAt(now_ms_)) : Int(-1)}};
  }

  // SHIELD.refund. `given` receives what the bucket gained (for the ledger).
  Reply Refund(int id, const ParsedBucket& parsed, Rational* given = nullptr) {
    if (given) *given = 0;
    if (!parsed.error.empty()) return {parsed.error};
    if (const auto e = ExpiryError(parsed, now_ms_); !e.empty()) return {e};
    const auto before = Read(parsed.limits, store_.Get(id));
    if (!before) return {err::kInvalidStored};
    const Rational max = Rational(parsed.limits.max_tokens);
    const Rational level = before->LevelAt(now_ms_);
    if (level >= max) return {err::kNone, {Floor(level)}};
    Rational target = level + Rational(parsed.tokens);
    if (target > max) target = max;
    const Key written = Write(parsed.limits, target, now_ms_);
    const Rational kept = Read(parsed.limits, written)->LevelAt(now_ms_);
    Require(LossWithinBound(parsed.limits, target, kept),
            "a write loses less than one millisecond of refill");
    store_.Set(id, written);
    if (given) *given = kept - level;
    return {err::kNone, {Floor(kept)}};
  }

  // SHIELD.absorb_multi over distinct buckets: all or nothing.
  struct Group {
    int id;
    ParsedBucket parsed;
  };
  Reply AbsorbMulti(const std::vector<Group>& groups, bool verbose) {
    for (const auto& g : groups) {
      if (!g.parsed.error.empty()) return {g.parsed.error};
      if (const auto e = ExpiryError(g.parsed, now_ms_); !e.empty()) return {e};
    }
    std::vector<Curve> before;
    for (const auto& g : groups) {
      const auto curve = Read(g.parsed.limits, store_.Get(g.id));
      if (!curve) return {err::kInvalidStored};
      before.push_back(*curve);
    }
    bool allowed = true;
    std::vector<bool> enough;
    for (std::size_t i = 0; i < groups.size(); ++i) {
      enough.push_back(before[i].LevelAt(now_ms_) >= Rational(groups[i].parsed.tokens));
      allowed = allowed && enough.back();
    }
    std::vector<std::optional<Curve>> after(groups.size());
    if (allowed) {
      for (std::size_t i = 0; i < groups.size(); ++i) {
        const Limits& limits = groups[i].parsed.limits;
        const Rational left = before[i].LevelAt(now_ms_) - Rational(groups[i].parsed.tokens);
        const Key written = Write(limits, left, now_ms_);
        after[i] = Read(limits, written);
        store_.Set(groups[i].id, written);
      }
    }
    Reply reply;
    for (std::size_t i = 0; i < groups.size(); ++i) {
      const ParsedBucket& p = groups[i].parsed;
      if (verbose) {
        const auto fields =
            VerboseFields(p.limits, before[i], after[i], p.tokens, allowed, now_ms_);
        reply.values.insert(reply.values.end(), fields.begin(), fields.end());
      } else if (!enough[i]) {
        reply.values.push_back(-1);
      } else {
        const Curve& now = allowed ? *after[i] : before[i];
        reply.values.push_back(Floor(now.LevelAt(now_ms_)));
      }
    }
    return reply;
  }

  // SHIELD.reset of one key: 1 when it existed.
  Reply Reset(int id) { return {err::kNone, {store_.Delete(id) ? 1 : 0}}; }

 private:
  Int now_ms_;
  Store store_;
};

// Contract, point 6: over any stretch since the last Restart, granted <= M + rate * forward time
// + refunded. With X = granted - rate * forward - refunded, that is X(now) - min X(earlier) <= M.
class GrantLedger {
 public:
  explicit GrantLedger(const Limits& limits) : limits_(limits) {}

  void Restart() { lowest_ = x_; }
  void ClockForward(const Int& ms) { Lower(limits_.rate() * Rational(ms)); }
  void Refunded(const Rational& tokens) { Lower(tokens); }
  // False when the grant goes past the bound.
  [[nodiscard]] bool Granted(const Int& tokens) {
    x_ += Rational(tokens);
    return x_ - lowest_ <= Rational(limits_.max_tokens);
  }

 private:
  void Lower(const Rational& amount) {
    x_ -= amount;
    if (x_ < lowest_) lowest_ = x_;
  }

  Limits limits_;
  Rational x_ = 0;
  Rational lowest_ = 0;
};

}  // namespace shield_model
