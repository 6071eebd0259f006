#include "core/command.hpp"

#include "core/int_parse.hpp"

namespace shield {
namespace {

std::optional<int64_t> ParsePositive(std::string_view text) noexcept {
  const auto value = ParseStrictInt64(text);
  if (!value || *value <= 0) return std::nullopt;
  return value;
}

}  // namespace

std::string_view ErrorReply(Error error) noexcept {
  switch (error) {
    case Error::kNone:
      return "";
    case Error::kCapacity:
      return "ERR capacity must be positive";
    case Error::kPeriod:
      return "ERR period must be positive";
    case Error::kTokens:
      return "ERR tokens must be positive";
    case Error::kPeriodTooLarge:
      return "ERR period value too large";
    case Error::kInvalidStored:
      return "ERR invalid token count in Redis";
    case Error::kWrongType:
      return "WRONGTYPE Operation against a key holding the wrong kind of value";
  }
  return "ERR internal error";
}

AbsorbArgs ParseAbsorbArgs(std::string_view capacity, std::string_view period,
                           std::optional<std::string_view> tokens) noexcept {
  AbsorbArgs args;
  const auto parsed_capacity = ParsePositive(capacity);
  if (!parsed_capacity) return {Error::kCapacity};
  const auto parsed_period = ParsePositive(period);
  if (!parsed_period) return {Error::kPeriod};
  if (tokens) {
    const auto parsed_tokens = ParsePositive(*tokens);
    if (!parsed_tokens) return {Error::kTokens};
    args.tokens = *parsed_tokens;
  }
  if (*parsed_period > kMaxPeriodSeconds) return {Error::kPeriodTooLarge};
  args.limits = {*parsed_capacity, *parsed_period * 1000};
  return args;
}

std::optional<int64_t> ParseStoredTokens(std::string_view value) noexcept {
  return ParseStoredInt64(value);
}

}  // namespace shield
