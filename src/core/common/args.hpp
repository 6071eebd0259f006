// Argument parsing that every algorithm's commands share: strict positive integers, words in any
// case, VERBOSE, the `<limit> <second> [<tokens>] [VERBOSE]` shape, repeated keys. No Redis here.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "core/common/errors.hpp"
#include "core/common/int_parse.hpp"

namespace shield {

// Default cost of one call when the tokens argument is absent.
inline constexpr int64_t kDefaultTokens = 1;

// True when `word` is VERBOSE, in any case.
bool IsVerbose(std::string_view word) noexcept;

// ParsePositive's path for what its inline part does not take.
std::optional<int64_t> ParsePositiveRare(std::string_view text) noexcept;

// A strict positive int64 argument (ParseStrictInt64, above zero), or nullopt. The common case
// inline: up to 18 digits without a leading zero always fit in int64, so the digits are all there
// is to check (every argument of an ordinary call takes this path).
inline std::optional<int64_t> ParsePositive(std::string_view text) noexcept {
  if (int64_t value = 0; ReadShortNumber(text, '1', value)) return value;
  return ParsePositiveRare(text);
}

// True when `text` equals `upper` (an upper-case ASCII word) in any case.
bool EqualsIgnoringCase(std::string_view text, std::string_view upper) noexcept;

// The shape `<limit> <second> [<tokens>] [VERBOSE] [DRYRUN]` of SHIELD.window and SHIELD.quota,
// before any value is checked: kArity for too few words or one that is neither tokens nor an
// option, kSyntax for an option twice.
struct LimitWords {
  Error error = Error::kNone;
  std::optional<std::string_view> tokens;
  bool verbose = false;
  bool dry_run = false;
};
LimitWords SplitLimitWords(std::span<const std::string_view> args) noexcept;

// What SHIELD.window and SHIELD.quota share of their arguments: limit, tokens, VERBOSE.
struct LimitArgs {
  Error error = Error::kNone;
  int64_t limit = 0;
  int64_t tokens = kDefaultTokens;
  bool verbose = false;
  bool dry_run = false;  // DRYRUN: decide, write nothing
};

// Parses `<limit> <second> [<tokens>] [VERBOSE]` in the order every error is checked: the words
// (SplitLimitWords), limit, the second argument through `read_second` (the algorithm's own: it
// keeps what it read and returns its error, or kNone), then tokens.
template <typename ReadSecond>
LimitArgs ParseLimitArgs(std::span<const std::string_view> args, ReadSecond read_second) noexcept {
  const LimitWords words = SplitLimitWords(args);
  if (words.error != Error::kNone) return {words.error};
  LimitArgs parsed;
  parsed.verbose = words.verbose;
  parsed.dry_run = words.dry_run;
  const auto limit = ParsePositive(args[0]);
  if (!limit) return {Error::kLimit};
  parsed.limit = *limit;
  if (const Error error = read_second(args[1]); error != Error::kNone) return {error};
  if (words.tokens) {
    const auto tokens = ParsePositive(*words.tokens);
    if (!tokens) return {Error::kTokens};
    parsed.tokens = *tokens;
  }
  return parsed;
}

// True when two of `names` are equal. Sorts `names` in place: O(N log N), no allocation.
bool HasDuplicate(std::span<std::string_view> names) noexcept;

}  // namespace shield
