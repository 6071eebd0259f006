#include "core/wait/wait.hpp"

#include <algorithm>
#include <cstring>

#include "core/bucket/bucket_policy.hpp"
#include "core/gcra/gcra_policy.hpp"

namespace shield::wait {
namespace {

// The millisecond at or after `ns` (ns >= 0), as a bucket decides.
int64_t BucketMs(int64_t ns) noexcept {
  return CeilDiv(ns, kNanosPerMilli);
}

// Tries a take at `at_ns`; `retry_ns` receives the exact wait when it is refused (-1: never).
Outcome TakeAt(const Request& request, const StoredValue& stored, int64_t at_ns,
               int64_t& retry_ns) noexcept {
  retry_ns = 0;
  if (request.algorithm == Algorithm::kBucket) {
    Outcome outcome = bucket::Decide(request.bucket, stored, Operation::kTake, request.tokens,
                                     BucketMs(at_ns), Detail::kFull);
    if (!outcome.allowed && outcome.error == Error::kNone) {
      retry_ns =
          outcome.retry_after_ms == kNever
              ? -1
              : SaturateToInt64(static_cast<Int128>(outcome.retry_after_ms) * kNanosPerMilli);
    }
    return outcome;
  }
  GcraDecision decision{};
  Outcome outcome = gcra::Decide(request.gcra, stored, Operation::kTake, request.tokens, at_ns,
                                 Detail::kFull, Error::kGcraInvalidStored, &decision);
  if (!outcome.allowed && outcome.error == Error::kNone) {
    retry_ns = decision.retry_after_ns == kNeverNs ? -1 : SaturateToInt64(decision.retry_after_ns);
  }
  return outcome;
}

}  // namespace

Outcome DecideAt(const Request& request, const StoredValue& stored, Operation operation,
                 int64_t at_ns, Detail detail) noexcept {
  if (request.algorithm == Algorithm::kBucket) {
    return bucket::Decide(request.bucket, stored, operation, request.tokens, BucketMs(at_ns),
                          detail);
  }
  return gcra::Decide(request.gcra, stored, operation, request.tokens, at_ns, detail,
                      Error::kGcraInvalidStored);
}

Snapshot Snapshot::Of(const StoredValue& stored) noexcept {
  Snapshot snapshot;
  snapshot.exists = stored.exists;
  snapshot.expire_at_ms = stored.expire_at_ms;
  if (!stored.exists) return snapshot;
  if (stored.value.size() > sizeof snapshot.text) {
    snapshot.fits = false;
    return snapshot;
  }
  snapshot.len = static_cast<uint8_t>(stored.value.size());
  std::memcpy(snapshot.text, stored.value.data(), stored.value.size());
  return snapshot;
}

void Snapshot::Apply(const Outcome& outcome) noexcept {
  switch (outcome.write) {
    case KeyWrite::kStore:
      exists = true;
      fits = true;
      len = outcome.text_len;
      std::memcpy(text, outcome.text, outcome.text_len);
      expire_at_ms = outcome.expire_at_ms;
      break;
    case KeyWrite::kDelete:
      *this = Snapshot{};
      break;
    case KeyWrite::kNothing:
      break;
  }
}

bool Snapshot::SameAs(const Snapshot& real, int64_t now_ms) const noexcept {
  if (!fits || !real.fits) return false;
  if (real.exists == exists) {
    return !exists || (real.len == len && real.expire_at_ms == expire_at_ms &&
                       std::memcmp(real.text, text, len) == 0);
  }
  return !real.exists && expire_at_ms != kNoExpiry && expire_at_ms <= now_ms;
}

Grant EarliestGrant(const Request& request, const StoredValue& stored, int64_t from_ns) noexcept {
  Grant grant;
  int64_t at_ns =
      request.algorithm == Algorithm::kBucket ? BucketMs(from_ns) * kNanosPerMilli : from_ns;
  // The wait each algorithm gives is exact, so the second try is taken; a few more guard
  // against any rounding.
  constexpr int kTries = 4;
  for (int attempt = 0; attempt < kTries; ++attempt) {
    int64_t retry_ns = 0;
    grant.outcome = TakeAt(request, stored, at_ns, retry_ns);
    if (grant.outcome.error != Error::kNone) {
      grant.error = grant.outcome.error;
      return grant;
    }
    if (grant.outcome.allowed) {
      grant.at_ns = at_ns;
      return grant;
    }
    if (retry_ns < 0 || at_ns > kInt64Max - std::max<int64_t>(retry_ns, 1)) break;
    at_ns += std::max<int64_t>(retry_ns, 1);
  }
  grant.never = true;
  return grant;
}

}  // namespace shield::wait
