// Bucket operations: a history decoded from the fuzz input (absorb, inspect, refund, absorb_multi
// over 2-3 buckets, reset, BURST, keys written by other clients or with other limits, and clock
// jumps forward, backward and huge, with limits up to int64) runs on the core, stored as Redis
// stores it, and on the model. After every step:
//   - every reply and every stored key is the model's (the contract makes all of them exact);
//   - each write lost less than one millisecond of refill (read back from the core);
//   - the tokens granted over any stretch never exceed the model's bound;
//   - retry_after_ms and reset_after_ms are exact on the core itself: waiting them succeeds
//     (is full), one millisecond less does not;
// and the sanitizers watch for undefined behaviour.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/bucket/bucket.hpp"
#include "core/bucket/bucket_args.hpp"
#include "core/common/int_parse.hpp"
#include "fuzz_common.hpp"
#include "model.hpp"

namespace shield_fuzz {
namespace {

using shield::BucketLimits;
using shield::BucketState;
using shield::Error;
using shield::StoredBucket;

// A key as the core's server holds it.
struct CoreKey {
  std::string value;
  int64_t expire_at_ms;  // shield::kNoExpiry: none
};

struct CoreReply {
  std::string_view error{};
  std::vector<int64_t> values{};
};

// The glue of src/module/bucket_commands.cpp over the core, with a map for Redis: the same parse,
// time check, read, decision, write and reply, in the same order.
class CoreServer {
 public:
  explicit CoreServer(int64_t now_ms) : now_ms_(now_ms) {}

  int64_t now_ms() const { return now_ms_; }
  void SetClock(int64_t now_ms) {
    now_ms_ = now_ms;
    Expire();
  }
  std::map<int, CoreKey>& keys() { return keys_; }

  CoreReply Absorb(int id, const std::vector<std::string_view>& args, bool inspect) {
    const shield::BucketArgs parsed = Parse(args, {.tokens_required = false, .verbose = true});
    if (parsed.error != Error::kNone) return {CoreErrorText(parsed.error)};
    StoredBucket stored{};
    if (const Error error = Open(id, stored); error != Error::kNone) {
      return {CoreErrorText(error)};
    }
    const auto decision = shield::Absorb(parsed.limits, stored, parsed.tokens, now_ms_);
    CheckState(parsed.limits, decision.before, "state before");
    if (decision.allowed && !inspect) {
      Write(id, parsed.limits, decision.after);
      CheckLoss(parsed.limits, Level(parsed.limits, decision.before) - Rational(parsed.tokens), id,
                "absorb");
    }
    if (parsed.verbose || inspect) {
      const auto values = shield::Verbose(parsed.limits, decision, parsed.tokens, decision.allowed);
      return {"", {values.begin(), values.end()}};
    }
    return {"", {shield::ReplyFor(decision)}};
  }

  CoreReply Refund(int id, const std::vector<std::string_view>& args) {
    const shield::BucketArgs parsed = Parse(args, {.tokens_required = true, .verbose = false});
    if (parsed.error != Error::kNone) return {CoreErrorText(parsed.error)};
    StoredBucket stored{};
    if (const Error error = Open(id, stored); error != Error::kNone) {
      return {CoreErrorText(error)};
    }
    const BucketState before = shield::StateAt(parsed.limits, stored, now_ms_);
    CheckState(parsed.limits, before, "state before refund");
    BucketState after = before;
    if (before.available < parsed.limits.max_tokens) {
      after = shield::Give(parsed.limits, before, parsed.tokens);
      Write(id, parsed.limits, after);
      const Rational max = Rational(parsed.limits.max_tokens);
      const Rational target = std::min(max, Level(parsed.limits, before) + Rational(parsed.tokens));
      CheckLoss(parsed.limits, target, id, "refund");
    }
    return {"", {after.available}};
  }

  struct Group {
    int id;
    std::array<std::string, 3> words;  // <capacity>[:<burst>] <period> <tokens>
  };

  CoreReply AbsorbMulti(const std::vector<Group>& groups, bool verbose) {
    struct Slot {
      shield::BucketArgs args;
      shield::AbsorbDecision decision{};
    };
    std::vector<Slot> slots(groups.size());
    for (std::size_t i = 0; i < groups.size(); ++i) {
      const auto& w = groups[i].words;
      slots[i].args = shield::ParseMultiBucket(w[0], w[1], w[2]);
      if (slots[i].args.error == Error::kNone) {
        slots[i].args.error = shield::CheckExpiry(slots[i].args, now_ms_);
      }
      if (slots[i].args.error != Error::kNone) return {CoreErrorText(slots[i].args.error)};
    }
    bool allowed = true;
    for (std::size_t i = 0; i < groups.size(); ++i) {
      StoredBucket stored{};
      if (const Error error = Open(groups[i].id, stored); error != Error::kNone) {
        return {CoreErrorText(error)};
      }
      const auto& args = slots[i].args;
      slots[i].decision = shield::Absorb(args.limits, stored, args.tokens, now_ms_);
      CheckState(args.limits, slots[i].decision.before, "multi state before");
      allowed = allowed && slots[i].decision.allowed;
    }
    if (allowed) {
      for (std::size_t i = 0; i < groups.size(); ++i) {
        const auto& args = slots[i].args;
        Write(groups[i].id, args.limits, slots[i].decision.after);
        CheckLoss(args.limits, Level(args.limits, slots[i].decision.before) - Rational(args.tokens),
                  groups[i].id, "absorb_multi");
      }
    }
    CoreReply reply{"", {}};
    for (const Slot& slot : slots) {
      if (verbose) {
        const auto values =
            shield::Verbose(slot.args.limits, slot.decision, slot.args.tokens, allowed);
        reply.values.insert(reply.values.end(), values.begin(), values.end());
      } else {
        const BucketState& now = allowed ? slot.decision.after : slot.decision.before;
        reply.values.push_back(slot.decision.allowed ? now.available : shield::kDeniedReply);
      }
    }
    return reply;
  }

  CoreReply Reset(int id) { return {"", {keys_.erase(id) > 0 ? 1 : 0}}; }

  // True when the bucket holds its maximum now (read with the limits of `args`).
  bool Full(int id, const std::vector<std::string_view>& args) const {
    const shield::BucketArgs parsed = Parse(args, {.tokens_required = false, .verbose = true});
    StoredBucket stored{};
    if (parsed.error != Error::kNone || Open(id, stored) != Error::kNone) return false;
    const BucketState state = shield::StateAt(parsed.limits, stored, now_ms_);
    return state.available == parsed.limits.max_tokens;
  }

 private:
  shield::BucketArgs Parse(const std::vector<std::string_view>& args,
                           const shield::BucketSyntax& syntax) const {
    shield::BucketArgs parsed = shield::ParseBucketArgs(args, syntax);
    if (parsed.error == Error::kNone) parsed.error = shield::CheckExpiry(parsed, now_ms_);
    return parsed;
  }

  // Redis deletes a key once the clock has passed its expiry.
  void Expire() {
    for (auto it = keys_.begin(); it != keys_.end();) {
      const int64_t expire = it->second.expire_at_ms;
      it = (expire != shield::kNoExpiry && now_ms_ > expire) ? keys_.erase(it) : std::next(it);
    }
  }

  Error Open(int id, StoredBucket& out) const {
    out = {0, shield::kNoExpiry};
    const auto it = keys_.find(id);
    if (it == keys_.end()) return Error::kNone;
    const auto tokens = shield::ParseStoredInt64(it->second.value);
    if (!tokens) return Error::kInvalidStored;
    out = {*tokens, it->second.expire_at_ms};
    return Error::kNone;
  }

  void Write(int id, const BucketLimits& limits, const BucketState& state) {
    const StoredBucket stored = shield::StoreAt(limits, state, now_ms_);
    char digits[shield::kInt64TextCapacity];
    const std::size_t len = shield::FormatInt64(stored.tokens, digits);
    Check(stored.expire_at_ms > now_ms_, "a write sets an expiry in the future");
    keys_[id] = CoreKey{std::string(digits, len), stored.expire_at_ms};
  }

  static Rational Level(const BucketLimits& limits, const BucketState& state) {
    return Rational(state.available) + Rational(Int(state.progress), Int(limits.period_ms));
  }

  static void CheckState(const BucketLimits& limits, const BucketState& state,
                         const std::string& what) {
    Check(state.available >= 0 && state.available <= limits.max_tokens, what + ": available");
    Check(state.progress >= 0 && state.progress < limits.period_ms, what + ": progress");
    Check(state.available < limits.max_tokens || state.progress == 0,
          what + ": a full bucket carries no refill");
    Check(state.stalled_ms >= 0, what + ": stall");
  }

  // What a write kept, read back at once, is what it should hold less under 1 ms of refill.
  void CheckLoss(const BucketLimits& limits, const Rational& intended, int id,
                 const std::string& what) const {
    StoredBucket stored{};
    Check(Open(id, stored) == Error::kNone, what + ": a written key reads back");
    const BucketState kept = shield::StateAt(limits, stored, now_ms_);
    const Rational loss = intended - Level(limits, kept);
    Check(loss >= 0, what + ": a write gained tokens");
    Check(loss < Rational(Int(limits.capacity), Int(limits.period_ms)),
          what + ": a write lost 1 ms of refill or more");
    Check(loss < 1, what + ": a write lost a whole token");
  }

  int64_t now_ms_;
  std::map<int, CoreKey> keys_;
};

// ---- The history ------------------------------------------------------------------------------

constexpr int kBuckets = 3;

// One T per bucket, indexed by the bucket's number.
template <typename T>
class PerBucket {
 public:
  T& operator[](int id) { return items_[static_cast<std::size_t>(id)]; }
  auto begin() { return items_.begin(); }
  auto end() { return items_.end(); }

 private:
  std::array<T, kBuckets> items_{};
};

struct BucketSpec {
  int64_t capacity;
  int64_t period_s;
  std::optional<int64_t> burst;
};

std::vector<std::string> OneBucketWords(const BucketSpec& spec, std::optional<int64_t> tokens,
                                        bool verbose) {
  std::vector<std::string> words = {Str(spec.capacity), Str(spec.period_s)};
  if (tokens) words.push_back(Str(*tokens));
  if (spec.burst) {
    words.emplace_back("BURST");
    words.push_back(Str(*spec.burst));
  }
  if (verbose) words.emplace_back("VERBOSE");
  return words;
}

BucketSpec ConsumeSpec(FuzzedDataProvider& fdp) {
  BucketSpec spec{};
  spec.capacity = fdp.ConsumeBool() ? Interesting(fdp, 1, 1000) : Interesting(fdp, 1, kInt64Max);
  // Up to a little past the largest period, so that its error is met too.
  spec.period_s = fdp.ConsumeBool() ? Interesting(fdp, 1, 3600)
                                    : Interesting(fdp, 1, shield::kMaxPeriodSeconds + 2);
  if (fdp.ConsumeBool()) {
    spec.burst = fdp.ConsumeBool() ? Interesting(fdp, 1, 1000) : Interesting(fdp, 1, kInt64Max);
  }
  return spec;
}

int64_t ConsumeTokens(FuzzedDataProvider& fdp, const BucketSpec& spec) {
  const int64_t max = spec.burst.value_or(spec.capacity);
  switch (fdp.ConsumeIntegralInRange<int>(0, 3)) {
    case 0:
      return 1;
    case 1:
      return Interesting(fdp, 1, std::min<int64_t>(max, 16));
    case 2:
      return Interesting(fdp, 1, max);
    default:
      return Interesting(fdp, 1, kInt64Max);
  }
}

void CompareReplies(const CoreReply& core, const shield_model::Reply& model,
                    const std::string& what) {
  std::string model_values;
  for (const auto& v : model.values) model_values += " " + Str(v);
  std::string core_values;
  for (const auto v : core.values) core_values += " " + Str(v);
  Trace().push_back("  -> core '" + std::string(core.error) + "'" + core_values + ", model '" +
                    std::string(model.error) + "'" + model_values);
  Check(core.error == model.error, what + ": the errors differ");
  Check(core.values.size() == model.values.size(), what + ": the replies differ in length");
  for (std::size_t i = 0; i < core.values.size(); ++i) {
    Check(Int(core.values[i]) == model.values[i], what + ": reply " + Str(int64_t(i)) + " differs");
  }
}

void CompareStores(CoreServer& core, shield_model::Server& model) {
  const auto& model_keys = model.store().keys();
  Check(core.keys().size() == model_keys.size(), "the stores hold different keys");
  for (const auto& [id, key] : core.keys()) {
    const auto it = model_keys.find(id);
    Check(it != model_keys.end(), "bucket " + Str(int64_t{id}) + " exists in the core only");
    Check(key.value == it->second.value, "bucket " + Str(int64_t{id}) + ": core stores '" +
                                             key.value + "', model '" + it->second.value + "'");
    const std::optional<Int> core_expiry =
        key.expire_at_ms == shield::kNoExpiry ? std::nullopt : std::optional<Int>(key.expire_at_ms);
    Check(core_expiry == it->second.expire_at_ms, "bucket " + Str(int64_t{id}) +
                                                      ": the expiries differ (core " +
                                                      Str(key.expire_at_ms) + ")");
  }
}

std::vector<std::string_view> Views(const std::vector<std::string>& words) {
  return {words.begin(), words.end()};
}

// On a copy of the core: the call at now + wait - 1 fails, at now + wait it succeeds (for
// `full`: the bucket is full).
template <typename Call>
void CheckWait(const CoreServer& core, int64_t wait, int64_t window_ms, Call succeeds,
               const std::string& what) {
  if (wait <= 0) return;
  const int64_t now = core.now_ms();
  if (wait > kInt64Max - now || now + wait > kInt64Max - window_ms) return;
  CoreServer sooner = core;
  sooner.SetClock(now + wait - 1);
  Check(!succeeds(sooner), what + ": one millisecond sooner is enough already");
  CoreServer later = core;
  later.SetClock(now + wait);
  Check(succeeds(later), what + ": waiting it is not enough");
}

struct History {
  explicit History(FuzzedDataProvider& fdp) : fdp(fdp) {}

  FuzzedDataProvider& fdp;
  PerBucket<BucketSpec> specs;
  PerBucket<std::optional<shield_model::GrantLedger>> ledgers;
  std::optional<CoreServer> core;
  std::optional<shield_model::Server> model;
  bool other_limits = false;  // a call with other limits than the bucket's: outside the ledger

  void Start() {
    for (int i = 0; i < kBuckets; ++i) {
      specs[i] = ConsumeSpec(fdp);
      const auto words = OneBucketWords(specs[i], std::nullopt, false);
      const auto parsed = shield_model::ParseBucketCall(Views(words), false, true);
      if (parsed.error.empty()) ledgers[i].emplace(parsed.limits);
      Trace().push_back("bucket " + Str(int64_t{i}) + ":" + Words(Views(words)));
    }
    const int64_t start = fdp.ConsumeBool() ? 1'700'000'000'000 : Interesting(fdp, 0, kInt64Max);
    core.emplace(start);
    model.emplace(Int(start));
    Trace().push_back("clock " + Str(start));
  }

  void SetClock(int64_t t) {
    const int64_t before = core->now_ms();
    Trace().push_back("clock " + Str(t) + " (" + (t >= before ? "+" : "") +
                      Str(Int(t) - Int(before)) + " ms)");
    if (t > before) {
      for (auto& ledger : ledgers) {
        if (ledger) ledger->ClockForward(Int(t) - Int(before));
      }
    }
    core->SetClock(t);
    model->SetClock(Int(t));
  }

  void Restart(int id) {
    if (ledgers[id]) ledgers[id]->Restart();
  }

  void Granted(int id, int64_t tokens) {
    if (!ledgers[id] || other_limits) return;
    Check(ledgers[id]->Granted(Int(tokens)),
          "bucket " + Str(int64_t{id}) + " granted more than max + refill + refunds");
  }

  void Absorb(int id, bool inspect) {
    const int64_t tokens = ConsumeTokens(fdp, specs[id]);
    const bool explicit_tokens = tokens != 1 || fdp.ConsumeBool();
    const bool verbose = !inspect && fdp.ConsumeBool();
    const auto words =
        OneBucketWords(specs[id], explicit_tokens ? std::optional(tokens) : std::nullopt, verbose);
    const auto args = Views(words);
    const std::string name = inspect ? "inspect" : "absorb";
    Trace().push_back(name + " " + Str(int64_t{id}) + Words(args));
    const CoreServer before = *core;
    const CoreReply reply = core->Absorb(id, args, inspect);
    const auto parsed = shield_model::ParseBucketCall(args, false, true);
    CompareReplies(reply, model->Absorb(id, parsed, !inspect, verbose), name);
    if (!reply.error.empty()) return;
    const bool allowed = (verbose || inspect) ? reply.values[0] == 1 : reply.values[0] >= 0;
    if (allowed && !inspect) Granted(id, tokens);
    if (verbose || inspect) {
      const int64_t window = parsed.limits.window_ms.convert_to<int64_t>();
      // retry_after_ms: the same call, on the bucket as it was.
      CheckWait(
          before, reply.values[4], window,
          [&](CoreServer& s) {
            const auto again = s.Absorb(id, args, true);
            return again.error.empty() && again.values[0] == 1;
          },
          "retry_after_ms");
      // reset_after_ms: the bucket as the call left it is full then (inspect's is that of the
      // absorb it previews, which the model checks).
      if (!inspect) {
        CheckWait(
            *core, reply.values[5], window, [&](CoreServer& s) { return s.Full(id, args); },
            "reset_after_ms");
      }
    }
    CompareStores(*core, *model);
  }

  void Refund(int id) {
    const int64_t tokens = ConsumeTokens(fdp, specs[id]);
    const auto words = OneBucketWords(specs[id], tokens, false);
    const auto args = Views(words);
    Trace().push_back("refund " + Str(int64_t{id}) + Words(args));
    const CoreReply reply = core->Refund(id, args);
    Rational given = 0;
    const auto parsed = shield_model::ParseBucketCall(args, true, false);
    CompareReplies(reply, model->Refund(id, parsed, &given), "refund");
    if (ledgers[id]) ledgers[id]->Refunded(given);
    CompareStores(*core, *model);
  }

  void AbsorbMulti() {
    std::array<int, kBuckets> order = {0, 1, 2};
    if (fdp.ConsumeBool()) std::swap(order[0], order[1]);
    if (fdp.ConsumeBool()) std::swap(order[1], order[2]);
    if (fdp.ConsumeBool()) std::swap(order[0], order[2]);
    const auto count = fdp.ConsumeIntegralInRange<std::size_t>(2, kBuckets);
    const bool verbose = fdp.ConsumeBool();
    std::vector<CoreServer::Group> groups;
    std::vector<shield_model::Server::Group> model_groups;
    std::vector<int64_t> tokens;
    std::string line = "absorb_multi";
    for (std::size_t i = 0; i < count; ++i) {
      const int id = order[i];
      const BucketSpec& spec = specs[id];
      tokens.push_back(ConsumeTokens(fdp, spec));
      CoreServer::Group group{id,
                              {Str(spec.capacity) + (spec.burst ? ":" + Str(*spec.burst) : ""),
                               Str(spec.period_s), Str(tokens.back())}};
      line += " " + Str(int64_t{id}) + " " + group.words[0] + " " + group.words[1] + " " +
              group.words[2];
      model_groups.push_back(
          {id, shield_model::ParseMultiGroup(group.words[0], group.words[1], group.words[2])});
      groups.push_back(std::move(group));
    }
    Trace().push_back(line + (verbose ? " VERBOSE" : ""));
    const CoreServer before = *core;
    const CoreReply reply = core->AbsorbMulti(groups, verbose);
    CompareReplies(reply, model->AbsorbMulti(model_groups, verbose), "absorb_multi");
    if (reply.error.empty()) {
      const bool allowed = verbose ? reply.values[0] == 1
                                   : std::all_of(reply.values.begin(), reply.values.end(),
                                                 [](int64_t v) { return v >= 0; });
      if (allowed) {
        for (std::size_t i = 0; i < count; ++i) Granted(groups[i].id, tokens[i]);
      }
      if (verbose && !allowed) {
        // The call succeeds after the largest retry_after_ms of the array, not sooner.
        int64_t wait = 0;
        int64_t window = 0;
        bool never = false;
        for (std::size_t i = 0; i < count; ++i) {
          const int64_t retry = reply.values[6 * i + 4];
          never = never || retry < 0;
          wait = std::max(wait, retry);
          window = std::max(window, model_groups[i].parsed.limits.window_ms.convert_to<int64_t>());
        }
        if (!never) {
          CheckWait(
              before, wait, window,
              [&](CoreServer& s) {
                const auto again = s.AbsorbMulti(groups, true);
                return again.error.empty() && again.values[0] == 1;
              },
              "absorb_multi retry_after_ms");
        }
      }
    }
    CompareStores(*core, *model);
  }

  // A client writes the key itself (SET key value [PXAT expire]): any count, any string, any
  // expiry.
  void ForeignWrite(int id) {
    std::string value;
    switch (fdp.ConsumeIntegralInRange<int>(0, 3)) {
      case 0:
        value = Str(Interesting(fdp, 0, specs[id].burst.value_or(specs[id].capacity)));
        break;
      case 1:
        value = Str(Interesting(fdp, std::numeric_limits<int64_t>::min(), kInt64Max));
        break;
      case 2:
        value = (fdp.ConsumeBool() ? "+0" : "-00") + Str(Interesting(fdp, 0, kInt64Max));
        break;
      default:
        value = fdp.ConsumeRandomLengthString(8);
    }
    int64_t expire = shield::kNoExpiry;
    const int64_t now = core->now_ms();
    switch (fdp.ConsumeIntegralInRange<int>(0, 3)) {
      case 0:
        break;
      case 1:
        expire = Interesting(fdp, now, now + std::min(kInt64Max - now, int64_t{10'000'000}));
        break;
      case 2:
        expire = Interesting(fdp, now, kInt64Max);
        break;
      default:
        expire = Interesting(fdp, 0, now);
    }
    Trace().push_back("SET " + Str(int64_t{id}) + Words({value}) +
                      (expire == shield::kNoExpiry ? "" : " PXAT " + Str(expire)));
    // SET ... PXAT in the past deletes the key.
    if (expire != shield::kNoExpiry && expire <= now) {
      core->keys().erase(id);
      model->store().Delete(id);
    } else {
      core->keys()[id] = CoreKey{value, expire};
      model->store().Set(
          id, {value, expire == shield::kNoExpiry ? std::nullopt : std::optional<Int>(expire)});
    }
    Restart(id);
    CompareStores(*core, *model);
  }

  // A call with other limits on the same key, as another client of the bucket might make.
  void OtherLimits(int id) {
    const BucketSpec saved = specs[id];
    specs[id] = ConsumeSpec(fdp);
    Trace().push_back("(other limits)");
    other_limits = true;
    Absorb(id, false);
    other_limits = false;
    specs[id] = saved;
    Restart(id);
  }

  void Reset(int id) {
    Trace().push_back("reset " + Str(int64_t{id}));
    CompareReplies(core->Reset(id), model->Reset(id), "reset");
    Restart(id);
    CompareStores(*core, *model);
  }

  void MoveClock() {
    const int64_t now = core->now_ms();
    const int id = fdp.ConsumeIntegralInRange<int>(0, kBuckets - 1);
    const int64_t period_ms = std::min(specs[id].period_s, shield::kMaxPeriodSeconds) * 1000;
    switch (fdp.ConsumeIntegralInRange<int>(0, 5)) {
      case 0:  // a few milliseconds
        SetClock(now + std::min(kInt64Max - now, fdp.ConsumeIntegralInRange<int64_t>(0, 1000)));
        break;
      case 1: {  // a fraction of a period
        const int64_t step = period_ms / fdp.ConsumeIntegralInRange<int64_t>(1, 16) +
                             fdp.ConsumeIntegralInRange<int64_t>(-2, 2);
        SetClock(now + std::clamp<int64_t>(step, 0, kInt64Max - now));
        break;
      }
      case 2:  // anywhere ahead, up to the end of time
        SetClock(Interesting(fdp, now, kInt64Max));
        break;
      case 3:  // a little back
        SetClock(now - std::min(now, fdp.ConsumeIntegralInRange<int64_t>(0, 2000)));
        break;
      case 4:  // a fraction of a period back
        SetClock(now - std::min(now, period_ms / fdp.ConsumeIntegralInRange<int64_t>(1, 16)));
        break;
      default:  // anywhere behind
        SetClock(Interesting(fdp, 0, now));
    }
    CompareStores(*core, *model);
  }

  void Step() {
    const int id = fdp.ConsumeIntegralInRange<int>(0, kBuckets - 1);
    switch (fdp.ConsumeIntegralInRange<int>(0, 10)) {
      case 0:
      case 1:
        Absorb(id, false);
        break;
      case 2:
        Absorb(id, true);
        break;
      case 3:
        Refund(id);
        break;
      case 4:
        AbsorbMulti();
        break;
      case 5:
      case 6:
        MoveClock();
        break;
      case 7:
        ForeignWrite(id);
        break;
      case 8:
        OtherLimits(id);
        break;
      case 9:
        Reset(id);
        break;
      default:
        MoveClock();
        Absorb(id, false);
    }
  }
};

}  // namespace
}  // namespace shield_fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shield_fuzz;
  FuzzedDataProvider fdp(data, size);
  Trace().clear();
  try {
    History history(fdp);
    history.Start();
    for (int step = 0; step < 64 && fdp.remaining_bytes() > 0; ++step) history.Step();
  } catch (const shield_model::ModelBroken& broken) {
    Fail(std::string("the model broke its own contract: ") + broken.what());
  }
  return 0;
}
