// Stored-value parsing: the core's ParseStoredInt64 (what a bucket key may hold) and the strict
// argument parser it shares with Redis, against the model's plain readings; and the decimal a
// write stores, read back.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/bucket/bucket_args.hpp"
#include "core/common/int_parse.hpp"
#include "fuzz_common.hpp"
#include "model.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shield_fuzz;
  const std::string_view value(reinterpret_cast<const char*>(data), size);
  Trace().clear();
  Trace().push_back("value:" + Words({value}));

  const auto core = shield::ParseStoredInt64(value);
  const auto model = shield_model::StoredCount(value);
  Check(core.has_value() == model.has_value(),
        std::string("ParseStoredInt64: core ") + (core ? "reads a count" : "rejects") + ", model " +
            (model ? "reads a count" : "rejects"));
  if (core) Check(Int(*core) == *model, "ParseStoredInt64: " + Str(*core) + " != " + Str(*model));

  const auto strict = shield::ParseStrictInt64(value);
  const auto strict_model = shield_model::StrictInt64(value);
  Check(strict.has_value() == strict_model.has_value(), "ParseStrictInt64 accepts differently");
  if (strict) Check(Int(*strict) == *strict_model, "ParseStrictInt64 reads another value");

  // What a write stores reads back as the same count, in the canonical form of the model.
  if (core) {
    char digits[shield::kInt64TextCapacity];
    const std::size_t len = shield::FormatInt64(*core, digits);
    const std::string_view written(digits, len);
    Check(written == Str(*model), "FormatInt64 writes '" + std::string(written) + "'");
    Check(shield::ParseStoredInt64(written) == core, "a written count reads back");
    Check(shield::ParseStrictInt64(written) == core, "a written count is canonical");
  }
  return 0;
}
