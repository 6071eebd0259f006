// The token bucket's whole decision in the one shape of every algorithm (common/policy.hpp):
// SHIELD.absorb (kTake), SHIELD.inspect (kPeek), SHIELD.refund (kGive), each bucket of
// SHIELD.absorb_multi, and a BUCKET policy of SHIELD.limit. No Redis here.
#pragma once

#include <cstdint>

#include "core/bucket/bucket.hpp"
#include "core/common/policy.hpp"

namespace shield::bucket {

// Reads the count a bucket key holds (a missing key is an empty count with no expiry, which reads
// as a full bucket). Error::kInvalidStored for a value that is not a count, Error::kForeignTat for
// a GCRA time (gcra.hpp). The expiry must have been read.
Error ReadStored(const StoredValue& stored, StoredBucket& out) noexcept;

// The decision for `tokens` at `now_ms` on the bucket `limits` whose key held `stored`:
// - kTake: allowed when the bucket holds the tokens; then it stores the count left and the expiry
//   at which the bucket is full again. The reply is the count left, or -1.
// - kPeek: kTake's decision, writing nothing.
// - kGive: gives the tokens back, never above the maximum; a full bucket (a missing key among
//   them) is not written. The reply is the count afterwards.
// - kSettle: `tokens` is actual - reserved: Settle (bucket.hpp) gives back or takes, leaving the
//   bucket in debt when it lacks tokens. Always written. The reply is the balance: the tokens in
//   the bucket, or minus its debt.
// The RateLimit policy of a bucket is q = max_tokens and w = the seconds it takes to fill from
// empty (rounded up): without BURST, q = capacity and w = period. So remaining <= q always.
// The remaining counts of `committed` and `unchanged` are filled at every Detail.
Outcome Decide(const BucketLimits& limits, const StoredValue& stored, Operation operation,
               int64_t tokens, int64_t now_ms, Detail detail) noexcept;

}  // namespace shield::bucket
