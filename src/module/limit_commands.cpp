// SHIELD.limit and SHIELD.limit_ro: several policies of any algorithm in one atomic call. The core
// (core/limit/) parses and decides each policy; this opens the keys, writes all or nothing, and
// replies.
#include <algorithm>
#include <cstdio>
#include <span>

#include "core/limit/limit.hpp"
#include "module/glue.hpp"

namespace shield::glue {
namespace {

// A call's policies and their outcomes, in policy order.
struct LimitCall {
  std::span<const limit::Policy> policies;
  std::span<const Outcome> outcomes;
  bool allowed;
};

// "ERR policy '<name>': <reason>" (the reason is the error's own text without "ERR "), or the
// error itself when it names no policy.
int ReplyLimitError(RedisModuleCtx* ctx, const limit::ParseError& error,
                    std::span<const limit::Policy> policies) noexcept {
  if (error.policy >= policies.size() || error.error == Error::kArity) {
    return ReplyError(ctx, error.error);
  }
  counters.Add(Counter::kErrors);
  std::string_view reason = ErrorReply(error.error);
  if (reason.starts_with("ERR ")) reason.remove_prefix(4);
  const std::string_view name = policies[error.policy].name;
  char text[256];
  const int len =
      std::snprintf(text, sizeof text, "ERR policy '%.*s': %.*s", static_cast<int>(name.size()),
                    name.data(), static_cast<int>(reason.size()), reason.data());
  if (len < 0) return ReplyError(ctx, error.error);
  RedisModule_ReplyWithError(ctx, text);
  return REDISMODULE_OK;
}

// A field name as VERBOSE replies it: a bulk string (a simple string costs the server a copy and
// a scan of every byte).
void ReplyName(RedisModuleCtx* ctx, std::string_view name) noexcept {
  RedisModule_ReplyWithStringBuffer(ctx, name.data(), name.size());
}

void ReplyField(RedisModuleCtx* ctx, std::string_view field, long long value) noexcept {
  ReplyName(ctx, field);
  RedisModule_ReplyWithLongLong(ctx, value);
}

// Seconds, rounded up, of a non-negative number of milliseconds.
int64_t CeilSeconds(int64_t ms) noexcept {
  return CeilDiv(ms, kMillisPerSecond);
}

// Replies the RateLimit-Policy or the RateLimit header value: one list item per policy,
// `"<name>";q=<quota>;w=<window>` or `"<name>";r=<remaining>;t=<seconds to reset>`.
void ReplyHeader(RedisModuleCtx* ctx, const LimitCall& call, bool policy_header) noexcept {
  ScratchArray<char, 512> text(call.policies.size() * limit::kMaxHeaderItemLength);
  size_t len = 0;
  for (size_t i = 0; i < call.policies.size(); ++i) {
    const std::string_view name = call.policies[i].name;
    const Outcome& outcome = call.outcomes[i];
    const PolicyState& state = outcome.State(call.allowed);
    len += policy_header ? limit::FormatHeaderItem(&text[len], i == 0, name, 'q', outcome.quota,
                                                   'w', outcome.window_s)
                         : limit::FormatHeaderItem(&text[len], i == 0, name, 'r', state.remaining,
                                                   't', CeilSeconds(state.reset_after_ms));
  }
  RedisModule_ReplyWithStringBuffer(ctx, text.begin(), len);
}

void ReplyPolicy(RedisModuleCtx* ctx, const limit::Policy& policy, const Outcome& outcome,
                 bool allowed) noexcept {
  const PolicyState& state = outcome.State(allowed);
  RedisModule_ReplyWithMap(ctx, 8);
  ReplyName(ctx, "name");
  ReplyName(ctx, policy.name);
  ReplyName(ctx, "algorithm");
  ReplyName(ctx, limit::kAlgorithmNames[static_cast<size_t>(policy.algorithm)]);
  ReplyField(ctx, "allowed", outcome.allowed ? 1 : 0);
  ReplyField(ctx, "remaining", state.remaining);
  ReplyField(ctx, "limit", outcome.quota);
  ReplyField(ctx, "window", outcome.window_s);
  ReplyField(ctx, "reset_after_ms", state.reset_after_ms);
  ReplyField(ctx, "retry_after_ms", outcome.allowed ? 0 : outcome.retry_after_ms);
}

void ReplyLimit(RedisModuleCtx* ctx, const LimitCall& call, int64_t retry_after_ms,
                bool headers) noexcept {
  RedisModule_ReplyWithMap(ctx, headers ? 5 : 4);
  ReplyField(ctx, "allowed", call.allowed ? 1 : 0);
  ReplyField(ctx, "retry_after_ms", retry_after_ms);
  ReplyName(ctx, "violated");
  const auto violated =
      std::ranges::count_if(call.outcomes, [](const Outcome& outcome) { return !outcome.allowed; });
  RedisModule_ReplyWithArray(ctx, static_cast<long>(violated));
  for (size_t i = 0; i < call.policies.size(); ++i) {
    if (!call.outcomes[i].allowed) ReplyName(ctx, call.policies[i].name);
  }
  ReplyName(ctx, "policies");
  RedisModule_ReplyWithArray(ctx, static_cast<long>(call.policies.size()));
  for (size_t i = 0; i < call.policies.size(); ++i) {
    ReplyPolicy(ctx, call.policies[i], call.outcomes[i], call.allowed);
  }
  if (!headers) return;
  const bool retry = !call.allowed && retry_after_ms != kNever;
  ReplyName(ctx, "headers");
  RedisModule_ReplyWithMap(ctx, retry ? 3 : 2);
  ReplyName(ctx, "RateLimit-Policy");
  ReplyHeader(ctx, call, true);
  ReplyName(ctx, "RateLimit");
  ReplyHeader(ctx, call, false);
  if (retry) {
    ReplyName(ctx, "Retry-After");
    RedisModule_ReplyWithLongLong(ctx, CeilSeconds(retry_after_ms));
  }
}

int Limit(RedisModuleCtx* ctx, RedisModuleString** argv, int argc, bool read_only) noexcept {
  // getkeys-api: servers that route a module command by its legacy first/last/step range (Redis
  // 7.0 to 8.4, Valkey, Redict; Redis 8.6 reads the key specs) ask here where the keys are:
  // <numkeys> of them from argv[2]. Without this they would run the call on any node.
  if (RedisModule_IsKeysPositionRequest(ctx)) {
    long long numkeys = 0;
    if (argc >= 2 && RedisModule_StringToLongLong(argv[1], &numkeys) == REDISMODULE_OK) {
      for (long long i = 0; i < numkeys && 2 + i < argc; ++i) {
        RedisModule_KeyAtPos(ctx, static_cast<int>(2 + i));
      }
    }
    return REDISMODULE_OK;
  }
  if (argc < 2) return ReplyError(ctx, Error::kArity);
  const auto arg_count = static_cast<size_t>(argc - 1);
  ScratchArray<std::string_view, 16> words(arg_count);
  for (size_t i = 0; i < arg_count; ++i) words[i] = View(argv[i + 1]);
  const limit::Shape shape = limit::ParseShape({words.begin(), arg_count});
  if (shape.error != Error::kNone) return ReplyError(ctx, shape.error);
  const size_t count = shape.keys;

  const int64_t now_us = NowUs();
  const int64_t now_ms = now_us / kMicrosPerMilli;
  const int64_t now_ns = now_us * kNanosPerMicro;
  ScratchArray<limit::Policy> policies(count);
  ScratchArray<std::string_view> names(count);
  limit::Options options;
  const limit::ParseError parsed = limit::ParsePolicies(
      {words.begin() + 1 + count, arg_count - 1 - count}, {policies.begin(), count},
      {names.begin(), count}, options, now_ms, now_ns);
  if (parsed.error != Error::kNone) return ReplyLimitError(ctx, parsed, {policies.begin(), count});
  options.dry_run = options.dry_run || read_only;
  for (size_t i = 0; i < count; ++i) names[i] = words[1 + i];
  if (HasDuplicate({names.begin(), count})) return ReplyError(ctx, Error::kDuplicateLimitKey);

  // Decide every policy at the same instant (a dry run reads through GET, changing nothing).
  ScratchArray<StringKey> keys(options.dry_run ? 0 : count);
  ScratchArray<PeekedKey> peeked(options.dry_run ? count : 0);
  ScratchArray<Outcome> outcomes(count);
  for (size_t i = 0; i < count; ++i) {
    RedisModuleString* name = argv[2 + i];
    StoredValue opened;
    const Error error =
        options.dry_run ? Peek(ctx, name, peeked[i]) : OpenStored(ctx, name, keys[i], opened, true);
    if (error != Error::kNone) return ReplyError(ctx, error);
    outcomes[i] = limit::Decide(policies[i], options.dry_run ? peeked[i].stored : opened, options,
                                now_ms, now_ns);
    if (outcomes[i].error != Error::kNone) {
      return ReplyLimitError(ctx, {outcomes[i].error, i}, {policies.begin(), count});
    }
  }
  // Then write all or nothing: each write propagates as SET or DEL, together in the MULTI/EXEC
  // the server wraps around a command's effects (if the first can be propagated, so can the
  // others).
  const limit::CallDecision call =
      limit::DecideCall({policies.begin(), count}, {outcomes.begin(), count}, options);
  if (call.write) {
    for (size_t i = 0; i < count; ++i) {
      if (const Error error = CarryOut(ctx, keys[i], outcomes[i]); error != Error::kNone) {
        return ReplyError(ctx, error);
      }
    }
    if (call.refunded > 0) counters.Add(Counter::kTokensRefunded, call.refunded);
  }
  if (call.counted) CountDecision(call.allowed, call.taken);
  ReplyLimit(ctx, {{policies.begin(), count}, {outcomes.begin(), count}, call.allowed},
             call.retry_after_ms, options.headers);
  return REDISMODULE_OK;
}

}  // namespace

// SHIELD.limit <numkeys> <key> [<key> ...] <policy> [<policy> ...] [DRYRUN] [HEADERS] [REFUND]
//
// Decides every policy (one per key, in key order: `<name> BUCKET|GCRA|WINDOW|QUOTA ...`, each
// with its algorithm's arguments and [COST <n>]) at the same instant, and takes each policy's
// cost only when every policy allows: all or nothing. REFUND gives the costs back instead; DRYRUN
// writes nothing.
// Reply: a map (a flat array in RESP2): allowed, retry_after_ms, violated (names), policies (a
// map each: name, algorithm, allowed, remaining, limit, window, reset_after_ms, retry_after_ms),
// and with HEADERS the RateLimit-Policy, RateLimit and (when refused) Retry-After values.
// Errors: arity; "numkeys must be a positive integer"; "too many policies"; a policy's own
// argument errors as "ERR policy '<name>': <reason>"; "policy names must be unique"; "key
// appears more than once"; the stored value errors of each algorithm; WRONGTYPE. Any error
// writes nothing.
int LimitCommand(RedisModuleCtx* ctx, RedisModuleString** argv, int argc) noexcept {
  return Limit(ctx, argv, argc, false);
}

// SHIELD.limit_ro: SHIELD.limit's arguments with DRYRUN implied; registered readonly, so it runs
// on replicas (after READONLY in a cluster). Changes nothing.
int LimitRoCommand(RedisModuleCtx* ctx, RedisModuleString** argv, int argc) noexcept {
  return Limit(ctx, argv, argc, true);
}

}  // namespace shield::glue
