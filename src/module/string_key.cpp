// The one store type (string_key.hpp): the one place that reads keys, writes them back and
// propagates writes.
#include <cstring>

#include "core/common/int_parse.hpp"
#include "core/gcra/gcra.hpp"
#include "module/glue.hpp"

namespace shield::glue {
namespace {

// How often a failing propagation is logged at most: once a minute is enough to be seen in any
// log without flooding it at the rate of calls.
constexpr int64_t kPropagationLogIntervalMs = 60'000;
int64_t last_propagation_log_ms = 0;  // 0: never logged

Error PropagationFailed(RedisModuleCtx* ctx, const char* command) noexcept {
  counters.Add(Counter::kPropagationErrors);
  const int64_t now_ms = NowMs();
  if (last_propagation_log_ms == 0 || now_ms < last_propagation_log_ms ||
      now_ms - last_propagation_log_ms >= kPropagationLogIntervalMs) {
    last_propagation_log_ms = now_ms;
    RedisModule_Log(ctx, "warning",
                    "Shield cannot propagate its writes as %s (is %s renamed?): calls that would "
                    "write fail and change nothing (SHIELD_propagation_errors counts them)",
                    command, command);
  }
  return Error::kPropagation;
}

int64_t ExpiryOf(RedisModuleKey* key) noexcept {
  const mstime_t expire_at = RedisModule_GetAbsExpire(key);
  return expire_at == REDISMODULE_NO_EXPIRE ? kNoExpiry : expire_at;
}

// Reads a string key's value in place (StringDMA), for when GET cannot be called: this turns an
// integer-encoded value into a raw string, a change of encoding only (the value, the TTL and the
// reply stay the same; OBJECT ENCODING and MEMORY USAGE show it). Logged once per process.
bool get_unavailable_logged = false;

void PeekInPlace(RedisModuleCtx* ctx, RedisModuleString* name, PeekedKey& out) noexcept {
  if (!get_unavailable_logged) {
    get_unavailable_logged = true;
    RedisModule_Log(ctx, "warning",
                    "Shield cannot call GET (renamed or removed with rename-command): "
                    "SHIELD.inspect and SHIELD.limit_ro read values in place, which may change how "
                    "the server encodes a bucket's count (int to raw); nothing else changes");
  }
  out.key = static_cast<RedisModuleKey*>(RedisModule_OpenKey(ctx, name, REDISMODULE_READ));
  size_t len = 0;
  const char* value = RedisModule_StringDMA(out.key, &len, REDISMODULE_READ);
  out.stored.value = {value != nullptr ? value : "", value != nullptr ? len : 0};
}

}  // namespace

void ReadExpiry(const StringKey& key, StoredValue& stored) noexcept {
  stored.expire_at_ms = ExpiryOf(key.key);
}

Error OpenStored(RedisModuleCtx* ctx, RedisModuleString* name, StringKey& out, StoredValue& stored,
                 bool read_expiry) noexcept {
  stored = {};
  if (const Error error = OpenStringKey(ctx, name, out); error != Error::kNone || !out.exists) {
    return error;
  }
  size_t len = 0;
  const char* ptr = RedisModule_StringDMA(out.key, &len, REDISMODULE_READ);
  stored.exists = true;
  stored.value = {ptr, len};
  stored.expire_at_ms = read_expiry ? ExpiryOf(out.key) : kExpiryUnread;
  return Error::kNone;
}

namespace {

Error WriteString(RedisModuleCtx* ctx, StringKey& bucket, std::string_view value,
                  int64_t expire_at_ms) noexcept {
  // Propagation first: the server sends it when the command ends, and if it cannot (SET renamed
  // away), the key must not change here alone.
  if (RedisModule_Replicate(ctx, "SET", "sbcl", bucket.name, value.data(), value.size(), "PXAT",
                            static_cast<long long>(expire_at_ms)) != REDISMODULE_OK) {
    return PropagationFailed(ctx, "SET");
  }
  // Creates the string for a new key, resizes an existing one only when its length differs.
  RedisModule_StringTruncate(bucket.key, value.size());
  size_t current_len = 0;
  char* stored = RedisModule_StringDMA(bucket.key, &current_len, REDISMODULE_WRITE);
  std::memcpy(stored, value.data(), value.size());
  RedisModule_SetAbsExpire(bucket.key, expire_at_ms);
  RedisModule_SignalModifiedKey(ctx, bucket.name);
  // The same keyspace events as the original's PSETEX, for clients that listen to them.
  RedisModule_NotifyKeyspaceEvent(ctx, REDISMODULE_NOTIFY_STRING, "set", bucket.name);
  RedisModule_NotifyKeyspaceEvent(ctx, REDISMODULE_NOTIFY_GENERIC, "expire", bucket.name);
  bucket.exists = true;
  return Error::kNone;
}

}  // namespace

Error DeleteKey(RedisModuleCtx* ctx, StringKey& key) noexcept {
  if (RedisModule_Replicate(ctx, "DEL", "s", key.name) != REDISMODULE_OK) {
    return PropagationFailed(ctx, "DEL");
  }
  RedisModule_DeleteKey(key.key);
  RedisModule_SignalModifiedKey(ctx, key.name);
  RedisModule_NotifyKeyspaceEvent(ctx, REDISMODULE_NOTIFY_GENERIC, "del", key.name);
  key.exists = false;
  return Error::kNone;
}

Error CarryOut(RedisModuleCtx* ctx, StringKey& key, const Outcome& outcome) noexcept {
  switch (outcome.write) {
    case KeyWrite::kStore:
      return WriteString(ctx, key, outcome.Text(), outcome.expire_at_ms);
    case KeyWrite::kDelete:
      return DeleteKey(ctx, key);
    case KeyWrite::kNothing:
      break;
  }
  return Error::kNone;
}

Error CheckStringOrMissing(RedisModuleCtx* ctx, RedisModuleString* name) noexcept {
  auto* key = static_cast<RedisModuleKey*>(RedisModule_OpenKey(ctx, name, REDISMODULE_READ));
  const int type = RedisModule_KeyType(key);
  RedisModule_CloseKey(key);
  return type == REDISMODULE_KEYTYPE_EMPTY || type == REDISMODULE_KEYTYPE_STRING
             ? Error::kNone
             : Error::kWrongType;
}

Error Peek(RedisModuleCtx* ctx, RedisModuleString* name, PeekedKey& out) noexcept {
  auto* key = static_cast<RedisModuleKey*>(RedisModule_OpenKey(ctx, name, REDISMODULE_READ));
  const int type = RedisModule_KeyType(key);
  if (type != REDISMODULE_KEYTYPE_STRING) {
    RedisModule_CloseKey(key);
    return type == REDISMODULE_KEYTYPE_EMPTY ? Error::kNone : Error::kWrongType;
  }
  out.stored.exists = true;
  out.stored.expire_at_ms = ExpiryOf(key);
  RedisModule_CloseKey(key);
  // GET reads the value as the server holds it, whatever its encoding, and changes nothing.
  out.reply = RedisModule_Call(ctx, "GET", "s", name);
  if (out.reply == nullptr) {  // GET renamed away
    PeekInPlace(ctx, name, out);
    return Error::kNone;
  }
  size_t len = 0;
  const char* value = RedisModule_CallReplyType(out.reply) == REDISMODULE_REPLY_STRING
                          ? RedisModule_CallReplyStringPtr(out.reply, &len)
                          : "";
  out.stored.value = {value, len};
  return Error::kNone;
}

Error OpenStringKey(RedisModuleCtx* ctx, RedisModuleString* name, StringKey& out) noexcept {
  out.name = name;
  out.key = static_cast<RedisModuleKey*>(
      RedisModule_OpenKey(ctx, name, REDISMODULE_READ | REDISMODULE_WRITE));
  const int type = RedisModule_KeyType(out.key);
  out.exists = type != REDISMODULE_KEYTYPE_EMPTY;
  if (!out.exists || type == REDISMODULE_KEYTYPE_STRING) return Error::kNone;
  out.Close();
  return Error::kWrongType;
}

}  // namespace shield::glue
