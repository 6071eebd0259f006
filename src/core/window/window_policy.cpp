#include "core/window/window_policy.hpp"

#include <algorithm>

namespace shield::window {
namespace {

PolicyState StateOf(const WindowLimits& limits, const WindowNow& now, int64_t now_ms) noexcept {
  return {WindowRemaining(limits, now), WindowResetAfterMs(limits, now, now_ms)};
}

void Store(const WindowLimits& limits, const WindowState& state, Outcome& outcome) noexcept {
  outcome.write = KeyWrite::kStore;
  outcome.text_len = static_cast<uint8_t>(FormatWindowState(state, outcome.text));
  outcome.expire_at_ms = WindowExpireAt(limits, state);
}

}  // namespace

Outcome Decide(const WindowLimits& limits, const StoredValue& stored, Operation operation,
               int64_t tokens, int64_t now_ms, Detail detail) noexcept {
  std::optional<WindowState> state;
  if (stored.exists) {
    state = ParseWindowState(stored.value);
    if (!state) return Failed(Error::kInvalidWindow);
  }
  WindowDecision decision{};
  Outcome outcome;
  if (operation == Operation::kGive) {
    const WindowNow before = WindowAt(limits, state, now_ms);
    WindowNow after = before;
    after.state.current = std::max<int64_t>(before.state.current - tokens, 0);
    outcome.refunded = std::max<int64_t>(before.state.current, 0) - after.state.current;
    if (outcome.refunded > 0) Store(limits, after.state, outcome);
    decision = {true, before, after};
    outcome.reply = WindowRemaining(limits, after);
  } else {
    decision = WindowAbsorb(limits, state, tokens, now_ms);
    outcome.reply = WindowReply(limits, decision);
    if (decision.allowed && operation == Operation::kTake) {
      Store(limits, decision.after.state, outcome);
    }
  }
  outcome.allowed = decision.allowed;
  if (detail == Detail::kFull) {
    DescribeLimit(outcome, limits.limit, limits.window_ms / kMillisPerSecond,
                  StateOf(limits, decision.before, now_ms),
                  StateOf(limits, decision.after, now_ms));
    if (!decision.allowed) {
      outcome.retry_after_ms = WindowRetryAfterMs(limits, decision.before, tokens, now_ms);
    }
  }
  return outcome;
}

}  // namespace shield::window
