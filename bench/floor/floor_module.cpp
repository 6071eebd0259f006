// The benchmark's floor: four commands that do only the work the module API imposes on any
// command reading or writing a bucket (open the key, check its type, read the string and its
// expiry; for a write also resize, store, set the expiry and propagate the effect). No argument
// is parsed and nothing is computed, so the cost of a Shield command over the matching floor
// command, measured in the same run on the same server, is what Shield itself adds.
// FLOOR.read is the floor of a denied absorb: a write command that writes nothing, which opens its
// key for writing because it learns it will write nothing only after reading. FLOOR.read_ro and
// FLOOR.call_read are the floors of SHIELD.inspect, a read-only command.
// Not part of the product: built only with -DSHIELD_BUILD_BENCH=ON; bench/bench.py and
// bench/instructions.py load it next to Shield.
#include <cstring>

#include "redismodule.h"

namespace {

constexpr const char kValue[] = "42";
constexpr size_t kValueLen = sizeof(kValue) - 1;
constexpr long long kTtlMs = 60000;

// Reads the string at an open key and its absolute expiry, as a bucket command must.
// Returns false when the key holds another type.
bool ReadString(RedisModuleKey* key, size_t& len) {
  len = 0;
  const int type = RedisModule_KeyType(key);
  if (type == REDISMODULE_KEYTYPE_EMPTY) return true;
  if (type != REDISMODULE_KEYTYPE_STRING) return false;
  // The API's functions are called through pointers, so the compiler keeps both calls.
  RedisModule_StringDMA(key, &len, REDISMODULE_READ);
  RedisModule_GetAbsExpire(key);
  return true;
}

// Opens <key> with `mode`, reads the string in place and its expiry, and replies with its length
// (0 for a missing key), or WRONGTYPE for a non-string. Ignores <a> <b> <c>.
int ReadReply(RedisModuleCtx* ctx, RedisModuleString** argv, int argc, int mode) {
  if (argc != 5) return RedisModule_WrongArity(ctx);
  auto* key = static_cast<RedisModuleKey*>(RedisModule_OpenKey(ctx, argv[1], mode));
  size_t len = 0;
  const bool is_string = ReadString(key, len);
  RedisModule_CloseKey(key);
  if (!is_string) return RedisModule_ReplyWithError(ctx, REDISMODULE_ERRORMSG_WRONGTYPE);
  return RedisModule_ReplyWithLongLong(ctx, static_cast<long long>(len));
}

// FLOOR.read <key> <a> <b> <c>
//
// What a denied absorb cannot avoid: a write command (flags as SHIELD.absorb's) that opens <key>
// for reading and writing, reads the string in place and its expiry, and writes nothing.
// <a> <b> <c> are ignored. Reply: integer, the length of the string (0 for a missing key).
// WRONGTYPE for a non-string.
int ReadCommand(RedisModuleCtx* ctx, RedisModuleString** argv, int argc) {
  return ReadReply(ctx, argv, argc, REDISMODULE_READ | REDISMODULE_WRITE);
}

// FLOOR.read_ro <key> <a> <b> <c>
//
// FLOOR.read as a read-only command: opens <key> for reading only. Same replies.
int ReadOnlyCommand(RedisModuleCtx* ctx, RedisModuleString** argv, int argc) {
  return ReadReply(ctx, argv, argc, REDISMODULE_READ);
}

// FLOOR.write <key> <a> <b> <c>
//
// Opens <key> for writing, reads it as FLOOR.read does, then stores "42" in place with an
// expiry 60 s from now and propagates `SET <key> 42 PXAT <unix-ms>`, the effect Shield sends.
// <a> <b> <c> are ignored. Reply: integer 42. WRONGTYPE for a non-string (nothing written).
int WriteCommand(RedisModuleCtx* ctx, RedisModuleString** argv, int argc) {
  if (argc != 5) return RedisModule_WrongArity(ctx);
  auto* key = static_cast<RedisModuleKey*>(
      RedisModule_OpenKey(ctx, argv[1], REDISMODULE_READ | REDISMODULE_WRITE));
  size_t len = 0;
  if (!ReadString(key, len)) {
    RedisModule_CloseKey(key);
    return RedisModule_ReplyWithError(ctx, REDISMODULE_ERRORMSG_WRONGTYPE);
  }
  RedisModule_StringTruncate(key, kValueLen);
  size_t new_len = 0;
  char* value = RedisModule_StringDMA(key, &new_len, REDISMODULE_WRITE);
  std::memcpy(value, kValue, kValueLen);
  const long long expire_at = RedisModule_Milliseconds() + kTtlMs;
  RedisModule_SetAbsExpire(key, expire_at);
  RedisModule_Replicate(ctx, "SET", "sbcl", argv[1], kValue, kValueLen, "PXAT", expire_at);
  RedisModule_CloseKey(key);
  return RedisModule_ReplyWithLongLong(ctx, 42);
}

// FLOOR.call_read <key> <a> <b> <c>
//
// The read a command is left with when it must not change how the server encodes the value
// (StringDMA turns an int-encoded string into a raw one): GET through RedisModule_Call, then the
// key opened for reading for its expiry. <a> <b> <c> are ignored.
// Reply: integer, the length of the string (0 for a missing key). WRONGTYPE for a non-string.
int CallReadCommand(RedisModuleCtx* ctx, RedisModuleString** argv, int argc) {
  if (argc != 5) return RedisModule_WrongArity(ctx);
  RedisModuleCallReply* got = RedisModule_Call(ctx, "GET", "s", argv[1]);
  const int got_type = got != nullptr ? RedisModule_CallReplyType(got) : REDISMODULE_REPLY_ERROR;
  size_t len = 0;
  if (got_type == REDISMODULE_REPLY_STRING) RedisModule_CallReplyStringPtr(got, &len);
  if (got != nullptr) RedisModule_FreeCallReply(got);
  if (got_type == REDISMODULE_REPLY_ERROR) {
    return RedisModule_ReplyWithError(ctx, REDISMODULE_ERRORMSG_WRONGTYPE);
  }
  // Opening a missing key for reading gives NULL.
  auto* key = static_cast<RedisModuleKey*>(RedisModule_OpenKey(ctx, argv[1], REDISMODULE_READ));
  if (key != nullptr) RedisModule_GetAbsExpire(key);
  RedisModule_CloseKey(key);
  return RedisModule_ReplyWithLongLong(ctx, static_cast<long long>(len));
}

}  // namespace

extern "C" __attribute__((visibility("default"))) int RedisModule_OnLoad(
    RedisModuleCtx* ctx, RedisModuleString** /*argv*/, int /*argc*/) {
  if (RedisModule_Init(ctx, "FLOOR", 1, REDISMODULE_APIVER_1) == REDISMODULE_ERR)
    return REDISMODULE_ERR;
  if (RedisModule_CreateCommand(ctx, "FLOOR.read", ReadCommand, "write deny-oom fast", 1, 1, 1) ==
      REDISMODULE_ERR)
    return REDISMODULE_ERR;
  if (RedisModule_CreateCommand(ctx, "FLOOR.read_ro", ReadOnlyCommand, "readonly fast", 1, 1, 1) ==
      REDISMODULE_ERR)
    return REDISMODULE_ERR;
  if (RedisModule_CreateCommand(ctx, "FLOOR.write", WriteCommand, "write deny-oom fast", 1, 1, 1) ==
      REDISMODULE_ERR)
    return REDISMODULE_ERR;
  if (RedisModule_CreateCommand(ctx, "FLOOR.call_read", CallReadCommand, "readonly fast", 1, 1,
                                1) == REDISMODULE_ERR)
    return REDISMODULE_ERR;
  return REDISMODULE_OK;
}
