// Integer parsing and formatting for Shield's core. No Redis in here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace shield {

// Longest decimal int64 ("-9223372036854775808") plus one spare byte; it also holds any uint64
// ("18446744073709551615").
inline constexpr std::size_t kInt64TextCapacity = 21;

// Parses a command argument exactly as Redis's own strict parser does (string2ll): an optional
// '-', then digits with no leading zero (except "0" itself), no '+', no spaces, no junk, and the
// value must fit in int64. "-0" is rejected, like Redis.
std::optional<int64_t> ParseStrictInt64(std::string_view text) noexcept;

// Parses a stored token count. This is the reading the original module documented: an optional
// sign followed by one or more decimal digits that fit in int64; leading zeros are accepted.
// Anything else (empty, binary, spaces, floats, out of range) is not a token count.
inline std::optional<int64_t> ParseStoredInt64(std::string_view text) noexcept;

// Decimal digits that always fit in int64 (10^18 - 1 < 2^63).
inline constexpr std::size_t kDigitsThatFit = 18;

// Reads decimal digits (leading zeros allowed, no sign) as a number up to `limit`; nullopt for
// anything else or a larger number.
std::optional<uint64_t> ParseDigits(std::string_view digits, uint64_t limit = UINT64_MAX) noexcept;

// The loop of every decimal parse here: 1 to kDigitsThatFit digits (the caller checked the
// length), which always fit in int64; false for any other byte. Inline, because every argument
// of an ordinary call and every stored count takes it.
inline bool ReadShortDigits(std::string_view digits, uint64_t& out) noexcept {
  uint64_t magnitude = 0;
  for (const char c : digits) {
    const auto digit = static_cast<unsigned>(c - '0');
    if (digit > 9) return false;
    magnitude = magnitude * 10 + digit;
  }
  out = magnitude;
  return true;
}

// Writes `value` in canonical decimal into `out` (at least kInt64TextCapacity bytes) and
// returns the number of bytes written. No terminating NUL.
std::size_t FormatInt64(int64_t value, char* out) noexcept;
std::size_t FormatUInt64(uint64_t value, char* out) noexcept;

// ParseStoredInt64's path for what its inline part does not take (a sign, 19 digits or more).
std::optional<int64_t> ParseStoredInt64Rare(std::string_view text) noexcept;

// The common case of a parse, inline: 1 to kDigitsThatFit digits, the first no less than
// `lowest_first` ('0' where leading zeros are read, '1' where they are not). False for any other
// text, which the caller's rare path then reads in full.
inline bool ReadShortNumber(std::string_view text, char lowest_first, int64_t& out) noexcept {
  if (text.empty() || text.size() > kDigitsThatFit || text.front() < lowest_first ||
      text.front() > '9') {
    return false;
  }
  uint64_t value = 0;
  if (!ReadShortDigits(text, value)) return false;
  out = static_cast<int64_t>(value);
  return true;
}

// The common case inline: a count as Shield writes it, up to 18 digits without a sign.
inline std::optional<int64_t> ParseStoredInt64(std::string_view text) noexcept {
  if (int64_t value = 0; ReadShortNumber(text, '0', value)) return value;
  return ParseStoredInt64Rare(text);
}

}  // namespace shield
