#include "core/common/int_parse.hpp"

#include <cstring>
#include <limits>

namespace shield {
namespace {

// Writes `magnitude` in decimal, two digits a step from the end of a scratch buffer, after a '-'
// when `negative`: the one formatter of signed and unsigned values.
std::size_t FormatDecimal(uint64_t magnitude, bool negative, char* out) noexcept {
  static constexpr char kPairs[] =
      "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
      "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
      "8081828384858687888990919293949596979899";
  char scratch[kInt64TextCapacity];
  char* at = scratch + sizeof scratch;
  while (magnitude >= 100) {
    const auto pair = static_cast<std::size_t>(magnitude % 100) * 2;
    magnitude /= 100;
    *--at = kPairs[pair + 1];
    *--at = kPairs[pair];
  }
  if (magnitude >= 10) {
    const auto pair = static_cast<std::size_t>(magnitude) * 2;
    *--at = kPairs[pair + 1];
    *--at = kPairs[pair];
  } else {
    *--at = static_cast<char>('0' + magnitude);
  }
  if (negative) *--at = '-';
  const auto len = static_cast<std::size_t>(scratch + sizeof scratch - at);
  std::memcpy(out, at, len);
  return len;
}

}  // namespace

// Up to kDigitsThatFit digits take the loop without overflow checks (most arguments are short),
// longer ones the checked loop.
std::optional<uint64_t> ParseDigits(std::string_view digits, uint64_t limit) noexcept {
  if (digits.empty()) return std::nullopt;
  uint64_t magnitude = 0;
  if (digits.size() <= kDigitsThatFit) {
    if (!ReadShortDigits(digits, magnitude)) return std::nullopt;
  } else {
    for (const char c : digits) {
      const auto digit = static_cast<unsigned>(c - '0');
      if (digit > 9) return std::nullopt;
      if (__builtin_mul_overflow(magnitude, 10u, &magnitude) ||
          __builtin_add_overflow(magnitude, digit, &magnitude)) {
        return std::nullopt;
      }
    }
  }
  if (magnitude > limit) return std::nullopt;
  return magnitude;
}

namespace {

// Applies a sign to a magnitude already known to fit the signed range.
std::optional<int64_t> Signed(std::string_view digits, bool negative) noexcept {
  constexpr auto kMaxPositive = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  const auto magnitude = ParseDigits(digits, negative ? kMaxPositive + 1 : kMaxPositive);
  if (!magnitude) return std::nullopt;
  if (!negative) return static_cast<int64_t>(*magnitude);
  if (*magnitude == kMaxPositive + 1) return std::numeric_limits<int64_t>::min();
  return -static_cast<int64_t>(*magnitude);
}

}  // namespace

std::optional<int64_t> ParseStrictInt64(std::string_view text) noexcept {
  if (text.empty() || text.size() >= kInt64TextCapacity) return std::nullopt;
  if (text == "0") return 0;
  const bool negative = text.front() == '-';
  if (negative) text.remove_prefix(1);
  if (text.empty() || text.front() < '1' || text.front() > '9') return std::nullopt;
  return Signed(text, negative);
}

std::optional<int64_t> ParseStoredInt64Rare(std::string_view text) noexcept {
  bool negative = false;
  if (!text.empty() && (text.front() == '-' || text.front() == '+')) {
    negative = text.front() == '-';
    text.remove_prefix(1);
  }
  // Leading zeros carry no value; dropping them keeps long zero-padded numbers in range.
  while (text.size() > 1 && text.front() == '0') text.remove_prefix(1);
  return Signed(text, negative);
}

std::size_t FormatInt64(int64_t value, char* out) noexcept {
  // The magnitude of INT64_MIN is 2^63, which fits in uint64.
  const uint64_t magnitude =
      value < 0 ? 0 - static_cast<uint64_t>(value) : static_cast<uint64_t>(value);
  return FormatDecimal(magnitude, value < 0, out);
}

std::size_t FormatUInt64(uint64_t value, char* out) noexcept {
  return FormatDecimal(value, false, out);
}

}  // namespace shield
