// Shield's entry point: OnLoad registers every row of the command table, the INFO section and the
// cluster-bus receivers, and picks the clock. Only the glue (src/module/) knows both Redis and
// Shield's core.
#define SHIELD_DEFINES_MODULE_API
#include <strings.h>
#include <sys/time.h>

#include <cstdio>

#include "module/redis.hpp"
// command_table.hpp uses the types of redismodule.h.
#include "module/command_table.hpp"
#include "module/glue.hpp"
#include "module/wait.hpp"

namespace shield::glue {
namespace {

// Redis 7.2+ offers the time of the current command; older servers only have wall-clock time.
using CachedMicrosecondsFn = uint64_t (*)();
CachedMicrosecondsFn cached_microseconds = nullptr;

// ACL categories for module commands: Redis 7.2+ and Valkey offer them; 7.4+ and Valkey 8 also
// let a module add its own category. Looked up at load, so the module still loads on Redis 7.0.
using SetCommandAclCategoriesFn = int (*)(RedisModuleCommand*, const char*);
using AddAclCategoryFn = int (*)(RedisModuleCtx*, const char*);
SetCommandAclCategoriesFn set_acl_categories = nullptr;
bool own_category = false;

void FindAclApi(RedisModuleCtx* ctx) noexcept {
  if (RedisModule_GetApi("RedisModule_SetCommandACLCategories",
                         reinterpret_cast<void**>(&set_acl_categories)) != REDISMODULE_OK) {
    set_acl_categories = nullptr;
    RedisModule_Log(ctx, "notice",
                    "Shield's commands are in no ACL category: this server cannot set them "
                    "(Redis 7.2+ and Valkey can); allow them by name, +shield.absorb");
    return;
  }
  AddAclCategoryFn add_category = nullptr;
  own_category = RedisModule_GetApi("RedisModule_AddACLCategory",
                                    reinterpret_cast<void**>(&add_category)) == REDISMODULE_OK &&
                 add_category(ctx, kAclCategory) == REDISMODULE_OK;
  RedisModule_Log(ctx, "notice", "Shield's commands are in the ACL categories their flags imply%s",
                  own_category ? ", and in @shield" : " (this server has no module categories)");
}

int SetAclCategories(RedisModuleCtx* ctx, RedisModuleCommand* command,
                     const CommandSpec& spec) noexcept {
  if (set_acl_categories == nullptr) return REDISMODULE_OK;
  char categories[64];
  const int len = std::snprintf(categories, sizeof categories, "%s%s%s", spec.acl_categories,
                                own_category ? " " : "", own_category ? kAclCategory : "");
  if (len < 0 || static_cast<size_t>(len) >= sizeof categories ||
      set_acl_categories(command, categories) == REDISMODULE_ERR) {
    RedisModule_Log(ctx, "warning", "Shield could not set the ACL categories of %s", spec.name);
    return REDISMODULE_ERR;
  }
  return REDISMODULE_OK;
}

// Why registering `name` failed, when another module is the likely reason: CL.THROTTLE is
// redis-cell's command too, and a server has one command per name.
const char* RegisterHint(const char* name) noexcept {
  if (strcasecmp(name, "CL.THROTTLE") != 0) return "";
  return ": the server already has a CL.THROTTLE, most likely redis-cell's. Shield's CL.THROTTLE "
         "replaces it and reads its keys as they are: unload redis-cell (MODULE UNLOAD "
         "redis-cell, or remove its loadmodule line and restart), then load Shield";
}

int RegisterCommand(RedisModuleCtx* ctx, const CommandSpec& spec,
                    RedisModuleCmdFunc dispatch) noexcept {
  if (RedisModule_CreateCommand(ctx, spec.name, dispatch, spec.flags, spec.first_key, spec.last_key,
                                spec.key_step) == REDISMODULE_ERR) {
    RedisModule_Log(ctx, "warning", "Shield could not register %s%s", spec.name,
                    RegisterHint(spec.name));
    return REDISMODULE_ERR;
  }
  RedisModuleCommand* command = RedisModule_GetCommand(ctx, spec.name);
  if (command == nullptr) return REDISMODULE_ERR;
  if (RedisModule_SetCommandInfo(command, &spec.info) == REDISMODULE_ERR) {
    RedisModule_Log(ctx, "warning", "Shield could not set the command info of %s", spec.name);
    return REDISMODULE_ERR;
  }
  return SetAclCategories(ctx, command, spec);
}

}  // namespace

int64_t NowMs() noexcept {
  if (cached_microseconds != nullptr)
    return static_cast<int64_t>(cached_microseconds()) / kMicrosPerMilli;
  return static_cast<int64_t>(RedisModule_Milliseconds());
}

int64_t NowUs() noexcept {
  if (cached_microseconds != nullptr) return static_cast<int64_t>(cached_microseconds());
  // Redis 7.0 has no microsecond clock in its module API; RedisModule_Milliseconds() * 1000
  // would read up to a millisecond early, and GCRA (CL.THROTTLE, SHIELD.gcra) would then deny at a
  // limit's exact boundary where redis-cell, reading nanoseconds, allows. gettimeofday is the
  // clock Redis 7.0's own ustime() and mstime() read, and an import every glibc since 2.2.5 has
  // (clock_gettime would need 2.17: docs/deploy.md promises 2.14).
  timeval now{};
  gettimeofday(&now, nullptr);
  return static_cast<int64_t>(now.tv_sec) * kMillisPerSecond * kMicrosPerMilli +
         static_cast<int64_t>(now.tv_usec);
}

}  // namespace shield::glue

// MODULE UNLOAD is refused on every server: a cluster node that unloaded Shield keeps its
// cluster-bus receivers registered and crashes on the next SHIELD.stats CLUSTER message (Redis
// 7.0's moduleCallClusterReceivers calls into the unmapped library), and ACL rules that name
// Shield's commands would dangle. Upgrades and removals are restarts (docs/production.md).
extern "C" __attribute__((visibility("default"))) int RedisModule_OnUnload(
    RedisModuleCtx* ctx) noexcept {
  RedisModule_Log(ctx, "warning",
                  "Shield refuses MODULE UNLOAD: its cluster-bus receivers cannot be removed and "
                  "would crash the server. To upgrade or remove Shield, change the loadmodule line "
                  "and restart the server (docs/production.md, Upgrading Shield)");
  return REDISMODULE_ERR;
}

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
                  cached_microseconds != nullptr
                      ? "the command's cached time (CachedMicroseconds)"
                      : "the wall clock (Milliseconds; microseconds for GCRA)");
  // Which server this is, from the module API: Valkey and Redict also register every function
  // under their own prefix, and GetServerVersion gives their own version, 0x00MMmmpp (INFO's
  // redis_version is 7.2.4 on every Valkey).
  void* probe = nullptr;
  const bool valkey = RedisModule_GetApi("ValkeyModule_GetServerVersion", &probe) == REDISMODULE_OK;
  const bool redict =
      !valkey && RedisModule_GetApi("RedictModule_GetServerVersion", &probe) == REDISMODULE_OK;
  const int version = RedisModule_GetServerVersion();
  // Valkey 9.0+ refuses CLUSTER MIGRATESLOTS (atomic slot migration) unless every module sets
  // VALKEYMODULE_OPTIONS_HANDLE_ATOMIC_SLOT_MIGRATION (1 << 5 in valkeymodule.h; not in this
  // redismodule.h). It means: the target holds a slot's keys before it owns them, and what a
  // module replicates during the move must touch one slot. Shield keeps no state outside its string
  // keys and replicates one-key SET and DEL, so it can say so. Redis gives that bit no meaning:
  // set on Valkey 9.0+ only.
  constexpr int kHandleAtomicSlotMigration = 1 << 5;
  const bool atomic_slot_migration = valkey && version >= 0x00090000;
  RedisModule_Log(
      ctx, "notice", "Shield runs on %s %d.%d.%d%s",
      valkey ? "Valkey" : (redict ? "Redict" : "Redis"), (version >> 16) & 0xff,
      (version >> 8) & 0xff, version & 0xff,
      atomic_slot_migration ? " and handles atomic slot migration (CLUSTER MIGRATESLOTS)" : "");
  // Keys are signalled as modified only when a call writes them, not when it is denied.
  RedisModule_SetModuleOptions(ctx, REDISMODULE_OPTION_NO_IMPLICIT_SIGNAL_MODIFIED |
                                        (atomic_slot_migration ? kHandleAtomicSlotMigration : 0));

  FindAclApi(ctx);
  for (size_t row = 0; row < std::size(kCommands); ++row) {
    if (RegisterCommand(ctx, kCommands[row], kDispatchers[row]) == REDISMODULE_ERR) {
      return REDISMODULE_ERR;
    }
  }
  if (RedisModule_RegisterInfoFunc(ctx, InfoCallback) == REDISMODULE_ERR) return REDISMODULE_ERR;
  if (RegisterWait(ctx) == REDISMODULE_ERR) return REDISMODULE_ERR;
  SetUpStats(ctx, kCommandCounters);
  return REDISMODULE_OK;
}
