// A fake clock and a fake key for the core's tests: time only moves when a test says so, and a
// key disappears at its expiry as it does in Redis.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include "core/bucket/bucket.hpp"
#include "core/common/policy.hpp"

namespace shield {

inline constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
inline constexpr int64_t kStartMs = 1'700'000'000'000;  // an ordinary unix time in ms

// Time as a test parameter: starts at an ordinary unix time and only moves when told to.
class FakeClock {
 public:
  int64_t now_ms() const { return now_ms_; }
  void Advance(int64_t ms) { now_ms_ += ms; }

 private:
  int64_t now_ms_ = kStartMs;
};

// One bucket stored the way Redis stores it: a key that disappears at its expiry.
class FakeKey {
 public:
  FakeKey(int64_t capacity, int64_t period_ms) : limits_(PlainLimits(capacity, period_ms)) {}
  explicit FakeKey(const BucketLimits& limits) : limits_(limits) {}

  // Replies like SHIELD.absorb: tokens left, or -1.
  int64_t Absorb(int64_t tokens) {
    const auto decision = shield::Absorb(limits_, Read(), tokens, clock.now_ms());
    if (!decision.allowed) return -1;
    Write(decision.after);
    return decision.after.available;
  }

  // Replies like SHIELD.refund: tokens in the bucket afterwards. The core decides; the fake only
  // carries the decision out, as the glue does.
  int64_t Refund(int64_t tokens) {
    const RefundDecision decision = shield::Refund(limits_, Read(), tokens, clock.now_ms());
    if (decision.write) stored_ = decision.store;
    return decision.available;
  }

  // The bucket now, as SHIELD.inspect reads it.
  BucketState State() { return StateAt(limits_, Read(), clock.now_ms()); }
  const BucketLimits& limits() const { return limits_; }

  // As if a client had written the key directly (SET key value [PXAT expire_at]).
  void Set(int64_t tokens, int64_t expire_at_ms = kNoExpiry) {
    stored_ = StoredBucket{tokens, expire_at_ms};
  }

  std::optional<StoredBucket> stored() {
    Expire();
    return stored_;
  }

  FakeClock clock;

 private:
  StoredBucket Read() {
    Expire();
    return stored_.value_or(StoredBucket{0, kNoExpiry});
  }
  void Write(const BucketState& state) { stored_ = StoreAt(limits_, state, clock.now_ms()); }

  void Expire() {
    if (stored_ && stored_->expire_at_ms != kNoExpiry && stored_->expire_at_ms <= clock.now_ms())
      stored_.reset();
  }

  BucketLimits limits_;
  std::optional<StoredBucket> stored_;
};

// A string key as the store hands it to an algorithm's Decide (its value and expiry), which
// carries an Outcome out as the glue does. No rule of any algorithm lives here.
struct StoredString {
  std::string value;
  int64_t expire_at_ms = kNoExpiry;
  bool exists = false;

  StoredValue View() const { return {exists, value, expire_at_ms}; }
  void Apply(const Outcome& outcome) {
    if (outcome.write == KeyWrite::kStore) {
      value = std::string(outcome.Text());
      expire_at_ms = outcome.expire_at_ms;
      exists = true;
    } else if (outcome.write == KeyWrite::kDelete) {
      *this = {};
    }
  }
};

}  // namespace shield
