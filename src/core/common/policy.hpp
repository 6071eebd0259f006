// The one shape of every algorithm's decision. Each algorithm (bucket/, gcra/, window/, quota/)
// has a `Decide` that takes what its key held and returns an Outcome: whether the call is allowed,
// what to write (the value and its absolute expiry) or whether to delete, what to reply and what
// to count. The glue carries an Outcome out and adds nothing of its own; a command over several
// algorithms (SHIELD.limit) decides every key the same way, then writes all or nothing. No Redis.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/common/errors.hpp"
#include "core/common/int_parse.hpp"
#include "core/common/numeric.hpp"
#include "core/common/reply.hpp"

namespace shield {

// What a call does with a policy's tokens.
enum class Operation : uint8_t {
  kTake,  // take them when there are enough (absorb)
  kPeek,  // decide as kTake would, and write nothing (inspect, DRYRUN)
  kGive,  // give them back (refund)
  // take or give the difference between a cost reserved and the cost known afterwards: `tokens`
  // is actual - reserved; what the bucket lacks becomes debt (SHIELD.settle, SETTLE)
  kSettle,
};

// How much of the Outcome to compute: an integer reply needs only the decision and the write;
// VERBOSE and SHIELD.limit need every field.
enum class Detail : uint8_t { kReply, kFull };

// "The key has no expiry" (or does not exist).
inline constexpr int64_t kNoExpiry = -1;
// An expiry the glue has not read: an algorithm that needs it answers needs_expiry, and the glue
// reads it and decides again (GCRA reads it only for a time in the past).
inline constexpr int64_t kExpiryUnread = kInt64Min;

// What a key held when its policy was decided.
struct StoredValue {
  bool exists = false;
  std::string_view value{};          // the string, when it exists
  int64_t expire_at_ms = kNoExpiry;  // its absolute expiry, kNoExpiry, or kExpiryUnread
};

enum class KeyWrite : uint8_t { kNothing, kStore, kDelete };

// The longest value any algorithm stores: the sliding window's three integers.
inline constexpr std::size_t kStoredTextCapacity = 3 * kInt64TextCapacity;

// A policy's numbers at the end of the call.
struct PolicyState {
  int64_t remaining = 0;       // tokens a call could take now
  int64_t reset_after_ms = 0;  // until nothing is counted any more (the bucket is full)
};

struct Outcome {
  Error error = Error::kNone;  // the stored value is not this algorithm's, or a limit overflows
  bool needs_expiry = false;   // decide again with the key's expiry read
  bool allowed = false;        // this policy alone allows the call (kGive: always)
  KeyWrite write = KeyWrite::kNothing;
  uint8_t text_len = 0;
  int64_t expire_at_ms = 0;  // for kStore
  int64_t reply = 0;         // the algorithm's own integer reply
  int64_t refunded = 0;      // kGive, kSettle: the tokens given back, to count
  int64_t taken = 0;         // kSettle: the tokens taken, paid or owed, to count
  // Detail::kFull only:
  PolicyState committed{};     // after the write
  PolicyState unchanged{};     // when nothing is written (another policy refused)
  int64_t retry_after_ms = 0;  // 0 when allowed; kNever when no wait helps
  int64_t capacity = 0;        // VERBOSE's capacity and period, in the algorithm's own terms
  int64_t period_s = 0;
  int64_t quota = 0;     // the most `remaining` can be, and the seconds it takes to come back:
  int64_t window_s = 0;  // RateLimit-Policy's q and w (docs/commands.md, SHIELD.limit)
  char text[kStoredTextCapacity];  // for kStore: the value, text_len bytes

  std::string_view Text() const noexcept { return {text, text_len}; }
  // The numbers after the call: `written` when every policy of the call allowed.
  const PolicyState& State(bool written) const noexcept { return written ? committed : unchanged; }
};

// An Outcome that refuses with `error`.
inline Outcome Failed(Error error) noexcept {
  Outcome outcome;
  outcome.error = error;
  return outcome;
}

// Fills the Detail::kFull fields of a limit of `limit` tokens per `window_s` seconds (VERBOSE's
// capacity and period, and the RateLimit policy's q and w, alike), from its state before the call
// and after it.
inline void DescribeLimit(Outcome& outcome, int64_t limit, int64_t window_s,
                          const PolicyState& before, const PolicyState& after) noexcept {
  outcome.capacity = outcome.quota = limit;
  outcome.period_s = outcome.window_s = window_s;
  outcome.unchanged = before;
  outcome.committed = after;
}

// The VERBOSE map of a policy in a call that is `call_allowed` (and so was written), whose own
// wait is `retry_after_ms` (the policy's, or the call's over several policies).
inline VerboseValues VerboseOf(const Outcome& outcome, bool call_allowed,
                               int64_t retry_after_ms) noexcept {
  const PolicyState& state = outcome.State(call_allowed);
  return {call_allowed ? 1 : 0,
          state.remaining,
          outcome.capacity,
          outcome.period_s,
          call_allowed ? 0 : retry_after_ms,
          state.reset_after_ms};
}

// A policy's own VERBOSE map.
inline VerboseValues VerboseOf(const Outcome& outcome) noexcept {
  return VerboseOf(outcome, outcome.allowed, outcome.retry_after_ms);
}

}  // namespace shield
