// SHIELD.absorb's argument rules and replies, as data the glue layer sends back verbatim.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "core/bucket.hpp"

namespace shield {

// Every way a call can fail. kNone means the call may go on.
enum class Error {
  kNone,
  kCapacity,        // capacity is not a strict positive int64
  kPeriod,          // period is not a strict positive int64
  kTokens,          // tokens is not a strict positive int64
  kPeriodTooLarge,  // period in ms, or the expiry it leads to, does not fit in int64
  kInvalidStored,   // the key holds a string that is not a token count
  kWrongType,       // the key holds another type
};

// The exact error reply for `error` (the original module's wording, or Redis's for WRONGTYPE).
std::string_view ErrorReply(Error error) noexcept;

// Reply for a denied call: nothing was taken.
inline constexpr int64_t kDeniedReply = -1;

// Default cost of one call when the tokens argument is absent.
inline constexpr int64_t kDefaultTokens = 1;

struct AbsorbArgs {
  Error error = Error::kNone;
  BucketLimits limits{};
  int64_t tokens = kDefaultTokens;
};

// Parses `<capacity> <period> [tokens]` in the original's order: capacity, period and tokens are
// each checked in turn, then the period's size in milliseconds. `tokens` is nullopt when absent.
AbsorbArgs ParseAbsorbArgs(std::string_view capacity, std::string_view period,
                           std::optional<std::string_view> tokens) noexcept;

// Reads a stored token count; nullopt means Error::kInvalidStored.
std::optional<int64_t> ParseStoredTokens(std::string_view value) noexcept;

// The integer reply for a decision.
inline int64_t ReplyFor(const AbsorbDecision& decision) noexcept {
  return decision.allowed ? decision.remaining : kDeniedReply;
}

}  // namespace shield
