#include "core/common/args.hpp"

#include <algorithm>

#include "core/common/int_parse.hpp"

namespace shield {

std::optional<int64_t> ParsePositiveRare(std::string_view text) noexcept {
  const auto value = ParseStrictInt64(text);
  if (!value || *value <= 0) return std::nullopt;
  return value;
}

bool EqualsIgnoringCase(std::string_view text, std::string_view upper) noexcept {
  if (text.size() != upper.size()) return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const char folded = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
    if (folded != upper[i]) return false;
  }
  return true;
}

LimitWords SplitLimitWords(std::span<const std::string_view> args) noexcept {
  LimitWords words;
  if (args.size() < 2) words.error = Error::kArity;
  for (std::size_t i = 2; i < args.size() && words.error == Error::kNone; ++i) {
    bool* option = nullptr;
    if (IsVerbose(args[i])) {
      option = &words.verbose;
    } else if (EqualsIgnoringCase(args[i], "DRYRUN")) {
      option = &words.dry_run;
    }
    if (option != nullptr) {
      if (*option) words.error = Error::kSyntax;
      *option = true;
    } else if (i == 2) {
      words.tokens = args[i];
    } else {
      words.error = Error::kArity;
    }
  }
  return words;
}

bool IsVerbose(std::string_view word) noexcept {
  return EqualsIgnoringCase(word, "VERBOSE");
}

bool HasDuplicate(std::span<std::string_view> names) noexcept {
  std::sort(names.begin(), names.end());
  return std::adjacent_find(names.begin(), names.end()) != names.end();
}

}  // namespace shield
