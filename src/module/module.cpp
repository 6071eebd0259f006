// The only file that knows both Redis and Shield's core: it reads keys and arguments from the
// module API, hands them to the core, and writes back what the core decided.
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

#include "core/bucket.hpp"
#include "core/command.hpp"
#include "core/int_parse.hpp"
#include "redismodule.h"
// command_info.hpp uses the types of redismodule.h.
#include "module/command_info.hpp"

namespace shield::glue {
namespace {

// Per-node counters for INFO shield. Commands run on the main thread only.
struct Counters {
  uint64_t calls = 0;
  uint64_t allowed = 0;
  uint64_t denied = 0;
  uint64_t errors = 0;
  uint64_t tokens_absorbed = 0;
};
Counters counters;

// Redis 7.2+ offers the time of the current command; older servers only have wall-clock time.
using CachedMicrosecondsFn = uint64_t (*)();
CachedMicrosecondsFn cached_microseconds = nullptr;

int64_t NowMs() noexcept {
  if (cached_microseconds != nullptr) return static_cast<int64_t>(cached_microseconds() / 1000);
  return static_cast<int64_t>(RedisModule_Milliseconds());
}

std::string_view View(const RedisModuleString* str) noexcept {
  size_t len = 0;
  const char* ptr = RedisModule_StringPtrLen(str, &len);
  return {ptr, len};
}

int ReplyError(RedisModuleCtx* ctx, Error error) noexcept {
  ++counters.errors;
  // ErrorReply returns literals, which are NUL-terminated.
  return RedisModule_ReplyWithError(ctx, ErrorReply(error).data());
}

// Redis's own arity error, naming the command as registered, like its arity check does.
int ReplyWrongArity(RedisModuleCtx* ctx) noexcept {
  ++counters.errors;
  return RedisModule_WrongArity(ctx);
}

// Reads the bucket from an open key, or says why it cannot be read.
Error ReadBucket(RedisModuleKey* key, StoredBucket& bucket) noexcept {
  const int type = RedisModule_KeyType(key);
  if (type == REDISMODULE_KEYTYPE_EMPTY) {
    bucket = {0, kNoExpiry};
    return Error::kNone;
  }
  if (type != REDISMODULE_KEYTYPE_STRING) return Error::kWrongType;
  size_t len = 0;
  const char* value = RedisModule_StringDMA(key, &len, REDISMODULE_READ);
  const auto tokens = ParseStoredTokens({value, len});
  if (!tokens) return Error::kInvalidStored;
  const mstime_t expire_at = RedisModule_GetAbsExpire(key);
  bucket = {*tokens, expire_at == REDISMODULE_NO_EXPIRE ? kNoExpiry : expire_at};
  return Error::kNone;
}

// Stores the decided bucket in place and sends its effect, never the command, to replicas and
// the AOF: `SET key remaining PXAT expire_at`.
void WriteBucket(RedisModuleCtx* ctx, RedisModuleString* keyname, RedisModuleKey* key,
                 const AbsorbDecision& decision) noexcept {
  char digits[kInt64TextCapacity];
  const size_t len = FormatInt64(decision.remaining, digits);
  // Creates the string for a new key, resizes an existing one only when its length differs.
  RedisModule_StringTruncate(key, len);
  size_t current_len = 0;
  char* value = RedisModule_StringDMA(key, &current_len, REDISMODULE_WRITE);
  std::memcpy(value, digits, len);
  RedisModule_SetAbsExpire(key, decision.expire_at_ms);
  RedisModule_SignalModifiedKey(ctx, keyname);
  // The same keyspace events as the original's PSETEX, for clients that listen to them.
  RedisModule_NotifyKeyspaceEvent(ctx, REDISMODULE_NOTIFY_STRING, "set", keyname);
  RedisModule_NotifyKeyspaceEvent(ctx, REDISMODULE_NOTIFY_GENERIC, "expire", keyname);
  RedisModule_Replicate(ctx, "SET", "sbcl", keyname, digits, len, "PXAT",
                        static_cast<long long>(decision.expire_at_ms));
}

// SHIELD.absorb <key> <capacity> <period> [tokens]
//
// Takes `tokens` (default 1) from the token bucket at <key>, which holds <capacity> tokens and
// refills completely in <period> seconds.
// Reply: integer, the tokens left after the take; -1 when fewer than `tokens` are left, in which
// case nothing is taken, nothing is written and nothing is propagated.
// Errors: wrong arity; "capacity/period/tokens must be positive"; "period value too large";
// "invalid token count in Redis" for a string that is not a count; WRONGTYPE.
int AbsorbCommand(RedisModuleCtx* ctx, RedisModuleString** argv, int argc) noexcept {
  ++counters.calls;
  if (argc != 4 && argc != 5) return ReplyWrongArity(ctx);
  const auto args = ParseAbsorbArgs(View(argv[2]), View(argv[3]),
                                    argc == 5 ? std::optional(View(argv[4])) : std::nullopt);
  if (args.error != Error::kNone) return ReplyError(ctx, args.error);

  const int64_t now_ms = NowMs();
  if (!ExpiryFits(now_ms, args.limits.period_ms)) return ReplyError(ctx, Error::kPeriodTooLarge);

  auto* key = static_cast<RedisModuleKey*>(
      RedisModule_OpenKey(ctx, argv[1], REDISMODULE_READ | REDISMODULE_WRITE));
  StoredBucket stored{};
  const Error read_error = ReadBucket(key, stored);
  if (read_error != Error::kNone) {
    RedisModule_CloseKey(key);
    return ReplyError(ctx, read_error);
  }

  const AbsorbDecision decision = Absorb(args.limits, stored, args.tokens, now_ms);
  if (decision.allowed) {
    WriteBucket(ctx, argv[1], key, decision);
    ++counters.allowed;
    counters.tokens_absorbed += static_cast<uint64_t>(args.tokens);
  } else {
    ++counters.denied;
  }
  RedisModule_CloseKey(key);
  return RedisModule_ReplyWithLongLong(ctx, ReplyFor(decision));
}

void InfoCallback(RedisModuleInfoCtx* ctx, int /*for_crash_report*/) noexcept {
  RedisModule_InfoAddSection(ctx, "");
  RedisModule_InfoAddFieldULongLong(ctx, "calls", counters.calls);
  RedisModule_InfoAddFieldULongLong(ctx, "allowed", counters.allowed);
  RedisModule_InfoAddFieldULongLong(ctx, "denied", counters.denied);
  RedisModule_InfoAddFieldULongLong(ctx, "errors", counters.errors);
  RedisModule_InfoAddFieldULongLong(ctx, "tokens_absorbed", counters.tokens_absorbed);
}

int RegisterCommand(RedisModuleCtx* ctx, const CommandSpec& spec, RedisModuleCmdFunc handler) {
  if (RedisModule_CreateCommand(ctx, spec.name, handler, spec.flags, spec.first_key, spec.last_key,
                                spec.key_step) == REDISMODULE_ERR) {
    return REDISMODULE_ERR;
  }
  RedisModuleCommand* command = RedisModule_GetCommand(ctx, spec.name);
  if (command == nullptr) return REDISMODULE_ERR;
  return RedisModule_SetCommandInfo(command, spec.info);
}

}  // namespace
}  // namespace shield::glue

extern "C" __attribute__((visibility("default"))) int RedisModule_OnLoad(
    RedisModuleCtx* ctx, RedisModuleString** /*argv*/, int argc) noexcept {
  using namespace shield::glue;
  if (RedisModule_Init(ctx, kModuleName, kModuleVersion, REDISMODULE_APIVER_1) == REDISMODULE_ERR)
    return REDISMODULE_ERR;
  if (!RMAPI_FUNC_SUPPORTED(RedisModule_SetCommandInfo) ||
      !RMAPI_FUNC_SUPPORTED(RedisModule_GetAbsExpire)) {
    RedisModule_Log(ctx, "warning", "Shield needs Redis 7.0 or later (or Valkey 7.2+)");
    return REDISMODULE_ERR;
  }
  if (argc != 0) {
    RedisModule_Log(ctx, "warning", "Shield takes no module arguments");
    return REDISMODULE_ERR;
  }
  if (RedisModule_GetApi("RedisModule_CachedMicroseconds",
                         reinterpret_cast<void**>(&cached_microseconds)) != REDISMODULE_OK) {
    cached_microseconds = nullptr;
  }
  RedisModule_Log(ctx, "notice", "Shield reads time from %s",
                  cached_microseconds != nullptr ? "the command's cached time (CachedMicroseconds)"
                                                 : "the wall clock (Milliseconds)");
  // Keys are signalled as modified only when a call writes them, not when it is denied.
  RedisModule_SetModuleOptions(ctx, REDISMODULE_OPTION_NO_IMPLICIT_SIGNAL_MODIFIED);

  const CommandSpec absorb{"SHIELD.absorb", "write deny-oom fast", 1, 1, 1, &kAbsorbInfo};
  if (RegisterCommand(ctx, absorb, AbsorbCommand) == REDISMODULE_ERR) return REDISMODULE_ERR;
  if (RedisModule_RegisterInfoFunc(ctx, InfoCallback) == REDISMODULE_ERR) return REDISMODULE_ERR;
  return REDISMODULE_OK;
}
