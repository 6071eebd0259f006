// GCRA's whole decision in the one shape of every algorithm (common/policy.hpp): SHIELD.gcra,
// CL.THROTTLE and a GCRA policy of SHIELD.limit. No Redis here.
#pragma once

#include <cstdint>

#include "core/common/policy.hpp"
#include "core/gcra/gcra.hpp"

namespace shield::gcra {

// The decision for `quantity` at `now_ns` on the limit whose key held `stored` (its expiry may be
// unread: only a TAT in the past needs it, and then the Outcome asks for it with needs_expiry).
// - kTake: Throttle(quantity): a positive quantity takes, 0 only looks, a negative one gives back
//   (CL.THROTTLE's reading). The reply is the calls of quantity 1 left, or -1.
// - kPeek: kTake's decision, writing nothing.
// - kGive: Throttle(-quantity).
// - kSettle: Settle(quantity) (gcra.hpp): quantity is actual - reserved; never limited.
// `invalid` is the error for a value that is not a TAT (each command words it its own way).
// `decision`, when given, receives Throttle's own result (CL.THROTTLE replies from it).
// The RateLimit policy is q = the limit (calls of quantity 1 at once) and w = the seconds it
// takes to come back from empty, tolerance = interval * limit, rounded up.
Outcome Decide(const GcraLimits& limits, const StoredValue& stored, Operation operation,
               int64_t quantity, int64_t now_ns, Detail detail, Error invalid,
               GcraDecision* decision = nullptr) noexcept;

}  // namespace shield::gcra
