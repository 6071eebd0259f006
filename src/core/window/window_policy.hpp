// The sliding window's whole decision in the one shape of every algorithm (common/policy.hpp):
// SHIELD.window and a WINDOW policy of SHIELD.limit. No Redis here.
#pragma once

#include <cstdint>

#include "core/common/policy.hpp"
#include "core/window/window.hpp"

namespace shield::window {

// The decision for `tokens` at `now_ms` on the window whose key held `stored`:
// - kTake: allowed when the sliding count leaves room; then it stores the state with the expiry
//   at start + 2 * window. The reply is the tokens that can still be taken, or -1.
// - kPeek: kTake's decision, writing nothing.
// - kGive: takes the tokens off the current fixed window's count, never below zero (what the
//   previous window counted stays: it is being forgotten already). The reply is the tokens that
//   can be taken afterwards. Nothing is written when nothing is given back.
// Error::kInvalidWindow for a value that is not a window state. The RateLimit policy is q = the
// limit and w = the window.
Outcome Decide(const WindowLimits& limits, const StoredValue& stored, Operation operation,
               int64_t tokens, int64_t now_ms, Detail detail) noexcept;

}  // namespace shield::window
