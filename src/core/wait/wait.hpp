// WAIT on SHIELD.absorb and SHIELD.gcra: when a waiting call's tokens are there, as pure
// arithmetic over an algorithm's Decide. No Redis here: the glue (module/wait.cpp) keeps the
// queues, the timers and the blocked clients, and plans each queue with these functions.
//
// Times are unix nanoseconds for both algorithms: GCRA decides in nanoseconds, a bucket at the
// millisecond at or after the time it is given (every time a bucket's plan produces is a whole
// millisecond).
#pragma once

#include <cstdint>
#include <string_view>

#include "core/bucket/bucket.hpp"
#include "core/common/policy.hpp"
#include "core/gcra/gcra.hpp"

namespace shield::wait {

enum class Algorithm : uint8_t { kBucket, kGcra };

// One waiting call: its algorithm, limits and tokens.
struct Request {
  Algorithm algorithm = Algorithm::kBucket;
  BucketLimits bucket{};  // kBucket
  GcraLimits gcra{};      // kGcra
  int64_t tokens = 1;
};

// The longest WAIT, in milliseconds: a day.
inline constexpr int64_t kMaxWaitMs = 86'400'000;

// Decides `operation` for the request at `at_ns` on what the key holds (its expiry read).
Outcome DecideAt(const Request& request, const StoredValue& stored, Operation operation,
                 int64_t at_ns, Detail detail) noexcept;

// What a key holds, owned: the value a plan expects the key to hold after the grants before it.
struct Snapshot {
  bool exists = false;
  bool fits = true;  // false: the value is longer than any value Shield writes
  uint8_t len = 0;
  int64_t expire_at_ms = kNoExpiry;
  char text[kStoredTextCapacity] = {};

  StoredValue View() const noexcept { return {exists, std::string_view{text, len}, expire_at_ms}; }
  // What `stored` holds (its expiry read).
  static Snapshot Of(const StoredValue& stored) noexcept;
  // The key after `outcome`'s write.
  void Apply(const Outcome& outcome) noexcept;
  // True when a key holding `real` at `now_ms` is the same limit as this snapshot: the same value
  // and expiry, or missing where the snapshot has expired by now (the server deleted it).
  bool SameAs(const Snapshot& real, int64_t now_ms) const noexcept;
};

// When a request's tokens are there in a key holding `stored`, nothing else taking from it,
// counted from `from_ns` (a bucket: from the millisecond at or after it).
struct Grant {
  Error error = Error::kNone;  // the key holds what this algorithm cannot read
  bool never = false;          // no wait helps: more tokens than the limit holds
  int64_t at_ns = 0;           // the earliest instant at or after from_ns
  Outcome outcome{};           // the take at that instant (Detail::kFull)
};
Grant EarliestGrant(const Request& request, const StoredValue& stored, int64_t from_ns) noexcept;

// Milliseconds from `now_ns` until `at_ns`, rounded up, never below 0: what retry_after_ms says.
inline int64_t WaitMs(int64_t at_ns, int64_t now_ns) noexcept {
  return at_ns <= now_ns ? 0 : CeilDiv(at_ns - now_ns, kNanosPerMilli);
}

}  // namespace shield::wait
