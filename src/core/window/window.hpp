// The sliding window behind SHIELD.window, as pure arithmetic: no Redis, no clock. The caller
// passes the current time in and stores what comes out.
//
// "At most `limit` in any window of `window_ms`", approximated with two counters: the tokens taken
// in the current fixed window and in the one before it, the previous one weighted by how much of
// it the sliding window still covers. Memory is fixed (one short string key, whatever the limit),
// where an exact log in a sorted set grows with every call it remembers.
//
// Storage format: one string key per limit holding "<start-ms>:<previous>:<current>" (three
// decimal integers: the unix time at which the current fixed window started, and the tokens
// taken in the window before it and in it), with an absolute expiry at start + 2 * window, when
// both counts are out of every sliding window. Fixed windows of a new key start at multiples of
// the window since the unix epoch (a 60 s window starts on the minute).
//
// The decision at time t, e = t - start milliseconds into the current window (0 <= e < window):
//
//   weighted = ceil(previous * (window - e) / window)
//   allowed  when  current + tokens + weighted <= limit
//
// Exact integer arithmetic (128-bit intermediates); the weighted count is rounded up, so rounding
// never admits a token.
// How far a real window can exceed the limit, and why: docs/design.md#the-sliding-windows-bound
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "core/common/args.hpp"
#include "core/common/int_parse.hpp"
#include "core/common/reply.hpp"

namespace shield {

// A validated limit: both fields positive.
struct WindowLimits {
  int64_t limit;      // tokens in any window
  int64_t window_ms;  // the window
};

// What the key holds. Counts below zero read as zero; counts above the limit are kept (and deny).
struct WindowState {
  int64_t start_ms;  // start of the current fixed window, unix ms
  int64_t previous;  // tokens taken in [start - window, start)
  int64_t current;   // tokens taken in [start, start + window)
};

// Longest "<start>:<previous>:<current>".
inline constexpr std::size_t kWindowStateTextCapacity = 3 * kInt64TextCapacity;

// Reads a stored state: three decimal int64 (optional sign, leading zeros allowed) separated by
// ':'. nullopt means Error::kInvalidWindow.
std::optional<WindowState> ParseWindowState(std::string_view text) noexcept;

// Writes `state` as "<start>:<previous>:<current>" into `out` (kWindowStateTextCapacity bytes);
// returns the length.
std::size_t FormatWindowState(const WindowState& state, char* out) noexcept;

// The window at one instant: the state rolled forward to the fixed window holding `now`, and how
// far into it `now` is (0 <= elapsed_ms < window_ms). A clock that went back before the stored
// start reads as the start: nothing is forgotten.
struct WindowNow {
  WindowState state;
  int64_t elapsed_ms;
};

// True when start + 2 * window (the furthest expiry a write at `now_ms` produces) fits in int64.
bool WindowExpiryFits(int64_t now_ms, int64_t window_ms) noexcept;

// The window at `now_ms` from what the key holds (nullopt: no key).
WindowNow WindowAt(const WindowLimits& limits, const std::optional<WindowState>& stored,
                   int64_t now_ms) noexcept;

// ceil(previous * (window - elapsed) / window): the previous window's tokens still counted.
int64_t WeightedPrevious(const WindowLimits& limits, const WindowNow& now) noexcept;

// Tokens that can be taken now: limit - current - weighted, never below 0.
int64_t WindowRemaining(const WindowLimits& limits, const WindowNow& now) noexcept;

// The expiry to store with `state`: start + 2 * window, saturating at the int64 maximum.
int64_t WindowExpireAt(const WindowLimits& limits, const WindowState& state) noexcept;

// Milliseconds from `now_ms` after which `tokens` can be taken if nothing else takes (exact: one
// millisecond sooner is denied); 0 when they can be taken now, kNever when tokens > limit.
int64_t WindowRetryAfterMs(const WindowLimits& limits, const WindowNow& now, int64_t tokens,
                           int64_t now_ms) noexcept;

// Milliseconds from `now_ms` until nothing is counted any more (0 when nothing is).
int64_t WindowResetAfterMs(const WindowLimits& limits, const WindowNow& now,
                           int64_t now_ms) noexcept;

// The outcome of SHIELD.window: the window before the take and, when allowed, after.
struct WindowDecision {
  bool allowed;
  WindowNow before;
  WindowNow after;  // equal to `before` when denied
};

WindowDecision WindowAbsorb(const WindowLimits& limits, const std::optional<WindowState>& stored,
                            int64_t tokens, int64_t now_ms) noexcept;

// The integer reply: tokens left after the take, or -1.
inline int64_t WindowReply(const WindowLimits& limits, const WindowDecision& decision) noexcept {
  return decision.allowed ? WindowRemaining(limits, decision.after) : kDeniedReply;
}

// The VERBOSE values: capacity is the limit and period the window in seconds.
VerboseValues WindowVerbose(const WindowLimits& limits, const WindowDecision& decision,
                            int64_t tokens, int64_t now_ms) noexcept;

// SHIELD.window's arguments after the key: `<limit> <window-seconds> [<tokens>] [VERBOSE]`.
struct WindowArgs {
  Error error = Error::kNone;
  WindowLimits limits{};
  int64_t tokens = kDefaultTokens;
  bool verbose = false;
  bool dry_run = false;  // DRYRUN: decide and reply, write nothing
};

// Structure first (a word where VERBOSE may stand that is not VERBOSE is kArity, VERBOSE twice
// is kSyntax), then values in order: limit, window, tokens; then whether the window in ms and
// the expiry it leads to at `now_ms` fit (kWindowTooLarge).
WindowArgs ParseWindowArgs(std::span<const std::string_view> args, int64_t now_ms) noexcept;

}  // namespace shield
