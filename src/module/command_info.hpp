// Command metadata for the module's commands, kept as data apart from the handlers.
// Included only by module.cpp, the one translation unit that sees redismodule.h.
#pragma once

namespace shield::glue {

// SHIELD.absorb reads and rewrites exactly one key, at argv[1]; its reply reveals the stored
// count, so the key spec says ACCESS (as INCR's does) and ACL read rights are needed too.
inline RedisModuleCommandKeySpec kAbsorbKeySpecs[] = {
    {.notes = nullptr,
     .flags = REDISMODULE_CMD_KEY_RW | REDISMODULE_CMD_KEY_ACCESS | REDISMODULE_CMD_KEY_UPDATE,
     .begin_search_type = REDISMODULE_KSPEC_BS_INDEX,
     .bs = {.index = {.pos = 1}},
     .find_keys_type = REDISMODULE_KSPEC_FK_RANGE,
     .fk = {.range = {.lastkey = 0, .keystep = 1, .limit = 0}}},
    {},
};

inline RedisModuleCommandArg kAbsorbArgs[] = {
    {.name = "key", .type = REDISMODULE_ARG_TYPE_KEY, .key_spec_index = 0},
    {.name = "capacity", .type = REDISMODULE_ARG_TYPE_INTEGER, .key_spec_index = -1},
    {.name = "period", .type = REDISMODULE_ARG_TYPE_INTEGER, .key_spec_index = -1},
    {.name = "tokens",
     .type = REDISMODULE_ARG_TYPE_INTEGER,
     .key_spec_index = -1,
     .flags = REDISMODULE_CMD_ARG_OPTIONAL},
    {},
};

inline const RedisModuleCommandInfo kAbsorbInfo = {
    .version = REDISMODULE_COMMAND_INFO_VERSION,
    .summary =
        "Takes tokens from a token bucket; replies the tokens left, or -1 when too few are left.",
    .complexity = "O(1)",
    .since = "1.0.0",
    .history = nullptr,
    .tips = nullptr,
    .arity = -4,  // 4 or 5; the handler rejects more than 5
    .key_specs = kAbsorbKeySpecs,
    .args = kAbsorbArgs,
};

struct CommandSpec {
  const char* name;
  const char* flags;
  int first_key;
  int last_key;
  int key_step;
  const RedisModuleCommandInfo* info;
};

inline constexpr const char* kModuleName = "SHIELD";
inline constexpr int kModuleVersion = 10000;  // 1.0.0 as major*10000 + minor*100 + patch

}  // namespace shield::glue
