// The one store type: a string key opened for a command, read in place, written with an absolute
// expiry and propagated as its effect (`SET key value PXAT ms`, `DEL key`), never as the command.
// Every command reads and writes its keys through these functions and nothing else.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/bucket/bucket.hpp"
#include "core/bucket/bucket_args.hpp"
#include "module/redis.hpp"

namespace shield::glue {

// A string key opened for reading and writing, and what it held when opened (for a count: the
// count and its expiry). Closed when it goes out of scope.
struct StringKey {
  RedisModuleString* name = nullptr;
  RedisModuleKey* key = nullptr;
  StoredBucket stored{0, kNoExpiry};
  bool exists = false;

  StringKey() = default;
  StringKey(const StringKey&) = delete;
  StringKey& operator=(const StringKey&) = delete;
  ~StringKey() { Close(); }
  void Close() noexcept {
    if (key != nullptr) RedisModule_CloseKey(key);
    key = nullptr;
  }
};

// Opens `name` for read and write and reads the count it holds (a bucket's or a quota's) and its
// expiry. On an error (not a count, another algorithm's value, another type) the key is closed.
Error OpenCount(RedisModuleCtx* ctx, RedisModuleString* name, StringKey& out) noexcept;

// Opens `name` for read and write. `value` is the string it holds (empty when missing), valid
// until the key is written or closed; `out.stored.expire_at_ms` its expiry. A key of another type
// is Error::kWrongType, and the key is closed again.
Error OpenString(RedisModuleCtx* ctx, RedisModuleString* name, StringKey& out,
                 std::string_view& value) noexcept;

// Opens `name` for read and write without reading its value: `out.exists` says whether it is
// there. A key of another type is Error::kWrongType, and the key is closed again.
Error OpenStringKey(RedisModuleCtx* ctx, RedisModuleString* name, StringKey& out) noexcept;

// OpenString without reading the expiry (`out.stored` stays empty), for a command whose value
// alone says everything (CL.THROTTLE): the expiry lookup is a second hash lookup per call.
Error OpenValue(RedisModuleCtx* ctx, RedisModuleString* name, StringKey& out,
                std::string_view& value) noexcept;

// Reads the expiry of an open, existing key into `key.stored.expire_at_ms` and returns it
// (kNoExpiry when it has none).
int64_t ReadExpiry(StringKey& key) noexcept;

// Stores `value` in place with an absolute expiry, and sends its effect, never the command, to
// replicas and the AOF: `SET key value PXAT expire_at`. The one write path of every command.
// When the server cannot propagate it (SET renamed away), nothing is written and the result is
// Error::kPropagation.
Error WriteString(RedisModuleCtx* ctx, StringKey& bucket, std::string_view value,
                  int64_t expire_at_ms) noexcept;

// Stores a count in place and sends its effect, never the command, to replicas and the AOF:
// `SET key tokens PXAT expire_at`. When the server cannot propagate it (SET renamed away),
// nothing is written and the result is Error::kPropagation.
Error WriteCount(RedisModuleCtx* ctx, StringKey& bucket, const StoredBucket& value) noexcept;

// Deletes the key and propagates `DEL key`; as WriteCount when DEL cannot be propagated.
Error DeleteKey(RedisModuleCtx* ctx, StringKey& key) noexcept;

// kNone when `name` is missing or holds a string, Error::kWrongType otherwise; changes nothing.
Error CheckStringOrMissing(RedisModuleCtx* ctx, RedisModuleString* name) noexcept;

// Reads a count without changing anything about the key, not even how the server encodes its
// value (a read through StringDMA would turn an integer-encoded value into a raw string).
Error PeekCount(RedisModuleCtx* ctx, RedisModuleString* name, StoredBucket& out) noexcept;

}  // namespace shield::glue
