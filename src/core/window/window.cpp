#include "core/window/window.hpp"

#include <algorithm>
#include <limits>

#include "core/common/numeric.hpp"

namespace shield {

std::optional<WindowState> ParseWindowState(std::string_view text) noexcept {
  int64_t values[3];
  for (int i = 0; i < 3; ++i) {
    const std::size_t colon = text.find(':');
    if ((i < 2) != (colon != std::string_view::npos)) return std::nullopt;
    const auto value = ParseStoredInt64({text.data(), std::min(colon, text.size())});
    if (!value) return std::nullopt;
    values[i] = *value;
    // Not substr, which can throw (see ParseMultiBucket in command.cpp).
    text = i < 2 ? std::string_view{text.data() + colon + 1, text.size() - colon - 1}
                 : std::string_view{};
  }
  return WindowState{values[0], std::max<int64_t>(values[1], 0), std::max<int64_t>(values[2], 0)};
}

std::size_t FormatWindowState(const WindowState& state, char* out) noexcept {
  std::size_t len = FormatInt64(state.start_ms, out);
  out[len++] = ':';
  len += FormatInt64(state.previous, out + len);
  out[len++] = ':';
  len += FormatInt64(state.current, out + len);
  return len;
}

bool WindowExpiryFits(int64_t now_ms, int64_t window_ms) noexcept {
  return static_cast<Int128>(now_ms) + 2 * static_cast<Int128>(window_ms) <= kInt64Max;
}

WindowNow WindowAt(const WindowLimits& limits, const std::optional<WindowState>& stored,
                   int64_t now_ms) noexcept {
  const int64_t window = limits.window_ms;
  if (stored) {
    // A clock behind the stored start reads as the start: the counts stay as they are.
    const Int128 elapsed = std::max<Int128>(static_cast<Int128>(now_ms) - stored->start_ms, 0);
    if (elapsed < window) return {*stored, static_cast<int64_t>(elapsed)};
    if (elapsed < 2 * static_cast<Int128>(window)) {
      // One window later: the current count becomes the previous one. start + window <= now.
      return {{stored->start_ms + window, stored->current, 0},
              static_cast<int64_t>(elapsed - window)};
    }
  }
  // Nothing stored, or nothing left in any window: a fresh window on a multiple of the window.
  const Int128 start =
      std::max<Int128>(FloorDiv(now_ms, window) * static_cast<Int128>(window), kInt64Min);
  return {{static_cast<int64_t>(start), 0, 0}, static_cast<int64_t>(now_ms - start)};
}

int64_t WeightedPrevious(const WindowLimits& limits, const WindowNow& now) noexcept {
  const Int128 window = limits.window_ms;
  const Int128 product = static_cast<Int128>(now.state.previous) * (window - now.elapsed_ms);
  // At most `previous`, so it fits.
  return static_cast<int64_t>((product + window - 1) / window);
}

int64_t WindowRemaining(const WindowLimits& limits, const WindowNow& now) noexcept {
  const Int128 remaining =
      static_cast<Int128>(limits.limit) - now.state.current - WeightedPrevious(limits, now);
  return static_cast<int64_t>(std::max<Int128>(remaining, 0));
}

int64_t WindowExpireAt(const WindowLimits& limits, const WindowState& state) noexcept {
  return SaturateToInt64(static_cast<Int128>(state.start_ms) +
                         2 * static_cast<Int128>(limits.window_ms));
}

int64_t WindowRetryAfterMs(const WindowLimits& limits, const WindowNow& now, int64_t tokens,
                           int64_t now_ms) noexcept {
  if (tokens > limits.limit) return kNever;
  const Int128 window = limits.window_ms;
  // The current window from `now`, then the next two from their starts, as if nothing else
  // took: in the third both counts are out, and tokens <= limit fit at its start.
  Int128 start = now.state.start_ms;
  Int128 previous = now.state.previous;
  Int128 current = now.state.current;
  Int128 from = now.elapsed_ms;
  for (int step = 0; step < 3; ++step) {
    const Int128 room = static_cast<Int128>(limits.limit) - current - tokens;
    if (room >= 0) {
      // The first e >= from with ceil(previous * (window - e) / window) <= room, that is
      // previous * (window - e) <= room * window.
      Int128 at = from;
      if (previous > 0) at = std::max<Int128>(from, window - room * window / previous);
      if (at < window) {
        if (step == 0 && at == from) return 0;
        return MsUntil(start + at, now_ms);
      }
    }
    start += window;
    previous = current;
    current = 0;
    from = 0;
  }
  return MsUntil(start, now_ms);  // not reached: the third window admits at its start
}

int64_t WindowResetAfterMs(const WindowLimits& limits, const WindowNow& now,
                           int64_t now_ms) noexcept {
  const Int128 window = limits.window_ms;
  const Int128 start = now.state.start_ms;
  if (now.state.current > 0) return MsUntil(start + 2 * window, now_ms);
  if (now.state.previous > 0) return MsUntil(start + window, now_ms);
  return 0;
}

WindowDecision WindowAbsorb(const WindowLimits& limits, const std::optional<WindowState>& stored,
                            int64_t tokens, int64_t now_ms) noexcept {
  const WindowNow before = WindowAt(limits, stored, now_ms);
  if (tokens > WindowRemaining(limits, before)) return {false, before, before};
  WindowNow after = before;
  after.state.current += tokens;  // current + tokens <= limit: fits
  return {true, before, after};
}

VerboseValues WindowVerbose(const WindowLimits& limits, const WindowDecision& decision,
                            int64_t tokens, int64_t now_ms) noexcept {
  const WindowNow& now = decision.allowed ? decision.after : decision.before;
  return {decision.allowed ? 1 : 0,
          WindowRemaining(limits, now),
          limits.limit,
          limits.window_ms / kMillisPerSecond,
          decision.allowed ? 0 : WindowRetryAfterMs(limits, decision.before, tokens, now_ms),
          WindowResetAfterMs(limits, now, now_ms)};
}

WindowArgs ParseWindowArgs(std::span<const std::string_view> args, int64_t now_ms) noexcept {
  int64_t window_s = 0;
  const LimitArgs common = ParseLimitArgs(args, [&window_s](std::string_view text) {
    const auto window = ParsePositive(text);
    if (!window) return Error::kWindow;
    window_s = *window;
    return Error::kNone;
  });
  if (common.error != Error::kNone) return {common.error};
  if (window_s > kMaxPeriodSeconds || !WindowExpiryFits(now_ms, window_s * kMillisPerSecond)) {
    return {Error::kWindowTooLarge};
  }
  return {Error::kNone,
          {common.limit, window_s * kMillisPerSecond},
          common.tokens,
          common.verbose,
          common.dry_run};
}

}  // namespace shield
