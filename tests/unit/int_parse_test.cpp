#include "core/common/int_parse.hpp"

#include <gtest/gtest.h>

#include <limits>
#include <optional>
#include <ostream>
#include <string>

namespace shield {
namespace {

constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

struct ParseCase {
  std::string text;
  std::optional<int64_t> strict;  // what Redis's string2ll gives
  std::optional<int64_t> stored;  // what a stored token count reads as
};

const ParseCase kParseCases[] = {
    {"0", 0, 0},
    {"1", 1, 1},
    {"42", 42, 42},
    {"-7", -7, -7},
    {"9223372036854775807", kMax, kMax},
    {"-9223372036854775808", kMin, kMin},
    {"9223372036854775808", std::nullopt, std::nullopt},
    {"-9223372036854775809", std::nullopt, std::nullopt},
    {"99999999999999999999", std::nullopt, std::nullopt},
    {"", std::nullopt, std::nullopt},
    {"-", std::nullopt, std::nullopt},
    {"+", std::nullopt, std::nullopt},
    {"+5", std::nullopt, 5},
    {"05", std::nullopt, 5},
    {"-0", std::nullopt, 0},
    {"00", std::nullopt, 0},
    {"0009223372036854775807", std::nullopt, kMax},
    {" 5", std::nullopt, std::nullopt},
    {"5 ", std::nullopt, std::nullopt},
    {"5x", std::nullopt, std::nullopt},
    {"1.5", std::nullopt, std::nullopt},
    {"1e3", std::nullopt, std::nullopt},
    {"0x10", std::nullopt, std::nullopt},
    {"--5", std::nullopt, std::nullopt},
    {"inf", std::nullopt, std::nullopt},
    {std::string("\xff\xfe", 2), std::nullopt, std::nullopt},
    {std::string("1\0", 2), std::nullopt, std::nullopt},
};

class ParseTable : public testing::TestWithParam<ParseCase> {};

TEST_P(ParseTable, StrictParserMatchesRedisString2ll) {
  EXPECT_EQ(ParseStrictInt64(GetParam().text), GetParam().strict);
}

TEST_P(ParseTable, StoredParserReadsSignedDecimalCounts) {
  EXPECT_EQ(ParseStoredInt64(GetParam().text), GetParam().stored);
}

// The text spelled out, as a test name: "Text_Minus9223372036854775808", "Text_Space5", ...
std::string ParseCaseName(const testing::TestParamInfo<ParseCase>& info) {
  std::string name = "Text_";
  if (info.param.text.empty()) name += "Empty";
  for (const char c : info.param.text) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
      name += c;
    } else if (c == '-') {
      name += "Minus";
    } else if (c == '+') {
      name += "Plus";
    } else if (c == ' ') {
      name += "Space";
    } else if (c == '.') {
      name += "Dot";
    } else {
      constexpr char kHex[] = "0123456789ABCDEF";
      name += "Byte";
      name += kHex[static_cast<unsigned char>(c) >> 4];
      name += kHex[static_cast<unsigned char>(c) & 0xF];
    }
  }
  return name;
}

void PrintTo(const ParseCase& c, std::ostream* os) {
  *os << '"' << c.text << '"';
}

INSTANTIATE_TEST_SUITE_P(Cases, ParseTable, testing::ValuesIn(kParseCases), ParseCaseName);

TEST(FormatInt64, WritesCanonicalDecimalThatParsesBack) {
  for (const int64_t value : {int64_t{0}, int64_t{1}, int64_t{-1}, int64_t{29}, kMax, kMin}) {
    char buffer[kInt64TextCapacity];
    const auto len = FormatInt64(value, buffer);
    const std::string text(buffer, len);
    EXPECT_EQ(text, std::to_string(value));
    EXPECT_EQ(ParseStrictInt64(text), value);
  }
}

TEST(FormatInt64, WritesEveryDigitCountAndBothSignsAsToStringDoes) {
  int64_t power = 1;
  for (int digits = 1; digits <= 18; ++digits, power *= 10) {
    for (const int64_t value : {power, power - 1, power + 1, 9 * power, -power, 1 - power}) {
      char buffer[kInt64TextCapacity];
      EXPECT_EQ(std::string(buffer, FormatInt64(value, buffer)), std::to_string(value));
    }
  }
}

TEST(FormatUInt64, WritesTheLargestUnsignedValue) {
  char buffer[kInt64TextCapacity];
  EXPECT_EQ(std::string(buffer, FormatUInt64(UINT64_MAX, buffer)), "18446744073709551615");
  EXPECT_EQ(std::string(buffer, FormatUInt64(0, buffer)), "0");
}

TEST(ParseStoredInt64, ReadsEighteenDigitsAndLeadingZerosAsBefore) {
  EXPECT_EQ(ParseStoredInt64("999999999999999999"), 999'999'999'999'999'999);
  EXPECT_EQ(ParseStoredInt64("000000000000000007"), 7);
  EXPECT_EQ(ParseStoredInt64("12a"), std::nullopt);
  EXPECT_EQ(ParseStoredInt64("9223372036854775807"), kMax);
}

// Every length of the short path (up to 18 digits) reads as digit-by-digit arithmetic does, and a
// byte that is not a digit at any place is refused, whatever its value (those just outside
// '0'..'9', signs, spaces, bytes above 0x7f).
TEST(ParseDigits, ReadsEveryShortLengthAndRefusesANonDigitAtEveryPlace) {
  const std::string all = "918273645091827364";
  const char not_digits[] = {'\0', ' ', '+',    '-',    '/',    ':',    '?',
                             '@',  'a', '\x7f', '\x80', '\xf0', '\xfa', '\xff'};
  for (std::size_t len = 1; len <= kDigitsThatFit; ++len) {
    const std::string digits = all.substr(0, len);
    uint64_t expected = 0;
    for (const char c : digits) expected = expected * 10 + static_cast<uint64_t>(c - '0');
    EXPECT_EQ(ParseDigits(digits), expected) << digits;
    EXPECT_EQ(ParseStoredInt64(digits), static_cast<int64_t>(expected)) << digits;
    for (std::size_t at = 0; at < len; ++at) {
      for (const char bad : not_digits) {
        std::string text = digits;
        text[at] = bad;
        EXPECT_EQ(ParseDigits(text), std::nullopt)
            << len << " digits, byte " << int{bad} << " at " << at;
      }
    }
  }
}

}  // namespace
}  // namespace shield
