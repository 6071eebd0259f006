// The calendar quota's whole decision in the one shape of every algorithm (common/policy.hpp):
// SHIELD.quota and a QUOTA policy of SHIELD.limit. No Redis here.
#pragma once

#include <cstdint>

#include "core/common/policy.hpp"
#include "core/quota/quota.hpp"

namespace shield::quota {

// The decision for `tokens` at `now_ms` (within `period`, the period holding it) on the quota
// whose key held `stored` (its expiry read):
// - kTake: allowed when the period has the tokens left; then it stores the count taken, expiring
//   when the quota resets. The reply is the tokens left, or -1.
// - kPeek: kTake's decision, writing nothing.
// - kGive: takes the tokens off the count, never below zero; nothing is written when nothing is
//   given back. The reply is the tokens left afterwards.
// The stored value is read as a bucket's count (bucket::ReadStored: kInvalidStored, kForeignTat).
// The RateLimit policy is q = the limit and w = the seconds of the current period.
Outcome Decide(const QuotaLimits& limits, const CalendarPeriod& period, const StoredValue& stored,
               Operation operation, int64_t tokens, int64_t now_ms, Detail detail) noexcept;

}  // namespace shield::quota
