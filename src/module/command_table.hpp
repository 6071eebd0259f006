// Command metadata for the module's commands, kept as data apart from the handlers: key specs,
// arguments and summaries for COMMAND INFO / COMMAND DOCS, and the command table itself.
// Included only by module.cpp.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <string_view>
#include <utility>

#include "module/glue.hpp"
#include "module/version.hpp"

namespace shield::glue {

// Key specs. Every bucket command's reply reveals the stored count, so its key spec says ACCESS
// (as INCR's does) and ACL read rights are needed too.
constexpr uint64_t kBucketWrite =
    REDISMODULE_CMD_KEY_RW | REDISMODULE_CMD_KEY_ACCESS | REDISMODULE_CMD_KEY_UPDATE;
constexpr uint64_t kBucketRead = REDISMODULE_CMD_KEY_RO | REDISMODULE_CMD_KEY_ACCESS;
constexpr uint64_t kBucketDelete = REDISMODULE_CMD_KEY_RM | REDISMODULE_CMD_KEY_DELETE;

// One key at argv[1].
constexpr RedisModuleCommandKeySpec OneKey(uint64_t flags) {
  return {.notes = nullptr,
          .flags = flags,
          .begin_search_type = REDISMODULE_KSPEC_BS_INDEX,
          .bs = {.index = {.pos = 1}},
          .find_keys_type = REDISMODULE_KSPEC_FK_RANGE,
          .fk = {.range = {.lastkey = 0, .keystep = 1, .limit = 0}}};
}

// Keys from argv[1] every `step` arguments, up to `lastkey` counted from the end. absorb_multi
// uses step 4 and lastkey -4: with argc = 1 + 4n (+1 for VERBOSE) the last key is argv[4n-3],
// and a trailing VERBOSE (at most three trailing words would be) is never taken for a key.
constexpr RedisModuleCommandKeySpec KeyRange(uint64_t flags, int lastkey, int step) {
  return {.notes = nullptr,
          .flags = flags,
          .begin_search_type = REDISMODULE_KSPEC_BS_INDEX,
          .bs = {.index = {.pos = 1}},
          .find_keys_type = REDISMODULE_KSPEC_FK_RANGE,
          .fk = {.range = {.lastkey = lastkey, .keystep = step, .limit = 0}}};
}

inline RedisModuleCommandKeySpec kAbsorbKeySpecs[] = {OneKey(kBucketWrite), {}};
inline RedisModuleCommandKeySpec kInspectKeySpecs[] = {OneKey(kBucketRead), {}};
inline RedisModuleCommandKeySpec kMultiKeySpecs[] = {KeyRange(kBucketWrite, -4, 4), {}};
inline RedisModuleCommandKeySpec kResetKeySpecs[] = {KeyRange(kBucketDelete, -1, 1), {}};

// <numkeys> at argv[1], then that many keys (SHIELD.limit, as EVAL's).
constexpr RedisModuleCommandKeySpec NumKeys(uint64_t flags) {
  return {.notes = nullptr,
          .flags = flags,
          .begin_search_type = REDISMODULE_KSPEC_BS_INDEX,
          .bs = {.index = {.pos = 1}},
          .find_keys_type = REDISMODULE_KSPEC_FK_KEYNUM,
          .fk = {.keynum = {.keynumidx = 0, .firstkey = 1, .keystep = 1}}};
}
inline RedisModuleCommandKeySpec kLimitKeySpecs[] = {NumKeys(kBucketWrite), {}};
inline RedisModuleCommandKeySpec kLimitRoKeySpecs[] = {NumKeys(kBucketRead), {}};

// An argument as the servers of the matrix read it. Redis 7.2+, Valkey and Redict read a
// `display_text` field after `subargs`, which Redis 7.0's redismodule.h (the header Shield builds
// against) lacks: with that header's size, they read the next argument's name as the display text
// (COMMAND DOCS showed `key` as "capacity"). Each argument therefore carries the field, and
// kCommandInfoVersion tells every server the size of one argument; Redis 7.0 steps by that size
// and never reads the field.
struct CommandArg {
  RedisModuleCommandArg arg;
  const char* display_text;
};
static_assert(offsetof(CommandArg, display_text) == sizeof(RedisModuleCommandArg),
              "display_text follows the fields of Redis 7.0's argument, as in newer headers");

inline constexpr RedisModuleCommandInfoVersion kCommandInfoVersion = {
    .version = 1,
    .sizeof_historyentry = sizeof(RedisModuleCommandHistoryEntry),
    .sizeof_keyspec = sizeof(RedisModuleCommandKeySpec),
    .sizeof_arg = sizeof(CommandArg)};

// The first argument of a list of CommandArg, as the module API takes it.
constexpr RedisModuleCommandArg* Args(CommandArg* args) {
  return &args[0].arg;
}

constexpr CommandArg Key() {
  return {{.name = "key", .type = REDISMODULE_ARG_TYPE_KEY, .key_spec_index = 0}, "key"};
}
constexpr CommandArg Integer(const char* name, int flags = 0) {
  return {
      {.name = name, .type = REDISMODULE_ARG_TYPE_INTEGER, .key_spec_index = -1, .flags = flags},
      name};
}
// A token; `display_text` names the value that follows it (nullptr for a pure token).
constexpr CommandArg Token(const char* name, RedisModuleCommandArgType type,
                           const char* display_text = nullptr,
                           int flags = REDISMODULE_CMD_ARG_OPTIONAL) {
  return {{.name = name, .type = type, .key_spec_index = -1, .token = name, .flags = flags},
          display_text};
}
constexpr CommandArg Group(const char* name, RedisModuleCommandArgType type, CommandArg* subargs,
                           int flags = 0) {
  return {
      {.name = name, .type = type, .key_spec_index = -1, .flags = flags, .subargs = Args(subargs)},
      nullptr};
}

inline CommandArg kAbsorbArgs[] = {
    Key(),
    Integer("capacity"),
    Integer("period"),
    Integer("tokens", REDISMODULE_CMD_ARG_OPTIONAL),
    Token("BURST", REDISMODULE_ARG_TYPE_INTEGER, "n"),
    Token("VERBOSE", REDISMODULE_ARG_TYPE_PURE_TOKEN),
    Token("WAIT", REDISMODULE_ARG_TYPE_INTEGER, "ms"),
    {},
};
// SHIELD.inspect: SHIELD.absorb's arguments without WAIT.
inline CommandArg kInspectArgs[] = {
    Key(),
    Integer("capacity"),
    Integer("period"),
    Integer("tokens", REDISMODULE_CMD_ARG_OPTIONAL),
    Token("BURST", REDISMODULE_ARG_TYPE_INTEGER, "n"),
    Token("VERBOSE", REDISMODULE_ARG_TYPE_PURE_TOKEN),
    {},
};
inline CommandArg kGcraArgs[] = {
    Key(),
    Integer("capacity"),
    Integer("period"),
    Integer("tokens", REDISMODULE_CMD_ARG_OPTIONAL),
    Token("BURST", REDISMODULE_ARG_TYPE_INTEGER, "n"),
    Token("VERBOSE", REDISMODULE_ARG_TYPE_PURE_TOKEN),
    Token("DRYRUN", REDISMODULE_ARG_TYPE_PURE_TOKEN),
    Token("WAIT", REDISMODULE_ARG_TYPE_INTEGER, "ms"),
    {},
};
inline CommandArg kRefundArgs[] = {
    Key(),
    Integer("capacity"),
    Integer("period"),
    Integer("tokens"),
    Token("BURST", REDISMODULE_ARG_TYPE_INTEGER, "n"),
    {},
};
inline CommandArg kSettleArgs[] = {
    Key(),
    Integer("capacity"),
    Integer("period"),
    Integer("reserved"),
    Integer("actual"),
    Token("BURST", REDISMODULE_ARG_TYPE_INTEGER, "n"),
    {},
};
inline CommandArg kMultiBucketArgs[] = {
    Key(),
    {{.name = "capacity[:burst]", .type = REDISMODULE_ARG_TYPE_STRING, .key_spec_index = -1},
     "capacity[:burst]"},
    Integer("period"),
    Integer("tokens"),
    {},
};
inline CommandArg kMultiArgs[] = {
    Group("bucket", REDISMODULE_ARG_TYPE_BLOCK, kMultiBucketArgs, REDISMODULE_CMD_ARG_MULTIPLE),
    Token("VERBOSE", REDISMODULE_ARG_TYPE_PURE_TOKEN),
    {},
};
inline CommandArg kResetArgs[] = {
    {{.name = "key",
      .type = REDISMODULE_ARG_TYPE_KEY,
      .key_spec_index = 0,
      .flags = REDISMODULE_CMD_ARG_MULTIPLE},
     "key"},
    {},
};
inline CommandArg kStatsTimeoutArgs[] = {
    Token("CLUSTER", REDISMODULE_ARG_TYPE_PURE_TOKEN, nullptr, 0),
    Token("TIMEOUT", REDISMODULE_ARG_TYPE_INTEGER, "ms"),
    {},
};
inline CommandArg kStatsArgs[] = {
    Group("cluster", REDISMODULE_ARG_TYPE_BLOCK, kStatsTimeoutArgs, REDISMODULE_CMD_ARG_OPTIONAL),
    {},
};

// SHIELD.window and SHIELD.quota.
inline CommandArg kWindowArgs[] = {
    Key(),
    Integer("limit"),
    Integer("window"),
    Integer("tokens", REDISMODULE_CMD_ARG_OPTIONAL),
    Token("VERBOSE", REDISMODULE_ARG_TYPE_PURE_TOKEN),
    Token("DRYRUN", REDISMODULE_ARG_TYPE_PURE_TOKEN),
    {},
};
inline CommandArg kQuotaPeriodArgs[] = {
    Token("HOUR", REDISMODULE_ARG_TYPE_PURE_TOKEN, nullptr, 0),
    Token("DAY", REDISMODULE_ARG_TYPE_PURE_TOKEN, nullptr, 0),
    Token("MONTH", REDISMODULE_ARG_TYPE_PURE_TOKEN, nullptr, 0),
    {},
};
inline CommandArg kQuotaArgs[] = {
    Key(),
    Integer("limit"),
    Group("period", REDISMODULE_ARG_TYPE_ONEOF, kQuotaPeriodArgs),
    Integer("tokens", REDISMODULE_CMD_ARG_OPTIONAL),
    Token("VERBOSE", REDISMODULE_ARG_TYPE_PURE_TOKEN),
    Token("DRYRUN", REDISMODULE_ARG_TYPE_PURE_TOKEN),
    {},
};

// SHIELD.limit: <numkeys> <key>... <policy>... [DRYRUN] [HEADERS] [REFUND]; a policy is a name,
// an algorithm and its words, documented as a string each (docs/commands.md has the grammar).
inline CommandArg kLimitArgs[] = {
    Integer("numkeys"),
    {{.name = "key",
      .type = REDISMODULE_ARG_TYPE_KEY,
      .key_spec_index = 0,
      .flags = REDISMODULE_CMD_ARG_MULTIPLE},
     "key"},
    {{.name = "policy",
      .type = REDISMODULE_ARG_TYPE_STRING,
      .key_spec_index = -1,
      .flags = REDISMODULE_CMD_ARG_MULTIPLE},
     "policy"},
    Token("DRYRUN", REDISMODULE_ARG_TYPE_PURE_TOKEN),
    Token("HEADERS", REDISMODULE_ARG_TYPE_PURE_TOKEN),
    Token("REFUND", REDISMODULE_ARG_TYPE_PURE_TOKEN),
    {},
};

// CL.THROTTLE, redis-cell's argument names.
inline CommandArg kThrottleArgs[] = {
    Key(),
    Integer("max_burst"),
    Integer("count"),
    Integer("period"),
    Integer("quantity", REDISMODULE_CMD_ARG_OPTIONAL),
    {},
};

// A command's info, with its arguments as the module API takes them.
constexpr RedisModuleCommandInfo InfoWithArgs(const char* summary, const char* complexity,
                                              const char* since, int arity,
                                              RedisModuleCommandKeySpec* key_specs,
                                              RedisModuleCommandArg* args) {
  return {.version = &kCommandInfoVersion,
          .summary = summary,
          .complexity = complexity,
          .since = since,
          .history = nullptr,
          .tips = nullptr,
          .arity = arity,
          .key_specs = key_specs,
          .args = args};
}
// The info of a command with the arguments `args`, or with none (nullptr). Two overloads, because a
// sanitizer build does not take the comparison of a global's address with nullptr as a constant
// expression (kCommands is constexpr).
constexpr RedisModuleCommandInfo Info(const char* summary, const char* complexity,
                                      const char* since, int arity,
                                      RedisModuleCommandKeySpec* key_specs, CommandArg* args) {
  return InfoWithArgs(summary, complexity, since, arity, key_specs, Args(args));
}
constexpr RedisModuleCommandInfo Info(const char* summary, const char* complexity,
                                      const char* since, int arity,
                                      RedisModuleCommandKeySpec* key_specs,
                                      std::nullptr_t /*no arguments*/) {
  return InfoWithArgs(summary, complexity, since, arity, key_specs, nullptr);
}

// One row per command: everything OnLoad registers. Arity is the minimum, negative; each handler
// checks the rest. `counter` names the command's count of calls in SHIELD.stats and INFO (it is
// counted before its handler runs: Dispatch, below).
struct CommandSpec {
  const char* name;
  std::string_view counter;
  const char* flags;
  const char* acl_categories;  // where the server offers them (Redis 7.2+, Valkey), plus "shield"
  int first_key;
  int last_key;
  int key_step;
  RedisModuleCmdFunc handler;
  RedisModuleCommandInfo info;
};

inline constexpr CommandSpec kCommands[] = {
    {"SHIELD.absorb", "absorb_calls", "write deny-oom fast", "write fast", 1, 1, 1, AbsorbCommand,
     Info("Takes tokens from a token bucket; replies the tokens left, or -1 when too few are left.",
          "O(1)", "1.0.0", -4, kAbsorbKeySpecs, kAbsorbArgs)},
    {"SHIELD.inspect", "inspect_calls", "readonly fast", "read fast", 1, 1, 1, InspectCommand,
     Info("Replies what SHIELD.absorb would (VERBOSE), changing nothing.", "O(1)", "2.0.0", -4,
          kInspectKeySpecs, kInspectArgs)},
    {"SHIELD.absorb_multi", "absorb_multi_calls", "write deny-oom", "write slow", 1, -4, 4,
     AbsorbMultiCommand,
     Info("Takes tokens from several buckets, all or nothing.",
          "O(N log N) for N buckets, at most 1000", "2.0.0", -5, kMultiKeySpecs, kMultiArgs)},
    {"SHIELD.refund", "refund_calls", "write deny-oom fast", "write fast", 1, 1, 1, RefundCommand,
     Info("Gives tokens back to a bucket, never above its maximum.", "O(1)", "2.0.0", -5,
          kAbsorbKeySpecs, kRefundArgs)},
    {"SHIELD.settle", "settle_calls", "write deny-oom fast", "write fast", 1, 1, 1, SettleCommand,
     Info("Settles a cost known afterwards: gives back what was reserved beyond it, or takes the "
          "rest, leaving the bucket in debt; replies the balance.",
          "O(1)", "2.1.0", -6, kAbsorbKeySpecs, kSettleArgs)},
    {"SHIELD.reset", "reset_calls", "write", "write slow", 1, -1, 1, ResetCommand,
     Info("Deletes buckets; replies how many existed.", "O(N) for N keys", "2.0.0", -2,
          kResetKeySpecs, kResetArgs)},
    {"SHIELD.stats", "stats_calls", "readonly", "slow", 0, 0, 0, StatsCommand,
     Info("Shield's counters on this node, or summed over the cluster.", "O(1), CLUSTER: O(nodes)",
          "2.0.0", -1, nullptr, kStatsArgs)},
    // An admin command apart from SHIELD.stats, so that ACL rules can keep read-only and
    // non-admin users from wiping the counters that would show an attack.
    {"SHIELD.stats_reset", "stats_reset_calls", "write admin", "write admin dangerous", 0, 0, 0,
     StatsResetCommand,
     Info("Zeroes Shield's counters on this node.", "O(1)", "2.1.0", 1, nullptr, nullptr)},
    {"SHIELD.window", "window_calls", "write deny-oom fast", "write fast", 1, 1, 1, WindowCommand,
     Info("Takes tokens from a sliding window of at most <limit> per <window> seconds; replies "
          "the tokens left, or -1.",
          "O(1)", "2.0.0", -4, kAbsorbKeySpecs, kWindowArgs)},
    {"SHIELD.quota", "quota_calls", "write deny-oom fast", "write fast", 1, 1, 1, QuotaCommand,
     Info("Takes tokens from a quota of at most <limit> per UTC hour, day or month; replies the "
          "tokens left, or -1.",
          "O(1)", "2.0.0", -4, kAbsorbKeySpecs, kQuotaArgs)},
    // Named and with arity -1 as redis-cell registers it: COMMAND, INFO commandstats
    // (cmdstat_cl.throttle) and the usage error for a wrong count read as they did.
    {"cl.throttle", "throttle_calls", "write deny-oom fast", "write fast", 1, 1, 1, ThrottleCommand,
     Info("GCRA rate limit compatible with redis-cell: replies limited, limit, remaining, retry "
          "after and reset after.",
          "O(1)", "2.0.0", -1, kAbsorbKeySpecs, kThrottleArgs)},
    {"SHIELD.gcra", "gcra_calls", "write deny-oom fast", "write fast", 1, 1, 1, GcraCommand,
     Info("Takes tokens by GCRA (CL.THROTTLE's keys) with SHIELD.absorb's arguments; replies "
          "the tokens left, or -1.",
          "O(1)", "2.0.0", -4, kAbsorbKeySpecs, kGcraArgs)},
    // Keys by <numkeys>: the key specs say where (COMMAND GETKEYS), and getkeys-api answers the
    // servers that route by the legacy key range (limit_commands.cpp).
    {"SHIELD.limit", "limit_calls", "write deny-oom getkeys-api", "write slow", 0, 0, 0,
     LimitCommand,
     Info("Decides several limits of any algorithm (one policy per key) at once and takes from "
          "all of them or none; replies each policy's state and, with HEADERS, the RateLimit "
          "headers.",
          "O(N log N) for N policies, at most 1000", "2.1.0", -7, kLimitKeySpecs, kLimitArgs)},
    {"SHIELD.limit_ro", "limit_ro_calls", "readonly getkeys-api", "read slow", 0, 0, 0,
     LimitRoCommand,
     Info("SHIELD.limit with DRYRUN: replies what SHIELD.limit would, changing nothing.",
          "O(N log N) for N policies, at most 1000", "2.1.0", -7, kLimitRoKeySpecs, kLimitArgs)},
};

static_assert(std::size(kCommands) <= kMaxCommands, "kMaxCommands has room for every command");

// True when the space-separated `flags` include `flag`.
constexpr bool HasFlag(std::string_view flags, std::string_view flag) {
  while (!flags.empty()) {
    const size_t end = std::min(flags.find(' '), flags.size());
    if (flags.substr(0, end) == flag) return true;
    flags.remove_prefix(std::min(end + 1, flags.size()));
  }
  return false;
}

// The handler registered for row `Row`: counts the call (`calls` and the row's own counter), then
// runs the row's handler. A `getkeys-api` command is also asked where its keys are (COMMAND
// GETKEYS, routing): such a request is not a call.
template <size_t Row>
int Dispatch(RedisModuleCtx* ctx, RedisModuleString** argv, int argc) noexcept {
  constexpr const CommandSpec& kSpec = kCommands[Row];
  if constexpr (HasFlag(kSpec.flags, "getkeys-api")) {
    if (RedisModule_IsKeysPositionRequest(ctx)) return kSpec.handler(ctx, argv, argc);
  }
  counters.CountCall(Row);
  return kSpec.handler(ctx, argv, argc);
}

template <size_t... Rows>
constexpr std::array<RedisModuleCmdFunc, sizeof...(Rows)> DispatchersOf(
    std::index_sequence<Rows...> /*rows*/) {
  return {&Dispatch<Rows>...};
}
// Dispatch of every row, in the table's order.
inline constexpr auto kDispatchers =
    DispatchersOf(std::make_index_sequence<std::size(kCommands)>{});

// The names of the commands' counters, in the table's order (SHIELD.stats and INFO list them
// after the totals).
template <size_t N>
constexpr std::array<std::string_view, N> CounterNamesOf(const CommandSpec (&rows)[N]) {
  std::array<std::string_view, N> names{};
  for (size_t i = 0; i < N; ++i) names[i] = rows[i].counter;
  return names;
}
inline constexpr auto kCommandCounters = CounterNamesOf(kCommands);

// Every command's counter has a name of its own (no total's, no other command's), short enough
// for the cluster bus's one-byte length.
constexpr bool CommandCountersAreDistinctAndShort() {
  for (size_t i = 0; i < kCommandCounters.size(); ++i) {
    const std::string_view name = kCommandCounters[i];
    if (name.empty() || name.size() > kMaxCounterNameLength) return false;
    if (std::ranges::find(kCounterNames, name) != kCounterNames.end()) return false;
    for (size_t j = i + 1; j < kCommandCounters.size(); ++j) {
      if (kCommandCounters[j] == name) return false;
    }
  }
  return true;
}
static_assert(CommandCountersAreDistinctAndShort(), "a command's counter needs a name of its own");

// The ACL category of every Shield command, where the server lets modules add one (Redis 7.4+,
// Valkey 8+): `ACL SETUSER app +@shield`.
inline constexpr const char* kAclCategory = "shield";

inline constexpr const char* kModuleName = "SHIELD";

}  // namespace shield::glue
