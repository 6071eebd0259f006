// SHIELD.limit and SHIELD.limit_ro: several policies of any algorithm in one atomic call. The core
// (core/limit/) parses and decides each policy; this opens the keys, writes all or nothing, and
// replies.
#include <cstdio>
#include <span>

#include "core/limit/limit.hpp"
#include "module/glue.hpp"

namespace shield::glue {
namespace {

// One key of a call and its policy's decision.
struct LimitSlot {
  limit::Policy policy;
  StringKey key;
  PeekedKey peeked;
  Outcome outcome;
};

// "ERR policy '<name>': <reason>" (the reason is the error's own text without "ERR "), or the
// error itself when it names no policy.
int ReplyLimitError(RedisModuleCtx* ctx, const limit::ParseError& error,
                    std::span<const LimitSlot> slots) noexcept {
  if (error.policy >= slots.size() || error.error == Error::kArity) {
    return ReplyError(ctx, error.error);
  }
  counters.Add(Counter::kErrors);
  std::string_view reason = ErrorReply(error.error);
  if (reason.starts_with("ERR ")) reason.remove_prefix(4);
  const std::string_view name = slots[error.policy].policy.name;
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
void ReplyHeader(RedisModuleCtx* ctx, std::span<const LimitSlot> slots, bool allowed,
                 bool policy_header) noexcept {
  ScratchArray<char, 512> text(slots.size() * limit::kMaxHeaderItemLength);
  size_t len = 0;
  for (size_t i = 0; i < slots.size(); ++i) {
    const LimitSlot& slot = slots[i];
    const PolicyState& state = slot.outcome.State(allowed);
    len += policy_header
               ? limit::FormatHeaderItem(&text[len], i == 0, slot.policy.name, 'q',
                                         slot.outcome.quota, 'w', slot.outcome.window_s)
               : limit::FormatHeaderItem(&text[len], i == 0, slot.policy.name, 'r', state.remaining,
                                         't', CeilSeconds(state.reset_after_ms));
  }
  RedisModule_ReplyWithStringBuffer(ctx, text.begin(), len);
}

void ReplyPolicy(RedisModuleCtx* ctx, const LimitSlot& slot, bool allowed) noexcept {
  const PolicyState& state = slot.outcome.State(allowed);
  RedisModule_ReplyWithMap(ctx, 8);
  ReplyName(ctx, "name");
  ReplyName(ctx, slot.policy.name);
  ReplyName(ctx, "algorithm");
  ReplyName(ctx, limit::kAlgorithmNames[static_cast<size_t>(slot.policy.algorithm)]);
  ReplyField(ctx, "allowed", slot.outcome.allowed ? 1 : 0);
  ReplyField(ctx, "remaining", state.remaining);
  ReplyField(ctx, "limit", slot.outcome.quota);
  ReplyField(ctx, "window", slot.outcome.window_s);
  ReplyField(ctx, "reset_after_ms", state.reset_after_ms);
  ReplyField(ctx, "retry_after_ms", slot.outcome.allowed ? 0 : slot.outcome.retry_after_ms);
}

void ReplyLimit(RedisModuleCtx* ctx, std::span<const LimitSlot> slots, bool allowed,
                int64_t retry_after_ms, bool headers) noexcept {
  RedisModule_ReplyWithMap(ctx, headers ? 5 : 4);
  ReplyField(ctx, "allowed", allowed ? 1 : 0);
  ReplyField(ctx, "retry_after_ms", retry_after_ms);
  ReplyName(ctx, "violated");
  long violated = 0;
  for (const LimitSlot& slot : slots) violated += slot.outcome.allowed ? 0 : 1;
  RedisModule_ReplyWithArray(ctx, violated);
  for (const LimitSlot& slot : slots) {
    if (!slot.outcome.allowed) ReplyName(ctx, slot.policy.name);
  }
  ReplyName(ctx, "policies");
  RedisModule_ReplyWithArray(ctx, static_cast<long>(slots.size()));
  for (const LimitSlot& slot : slots) ReplyPolicy(ctx, slot, allowed);
  if (!headers) return;
  const bool retry = !allowed && retry_after_ms != kNever;
  ReplyName(ctx, "headers");
  RedisModule_ReplyWithMap(ctx, retry ? 3 : 2);
  ReplyName(ctx, "RateLimit-Policy");
  ReplyHeader(ctx, slots, allowed, true);
  ReplyName(ctx, "RateLimit");
  ReplyHeader(ctx, slots, allowed, false);
  if (retry) {
    ReplyName(ctx, "Retry-After");
    RedisModule_ReplyWithLongLong(ctx, CeilSeconds(retry_after_ms));
  }
}

int Limit(RedisModuleCtx* ctx, RedisModuleString** argv, int argc, bool read_only) noexcept {
  CountCall(read_only ? Counter::kLimitRoCalls : Counter::kLimitCalls);
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
  ScratchArray<LimitSlot> slots(count);
  ScratchArray<std::string_view> names(count);
  ScratchArray<limit::Policy> policies(count);
  limit::Options options;
  const limit::ParseError parsed = limit::ParsePolicies(
      {words.begin() + 1 + count, arg_count - 1 - count}, {policies.begin(), count},
      {names.begin(), count}, options, now_ms, now_ns);
  for (size_t i = 0; i < count; ++i) slots[i].policy = policies[i];
  if (parsed.error != Error::kNone) return ReplyLimitError(ctx, parsed, {slots.begin(), count});
  options.dry_run = options.dry_run || read_only;
  for (size_t i = 0; i < count; ++i) names[i] = words[1 + i];
  if (HasDuplicate({names.begin(), count})) return ReplyError(ctx, Error::kDuplicateLimitKey);

  // Decide every policy at the same instant, then write all or nothing.
  bool allowed = true;
  for (size_t i = 0; i < count; ++i) {
    LimitSlot& slot = slots[i];
    RedisModuleString* name = argv[2 + i];
    const StoredValue* stored = nullptr;
    StoredValue opened;
    if (options.dry_run) {
      if (const Error error = Peek(ctx, name, slot.peeked); error != Error::kNone) {
        return ReplyError(ctx, error);
      }
      stored = &slot.peeked.stored;
    } else {
      if (const Error error = OpenStored(ctx, name, slot.key, opened, true);
          error != Error::kNone) {
        return ReplyError(ctx, error);
      }
      stored = &opened;
    }
    slot.outcome = limit::Decide(slot.policy, *stored, options, now_ms, now_ns);
    if (slot.outcome.error != Error::kNone) {
      return ReplyLimitError(ctx, {slot.outcome.error, i}, {slots.begin(), count});
    }
    allowed = allowed && slot.outcome.allowed;
  }
  if (allowed && !options.dry_run) {
    // Each write propagates as SET or DEL, together in the MULTI/EXEC the server wraps around a
    // command's effects: if the first can be propagated, so can the others.
    for (LimitSlot& slot : slots) {
      if (const Error error = CarryOut(ctx, slot.key, slot.outcome); error != Error::kNone) {
        return ReplyError(ctx, error);
      }
    }
  }
  // One decision for the call (allowed or denied, the costs taken); refunds and settlements count
  // what they gave back, only when written.
  uint64_t taken = 0;
  const bool written = allowed && !options.dry_run;
  for (const LimitSlot& slot : slots) {
    if (written && slot.outcome.refunded > 0) {
      counters.Add(Counter::kTokensRefunded, static_cast<uint64_t>(slot.outcome.refunded));
    }
    const int64_t cost = slot.policy.settle ? slot.outcome.taken : slot.policy.cost;
    if (written && !options.refund && __builtin_add_overflow(taken, cost, &taken)) {
      taken = UINT64_MAX;
    }
  }
  if (!options.refund && !options.dry_run) CountDecision(allowed, taken);

  // The call's wait: the longest of the policies that refuse, never when one of them can never.
  int64_t retry_after_ms = 0;
  for (const LimitSlot& slot : slots) {
    if (!slot.outcome.allowed) {
      retry_after_ms = CombineRetryAfterMs(retry_after_ms, slot.outcome.retry_after_ms);
    }
  }
  std::span<const LimitSlot> all{slots.begin(), count};
  ReplyLimit(ctx, all, allowed, allowed ? 0 : retry_after_ms, options.headers);
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
