// Argument parsing: the core's ParseBucketArgs, ParseMultiBucket, ParseStatsArgs and CheckExpiry
// against the model's plain reading of docs/commands.md.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/bucket/bucket_args.hpp"
#include "core/stats/stats.hpp"
#include "fuzz_common.hpp"
#include "model.hpp"

namespace shield_fuzz {
namespace {

// Words the grammar gives a meaning, and numbers at the edges of what it accepts.
constexpr std::string_view kWords[] = {
    "BURST",
    "burst",
    "Burst",
    "VERBOSE",
    "verbose",
    "RESET",
    "reset",
    "CLUSTER",
    "cluster",
    "TIMEOUT",
    "timeout",
    "0",
    "1",
    "-1",
    "2",
    "10",
    "60",
    "1000",
    "60000",
    "60001",
    "9223372036854775",
    "9223372036854776",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "+5",
    "05",
    "1.5",
    "5:7",
    "5:",
    ":7",
    "5:7:9",
    ":",
    "",
    " 1",
    "VERBOSE ",
    "BURS",
};

std::string ConsumeWord(FuzzedDataProvider& fdp) {
  switch (fdp.ConsumeIntegralInRange<int>(0, 3)) {
    case 0:
      return std::string(fdp.PickValueInArray(kWords));
    case 1:
      return std::to_string(Interesting(fdp, 1, kInt64Max));
    case 2:
      return std::to_string(Interesting(fdp, 1, kInt64Max)) + ":" +
             std::to_string(Interesting(fdp, 1, kInt64Max));
    default:
      return fdp.ConsumeRandomLengthString(24);
  }
}

void CompareBucket(const shield::BucketArgs& core, const shield_model::ParsedBucket& model,
                   const std::string& what) {
  const std::string_view core_error = CoreErrorText(core.error);
  Check(core_error == model.error, what + ": core says '" + std::string(core_error) +
                                       "', model says '" + std::string(model.error) + "'");
  if (!model.error.empty()) return;
  Check(Int(core.limits.capacity) == model.limits.capacity, what + ": capacity");
  Check(Int(core.limits.period_ms) == model.limits.period_ms, what + ": period_ms");
  Check(Int(core.limits.max_tokens) == model.limits.max_tokens, what + ": max_tokens");
  Check(Int(core.limits.window_ms) == model.limits.window_ms, what + ": window_ms");
  Check(Int(core.tokens) == model.tokens, what + ": tokens");
  Check(core.has_burst == model.has_burst, what + ": has_burst");
  Check(core.verbose == model.verbose, what + ": verbose");
}

void CompareExpiry(const shield::BucketArgs& core, const shield_model::ParsedBucket& model,
                   int64_t now_ms, const std::string& what) {
  if (!model.error.empty()) return;
  const std::string_view core_error = CoreErrorText(shield::CheckExpiry(core, now_ms));
  const std::string_view model_error = shield_model::ExpiryError(model, Int(now_ms));
  Check(core_error == model_error, what + ": expiry check at " + Str(now_ms) + ": core '" +
                                       std::string(core_error) + "', model '" +
                                       std::string(model_error) + "'");
}

}  // namespace
}  // namespace shield_fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shield_fuzz;
  FuzzedDataProvider fdp(data, size);
  const int64_t now_ms = Interesting(fdp, 0, kInt64Max);
  std::vector<std::string> words;
  const auto count = fdp.ConsumeIntegralInRange<std::size_t>(0, 9);
  for (std::size_t i = 0; i < count && fdp.remaining_bytes() > 0; ++i) {
    words.push_back(ConsumeWord(fdp));
  }
  const std::vector<std::string_view> views(words.begin(), words.end());
  Trace().clear();
  Trace().push_back("words:" + Words(views) + " now_ms " + Str(now_ms));

  for (const bool tokens_required : {false, true}) {
    for (const bool verbose : {false, true}) {
      const std::string what = std::string("ParseBucketArgs(tokens_required=") +
                               (tokens_required ? "1" : "0") +
                               ", verbose=" + (verbose ? "1" : "0") + ")";
      const auto core = shield::ParseBucketArgs(views, {tokens_required, verbose});
      const auto model = shield_model::ParseBucketCall(views, tokens_required, verbose);
      CompareBucket(core, model, what);
      CompareExpiry(core, model, now_ms, what);
    }
  }
  if (views.size() >= 3) {
    const auto core = shield::ParseMultiBucket(views[0], views[1], views[2]);
    const auto model = shield_model::ParseMultiGroup(views[0], views[1], views[2]);
    CompareBucket(core, model, "ParseMultiBucket");
    CompareExpiry(core, model, now_ms, "ParseMultiBucket");
  }
  const auto core = shield::ParseStatsArgs(views);
  const auto model = shield_model::ParseStatsCall(views);
  const std::string_view core_error = CoreErrorText(core.error);
  Check(core_error == model.error, "ParseStatsArgs: core '" + std::string(core_error) +
                                       "', model '" + std::string(model.error) + "'");
  if (model.error.empty()) {
    Check(static_cast<int>(core.mode) == static_cast<int>(model.mode), "ParseStatsArgs: mode");
    Check(Int(core.timeout_ms) == model.timeout_ms, "ParseStatsArgs: timeout");
  }
  return 0;
}
