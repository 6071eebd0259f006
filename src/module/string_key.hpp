// The one store type: a string key opened for a command, read in place, written with an absolute
// expiry and propagated as its effect (`SET key value PXAT ms`, `DEL key`), never as the command.
// Every command reads and writes its keys through these functions and nothing else.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/common/errors.hpp"
#include "core/common/policy.hpp"
#include "module/redis.hpp"

namespace shield::glue {

// A string key opened for reading and writing. Closed when it goes out of scope.
struct StringKey {
  RedisModuleString* name = nullptr;
  RedisModuleKey* key = nullptr;
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

// Opens `name` for read and write: `stored` is what it holds (its value valid until the key is
// written or closed) with its expiry when `read_expiry`, kExpiryUnread otherwise. A key of another
// type is Error::kWrongType, and the key is closed again.
Error OpenStored(RedisModuleCtx* ctx, RedisModuleString* name, StringKey& out, StoredValue& stored,
                 bool read_expiry) noexcept;

// Reads the expiry of an open key into `stored` (an algorithm asked for it: needs_expiry).
void ReadExpiry(const StringKey& key, StoredValue& stored) noexcept;

// Carries out an Outcome's write on an open key: stores its value with its absolute expiry
// (`SET key value PXAT ms` to replicas and the AOF), deletes the key (`DEL key`), or nothing. The
// effect is propagated, never the command. When the server cannot propagate it (SET or DEL renamed
// away), nothing is written and the result is Error::kPropagation.
Error CarryOut(RedisModuleCtx* ctx, StringKey& key, const Outcome& outcome) noexcept;

// Deletes the key and propagates `DEL key`; Error::kPropagation as for CarryOut.
Error DeleteKey(RedisModuleCtx* ctx, StringKey& key) noexcept;

// Opens `name` for read and write without reading its value: `out.exists` says whether it is
// there. A key of another type is Error::kWrongType, and the key is closed again.
Error OpenStringKey(RedisModuleCtx* ctx, RedisModuleString* name, StringKey& out) noexcept;

// kNone when `name` is missing or holds a string, Error::kWrongType otherwise; changes nothing.
Error CheckStringOrMissing(RedisModuleCtx* ctx, RedisModuleString* name) noexcept;

// A key read without changing anything about it, not even how the server encodes its value (a
// read through StringDMA would turn an integer-encoded value into a raw string): through GET, or
// in place when GET is renamed away. `stored` (expiry read) stays valid while this lives.
struct PeekedKey {
  StoredValue stored{};
  RedisModuleCallReply* reply = nullptr;
  RedisModuleKey* key = nullptr;

  PeekedKey() = default;
  PeekedKey(const PeekedKey&) = delete;
  PeekedKey& operator=(const PeekedKey&) = delete;
  ~PeekedKey() {
    if (reply != nullptr) RedisModule_FreeCallReply(reply);
    if (key != nullptr) RedisModule_CloseKey(key);
  }
};
Error Peek(RedisModuleCtx* ctx, RedisModuleString* name, PeekedKey& out) noexcept;

}  // namespace shield::glue
