// What the glue's units share: the counters, the clock, argument views, replies and the store
// unit through which every command reads and writes buckets. Only the glue includes this.
#pragma once

#include <cstdint>
#include <new>
#include <span>
#include <string_view>

#include "core/bucket/bucket_args.hpp"
#include "core/common/policy.hpp"
#include "core/stats/stats.hpp"
#include "module/redis.hpp"
#include "module/string_key.hpp"

namespace shield::glue {

// This node's counters (commands run on the main thread only).
extern Counters counters;

// The time of the current command, in unix milliseconds.
int64_t NowMs() noexcept;

// The time of the current command, in unix microseconds (milliseconds * 1000 on Redis 7.0).
int64_t NowUs() noexcept;

inline std::string_view View(const RedisModuleString* str) noexcept {
  size_t len = 0;
  const char* ptr = RedisModule_StringPtrLen(str, &len);
  return {ptr, len};
}

// How many arguments after <key> a command with options hands to its parser: more than any valid
// call has, so that an option given twice is reported as such; longer calls get the arity error.
inline constexpr size_t kMaxArgsAfterKey = 10;

// Views of argv[first..argc), a call's arguments from `first` on, for a parser. `ok` is false (the
// arity error) when there are fewer than `min_count` or more than N. The views beyond the call's
// own are left unset (raw storage), so that a call pays for the arguments it has, not for N.
template <size_t N>
class ArgViews {
 public:
  // views_ is left unset on purpose: the constructor sets the call's own views, nothing reads
  // the others.
  // cppcheck-suppress uninitMemberVar
  ArgViews(RedisModuleString** argv, int argc, int first, size_t min_count) noexcept {
    if (argc < first || static_cast<size_t>(argc - first) < min_count ||
        static_cast<size_t>(argc - first) > N) {
      return;
    }
    count_ = static_cast<size_t>(argc - first);
    for (size_t i = 0; i < count_; ++i)
      new (&views_[i]) std::string_view(View(argv[i + static_cast<size_t>(first)]));
    ok_ = true;
  }
  bool ok() const noexcept { return ok_; }
  std::span<const std::string_view> all() const noexcept { return {views_, count_}; }
  const std::string_view& operator[](size_t i) const noexcept { return views_[i]; }

 private:
  union {
    std::string_view views_[N];
  };
  size_t count_ = 0;
  bool ok_ = false;
};

// The arguments after <key> (argv[2..argc)) of a one-key command.
template <size_t N = kMaxArgsAfterKey>
class ArgsAfterKey : public ArgViews<N> {
 public:
  ArgsAfterKey(RedisModuleString** argv, int argc, size_t min_count) noexcept
      : ArgViews<N>(argv, argc, 2, min_count) {}
};

// An array of `count` default-constructed T for one call: up to kInline live on the stack, a
// longer call allocates from the server's allocator, as the server does for its arguments.
template <typename T, size_t kInline = 8>
class ScratchArray {
 public:
  // inline_ is raw storage on purpose: the items are constructed in it with placement new, so
  // zeroing it first would only cost time.
  // cppcheck-suppress uninitMemberVar
  explicit ScratchArray(size_t count) noexcept
      : items_(count <= kInline ? reinterpret_cast<T*>(inline_)
                                : static_cast<T*>(RedisModule_Alloc(count * sizeof(T)))),
        count_(count) {
    for (size_t i = 0; i < count_; ++i) new (&items_[i]) T{};
  }
  ~ScratchArray() {
    for (size_t i = 0; i < count_; ++i) items_[i].~T();
    if (items_ != reinterpret_cast<T*>(inline_)) RedisModule_Free(items_);
  }
  ScratchArray(const ScratchArray&) = delete;
  ScratchArray& operator=(const ScratchArray&) = delete;

  T* begin() noexcept { return items_; }
  T* end() noexcept { return items_ + count_; }
  T& operator[](size_t i) noexcept { return items_[i]; }

 private:
  // Raw storage: the items are constructed and destroyed explicitly, whichever storage they use.
  alignas(T) unsigned char inline_[kInline * sizeof(T)];
  T* items_;
  size_t count_;
};

// Replies with `error` (the arity error is the server's, naming the command as registered) and
// counts it.
int ReplyError(RedisModuleCtx* ctx, Error error) noexcept;

// Replies the VERBOSE map (a flat field/value array in RESP2).
void ReplyVerbose(RedisModuleCtx* ctx, const VerboseValues& values) noexcept;

// Counts the outcome of a call that takes tokens.
inline void CountDecision(bool allowed, uint64_t tokens) noexcept {
  counters.Add(allowed ? Counter::kAllowed : Counter::kDenied);
  if (allowed) counters.Add(Counter::kTokensAbsorbed, tokens);
}

// Counts what an Outcome of `operation` for `tokens` says: a take is a decision, a give counts
// the tokens given back, a peek counts nothing.
inline void CountOutcome(const Outcome& outcome, Operation operation, int64_t tokens) noexcept {
  if (operation == Operation::kTake) {
    CountDecision(outcome.allowed, static_cast<uint64_t>(tokens));
  } else if (operation == Operation::kGive && outcome.refunded > 0) {
    counters.Add(Counter::kTokensRefunded, static_cast<uint64_t>(outcome.refunded));
  }
}

// Opens the key `name`, decides with `decide` (StoredValue -> Outcome: an algorithm's Decide with
// its arguments bound), reading the expiry first when `read_expiry` or when the algorithm asks for
// it, and carries the Outcome out. `error` is the Outcome's error, or the store's.
template <typename DecideFn>
Outcome DecideKey(RedisModuleCtx* ctx, RedisModuleString* name, bool read_expiry, DecideFn&& decide,
                  Error& error) noexcept {
  // One Outcome, built where the caller keeps it and returned on every path (no copy).
  StringKey key;
  StoredValue stored;
  error = OpenStored(ctx, name, key, stored, read_expiry);
  Outcome outcome = error == Error::kNone ? decide(stored) : Failed(error);
  if (error != Error::kNone) return outcome;
  if (outcome.needs_expiry) {
    ReadExpiry(key, stored);
    outcome = decide(stored);
  }
  error = outcome.error != Error::kNone ? outcome.error : CarryOut(ctx, key, outcome);
  return outcome;
}

// DecideKey for a call that changes nothing (inspect, DRYRUN): reads the key through Peek and
// writes nothing.
template <typename DecideFn>
Outcome PeekKey(RedisModuleCtx* ctx, RedisModuleString* name, DecideFn&& decide,
                Error& error) noexcept {
  PeekedKey peeked;
  error = Peek(ctx, name, peeked);
  Outcome outcome = error == Error::kNone ? decide(peeked.stored) : Failed(error);
  error = outcome.error;
  return outcome;
}

// A one-key command's decision: PeekKey for a dry run, DecideKey otherwise.
template <typename DecideFn>
Outcome DecideOrPeek(RedisModuleCtx* ctx, RedisModuleString* name, bool dry_run, bool read_expiry,
                     DecideFn&& decide, Error& error) noexcept {
  return dry_run ? PeekKey(ctx, name, decide, error)
                 : DecideKey(ctx, name, read_expiry, decide, error);
}

// Replies an Outcome: its VERBOSE map, or the algorithm's integer.
inline int ReplyOutcome(RedisModuleCtx* ctx, const Outcome& outcome, bool verbose) noexcept {
  if (verbose) {
    ReplyVerbose(ctx, VerboseOf(outcome));
    return REDISMODULE_OK;
  }
  return RedisModule_ReplyWithLongLong(ctx, outcome.reply);
}

// The end of a one-key command: the error, or the Outcome counted (CountOutcome) and replied.
inline int FinishOneKey(RedisModuleCtx* ctx, Error error, const Outcome& outcome,
                        Operation operation, int64_t tokens, bool verbose) noexcept {
  if (error != Error::kNone) return ReplyError(ctx, error);
  CountOutcome(outcome, operation, tokens);
  return ReplyOutcome(ctx, outcome, verbose);
}

// The rest of a one-key command that takes `tokens` or, with DRYRUN, only looks: decides with
// `decide(stored, operation, detail)` (the algorithm's Decide with its arguments bound) on the key
// `name`, reading its expiry first when `read_expiry`, then counts and replies.
template <typename DecideFn>
int TakeOrPeek(RedisModuleCtx* ctx, RedisModuleString* name, bool dry_run, bool verbose,
               int64_t tokens, bool read_expiry, DecideFn&& decide) noexcept {
  const Detail detail = verbose ? Detail::kFull : Detail::kReply;
  const Operation operation = dry_run ? Operation::kPeek : Operation::kTake;
  const auto decide_stored = [&](const StoredValue& stored) {
    return decide(stored, operation, detail);
  };
  Error error = Error::kNone;
  const Outcome outcome = DecideOrPeek(ctx, name, dry_run, read_expiry, decide_stored, error);
  return FinishOneKey(ctx, error, outcome, operation, tokens, verbose);
}

// ---- command handlers (one per row of the command table) -------------------------------------

int AbsorbCommand(RedisModuleCtx* ctx, RedisModuleString** argv, int argc) noexcept;
int InspectCommand(RedisModuleCtx* ctx, RedisModuleString** argv, int argc) noexcept;
int AbsorbMultiCommand(RedisModuleCtx* ctx, RedisModuleString** argv, int argc) noexcept;
int RefundCommand(RedisModuleCtx* ctx, RedisModuleString** argv, int argc) noexcept;
int ResetCommand(RedisModuleCtx* ctx, RedisModuleString** argv, int argc) noexcept;
int StatsCommand(RedisModuleCtx* ctx, RedisModuleString** argv, int argc) noexcept;
int StatsResetCommand(RedisModuleCtx* ctx, RedisModuleString** argv, int argc) noexcept;
int WindowCommand(RedisModuleCtx* ctx, RedisModuleString** argv, int argc) noexcept;
int QuotaCommand(RedisModuleCtx* ctx, RedisModuleString** argv, int argc) noexcept;
int ThrottleCommand(RedisModuleCtx* ctx, RedisModuleString** argv, int argc) noexcept;
int GcraCommand(RedisModuleCtx* ctx, RedisModuleString** argv, int argc) noexcept;
int LimitCommand(RedisModuleCtx* ctx, RedisModuleString** argv, int argc) noexcept;
int LimitRoCommand(RedisModuleCtx* ctx, RedisModuleString** argv, int argc) noexcept;
int SettleCommand(RedisModuleCtx* ctx, RedisModuleString** argv, int argc) noexcept;

// INFO shield; and at load, the names of the commands' counters (the command table's, in its
// order) and the cluster-bus receivers of SHIELD.stats CLUSTER.
void InfoCallback(RedisModuleInfoCtx* ctx, int for_crash_report) noexcept;
void SetUpStats(RedisModuleCtx* ctx, std::span<const std::string_view> command_counters) noexcept;

}  // namespace shield::glue
