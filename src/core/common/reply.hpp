// What every algorithm's replies share: the denied reply, the never-retry value, the VERBOSE map's
// fields, and how a call over several limits combines their waits. No Redis here.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace shield {

// Reply for a denied call: nothing was taken.
inline constexpr int64_t kDeniedReply = -1;

// Reply value for a call that cannot succeed however long it waits.
inline constexpr int64_t kNever = -1;

// The VERBOSE reply: field names in reply order, and their values for one decision.
inline constexpr std::array<std::string_view, 6> kVerboseFields = {
    "allowed", "remaining", "capacity", "period", "retry_after_ms", "reset_after_ms"};
using VerboseValues = std::array<int64_t, kVerboseFields.size()>;
inline constexpr std::size_t kVerboseRetryAfter = 4;  // the index of retry_after_ms
static_assert(kVerboseFields[kVerboseRetryAfter] == "retry_after_ms");

// The retry_after_ms of a call over several limits, from its own and one more limit's: kNever
// when either can never be met, otherwise the longer wait.
inline int64_t CombineRetryAfterMs(int64_t call, int64_t limit) noexcept {
  if (call == kNever || limit == kNever) return kNever;
  return call > limit ? call : limit;
}

}  // namespace shield
