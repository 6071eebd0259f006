// WAIT's queues (wait.hpp). One queue per key with waiters: its waiters in arrival order, the plan
// of their grants (core/wait/wait.hpp) and one timer at the first waiter's grant. The plan starts
// from what the key held when it was made (the basis); whenever the key holds something else (a
// write by another command, a deletion, FLUSHALL), the plan is made again from the key as it is.
// A grant decides again at its own instant and is carried out like a plain call's; the blocked
// client gets its reply from the server at the end of that event loop iteration (OnReply).
//
// The server's own blocking timeout is not used: a grant (RedisModule_UnblockClient from the
// timer) and the server's timeout falling in one iteration would leave Redis 7.0's client
// without any reply. Each waiter's deadline is kept here instead: a call is queued only when its
// grant falls within its WAIT, and a plan that moves a grant past a deadline refuses that call at
// once. The timeout callback serves CLIENT UNBLOCK <id> TIMEOUT.
#include "module/wait.hpp"

#include <sys/time.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <new>
#include <string_view>

namespace shield::glue {

size_t waiters_total = 0;

namespace {

// The bounds (module configuration shield.wait-max-per-key and shield.wait-max-total). A waiter
// costs the server 32 to 36 KB (the reply client RedisModule_BlockClient allocates for each
// blocked client; Shield's own part is a few hundred bytes: docs/commands.md, WAIT), so the
// default for the node is 10,000 waiters, about 350 MB.
constexpr long long kDefaultMaxPerKey = 1000;
constexpr long long kDefaultMaxTotal = 10'000;
constexpr long long kMaxConfigured = 1'000'000'000;
long long max_per_key = kDefaultMaxPerKey;
long long max_total = kDefaultMaxTotal;

// How often a queue whose grant is due looks again while the server pauses writes (CLIENT PAUSE
// WRITE, FAILOVER): the pause ends by its timeout or CLIENT UNPAUSE with no event a module hears,
// and 10 ms keeps a grant at most that late after it while costing one timer call per queue each
// time.
constexpr int64_t kPausedPollMs = 10;

// How a waiting call ended; OnReply replies accordingly.
enum class Ending : uint8_t { kWaiting, kGranted, kRefused, kError, kGone };

struct Queue;

struct Waiter {
  Waiter* prev = nullptr;  // in its queue
  Waiter* next = nullptr;
  Queue* queue = nullptr;
  RedisModuleBlockedClient* client = nullptr;
  wait::Request request{};
  bool verbose = false;
  Ending ending = Ending::kWaiting;
  Error error = Error::kNone;
  int64_t arrived_ns = 0;
  int64_t deadline_ns = 0;
  int64_t grant_at_ns = 0;  // as planned
  int64_t reply = kDeniedReply;
  VerboseValues values{};
};

struct Queue {
  Queue* prev = nullptr;  // in all_queues
  Queue* next = nullptr;
  RedisModuleString* name = nullptr;
  int db = 0;
  Waiter* head = nullptr;
  Waiter* last = nullptr;
  size_t count = 0;
  wait::Snapshot basis{};  // what the key held when the plan was made
  int64_t origin_ns = 0;   // the instant of the basis: no grant of the plan comes before it
  wait::Snapshot tail{};   // what the key holds after every waiter's grant
  int64_t tail_ns = 0;     // the last waiter's grant
  RedisModuleTimerID timer = 0;
  bool timer_running = false;
  bool paused = false;  // a grant came due while the server paused writes
};

RedisModuleDict* queues_by_key = nullptr;      // <db><key name> -> Queue
RedisModuleDict* waiters_by_client = nullptr;  // blocked client handle -> Waiter
Queue* all_queues = nullptr;

// The wall clock, which the server's timers also follow.
int64_t RealNowNs() noexcept {
  timeval now{};
  gettimeofday(&now, nullptr);
  return static_cast<int64_t>(now.tv_sec) * kNanosPerSecond +
         static_cast<int64_t>(now.tv_usec) * kNanosPerMicro;
}

// A queue's key in queues_by_key: the database number, then the key's name.
class QueueKey {
 public:
  // inline_ is raw storage on purpose: only the bytes the key needs are written.
  // cppcheck-suppress uninitMemberVar
  QueueKey(int db, std::string_view name) noexcept
      : size_(sizeof(int32_t) + name.size()),
        data_(size_ <= sizeof inline_ ? inline_ : static_cast<char*>(RedisModule_Alloc(size_))) {
    const auto db32 = static_cast<int32_t>(db);
    std::memcpy(data_, &db32, sizeof db32);
    std::memcpy(data_ + sizeof db32, name.data(), name.size());
  }
  ~QueueKey() {
    if (data_ != inline_) RedisModule_Free(data_);
  }
  QueueKey(const QueueKey&) = delete;
  QueueKey& operator=(const QueueKey&) = delete;
  char* data() noexcept { return data_; }
  size_t size() const noexcept { return size_; }

 private:
  char inline_[128];
  size_t size_;
  char* data_;
};

Queue* FindQueue(int db, RedisModuleString* name) noexcept {
  QueueKey key(db, View(name));
  void* found = RedisModule_DictGetC(queues_by_key, key.data(), key.size(), nullptr);
  return static_cast<Queue*>(found);
}

Queue* NewQueue(int db, RedisModuleString* name) noexcept {
  auto* queue = static_cast<Queue*>(RedisModule_Alloc(sizeof(Queue)));
  new (queue) Queue();
  queue->db = db;
  queue->name = RedisModule_CreateStringFromString(nullptr, name);
  QueueKey key(db, View(name));
  RedisModule_DictSetC(queues_by_key, key.data(), key.size(), queue);
  queue->next = all_queues;
  if (all_queues != nullptr) all_queues->prev = queue;
  all_queues = queue;
  return queue;
}

void DestroyQueue(RedisModuleCtx* ctx, Queue* queue) noexcept {
  if (queue->timer_running) RedisModule_StopTimer(ctx, queue->timer, nullptr);
  QueueKey key(queue->db, View(queue->name));
  RedisModule_DictDelC(queues_by_key, key.data(), key.size(), nullptr);
  if (queue->prev != nullptr) queue->prev->next = queue->next;
  if (queue->next != nullptr) queue->next->prev = queue->prev;
  if (all_queues == queue) all_queues = queue->next;
  RedisModule_FreeString(nullptr, queue->name);
  queue->~Queue();
  RedisModule_Free(queue);
}

// A blocked client's key in waiters_by_client: its handle's address, in this one place that the
// dictionary reads and copies it from.
uintptr_t client_key = 0;

void* ClientKey(const RedisModuleBlockedClient* client) noexcept {
  client_key = reinterpret_cast<uintptr_t>(client);
  return &client_key;
}

Waiter* FindWaiter(const RedisModuleBlockedClient* client) noexcept {
  void* found =
      RedisModule_DictGetC(waiters_by_client, ClientKey(client), sizeof client_key, nullptr);
  return static_cast<Waiter*>(found);
}

void Append(Queue* queue, Waiter* waiter) noexcept {
  waiter->queue = queue;
  waiter->prev = queue->last;
  if (queue->last != nullptr) queue->last->next = waiter;
  if (queue->head == nullptr) queue->head = waiter;
  queue->last = waiter;
  ++queue->count;
  ++waiters_total;
  RedisModule_DictSetC(waiters_by_client, ClientKey(waiter->client), sizeof client_key, waiter);
}

// Takes a waiter out of its queue and the client map, and counts its wait.
void Detach(Waiter* waiter, int64_t now_ns) noexcept {
  Queue* queue = waiter->queue;
  if (waiter->prev != nullptr) waiter->prev->next = waiter->next;
  if (waiter->next != nullptr) waiter->next->prev = waiter->prev;
  if (queue->head == waiter) queue->head = waiter->next;
  if (queue->last == waiter) queue->last = waiter->prev;
  --queue->count;
  --waiters_total;
  waiter->queue = nullptr;
  waiter->prev = waiter->next = nullptr;
  RedisModule_DictDelC(waiters_by_client, ClientKey(waiter->client), sizeof client_key, nullptr);
  if (now_ns > waiter->arrived_ns) {
    counters.Add(Counter::kWaitTimeMs,
                 static_cast<uint64_t>((now_ns - waiter->arrived_ns) / kNanosPerMilli));
  }
}

// Ends a waiting call: out of its queue, counted, and handed back to the server, which replies
// through OnReply (unless the client is gone) and frees it through OnFree.
void Finish(Waiter* waiter, Ending ending, int64_t now_ns) noexcept {
  waiter->ending = ending;
  Detach(waiter, now_ns);
  const auto tokens = static_cast<uint64_t>(waiter->request.tokens);
  switch (ending) {
    case Ending::kGranted:
      counters.Add(Counter::kGrantedAfterWait);
      CountDecision(true, tokens);
      break;
    case Ending::kRefused:
      counters.Add(Counter::kWaitTimeouts);
      CountDecision(false, tokens);
      break;
    case Ending::kWaiting:
    case Ending::kError:
    case Ending::kGone:
      break;
  }
  RedisModule_UnblockClient(waiter->client, waiter);
}

// The VERBOSE map of a refused take on a key holding `stored` at `now_ns`, whose wait is
// `retry_ms` (kNever: no wait helps).
VerboseValues RefusedValues(const wait::Request& request, const StoredValue& stored, int64_t now_ns,
                            int64_t retry_ms) noexcept {
  const Outcome peek = wait::DecideAt(request, stored, Operation::kPeek, now_ns, Detail::kFull);
  VerboseValues values = VerboseOf(peek, false, retry_ms);
  values[kVerboseRetryAfter] = retry_ms;
  return values;
}

void Refuse(Waiter* waiter, const StoredValue& stored, int64_t retry_ms, int64_t now_ns) noexcept {
  waiter->reply = kDeniedReply;
  if (waiter->verbose) waiter->values = RefusedValues(waiter->request, stored, now_ns, retry_ms);
  Finish(waiter, Ending::kRefused, now_ns);
}

// Plans every waiter's grant again, from the basis at its origin, in arrival order: each at the
// earliest instant its tokens are there once every earlier waiter has taken its own, never
// before it arrived. A waiter whose grant would come after its deadline (or never) is refused
// now; one whose key holds what its algorithm cannot read gets that error.
void Replan(Queue* queue, int64_t now_ns) noexcept {
  wait::Snapshot state = queue->basis;
  int64_t at_ns = queue->origin_ns;
  for (Waiter* waiter = queue->head; waiter != nullptr;) {
    Waiter* next = waiter->next;
    const wait::Grant grant =
        wait::EarliestGrant(waiter->request, state.View(), std::max(at_ns, waiter->arrived_ns));
    if (grant.error != Error::kNone) {
      waiter->error = grant.error;
      Finish(waiter, Ending::kError, now_ns);
    } else if (grant.never || grant.at_ns > waiter->deadline_ns) {
      Refuse(waiter, queue->basis.View(), grant.never ? kNever : wait::WaitMs(grant.at_ns, now_ns),
             now_ns);
    } else {
      waiter->grant_at_ns = grant.at_ns;
      state.Apply(grant.outcome);
      at_ns = grant.at_ns;
    }
    waiter = next;
  }
  queue->tail = state;
  queue->tail_ns = at_ns;
}

void OnTimer(RedisModuleCtx* ctx, void* data) noexcept;

// Arms the queue's timer at its first waiter's grant, or frees the queue when nobody waits any
// more. False when the queue was freed.
bool Schedule(RedisModuleCtx* ctx, Queue* queue) noexcept {
  if (queue->timer_running) RedisModule_StopTimer(ctx, queue->timer, nullptr);
  queue->timer_running = false;
  if (queue->head == nullptr) {
    DestroyQueue(ctx, queue);
    return false;
  }
  const int64_t delay_ms =
      queue->paused ? kPausedPollMs : wait::WaitMs(queue->head->grant_at_ns, RealNowNs());
  queue->timer = RedisModule_CreateTimer(ctx, delay_ms, OnTimer, queue);
  queue->timer_running = true;
  return true;
}

// The error of a key whose value is longer than any the algorithm writes.
Error UnreadableError(const wait::Request& request) noexcept {
  return request.algorithm == wait::Algorithm::kBucket ? Error::kInvalidStored
                                                       : Error::kGcraInvalidStored;
}

// True when the server holds more than maxmemory: the server refuses a deny-oom command then
// (with noeviction, or when nothing more can be evicted), and a grant is such a command's write.
bool OverMaxmemory() noexcept {
  return RMAPI_FUNC_SUPPORTED(RedisModule_GetUsedMemoryRatio) &&
         RedisModule_GetUsedMemoryRatio() > 1.0F;
}

// True while the server pauses writes (CLIENT PAUSE WRITE or ALL, FAILOVER): it must then send
// nothing to its replicas (the servers assert it, and abort), so no grant may write.
bool WritesPaused() noexcept {
  return RedisModule_AvoidReplicaTraffic() != 0;
}

// While writes are paused: refuses the waiters whose deadline has passed (as a plain call would
// have waited for the pause to end, past its WAIT) and writes nothing; the others wait for the
// pause to end. The queue then looks again every kPausedPollMs.
void HoldWhilePaused(RedisModuleCtx* ctx, Queue* queue, int64_t now_ns) noexcept {
  queue->paused = true;
  // The key is read only for a late waiter's reply, so a poll with none opens nothing.
  StringKey key;
  StoredValue stored;
  bool opened = false;
  for (Waiter* waiter = queue->head; waiter != nullptr;) {
    Waiter* next = waiter->next;
    if (waiter->deadline_ns < now_ns) {
      if (!opened && OpenStored(ctx, queue->name, key, stored, true) != Error::kNone) stored = {};
      opened = true;
      Refuse(waiter, stored, 0, now_ns);
    }
    waiter = next;
  }
}

// In cluster mode: true when the server would serve a plain call on `name` here now. A grant
// writes only then, so it never writes a key of a slot this node does not serve, nor a key that a
// reshard moved away. RedisModule_Call applies the server's own routing to what it runs (every
// server of the matrix): it refuses a key of a slot served by another node or by none, a key
// missing from a slot that migrates away (where the server answers ASK), a slot being imported
// (the timer's client never sent ASKING), and any key while the cluster is down. EXISTS asks
// exactly that and changes nothing but what any read would (an expired key is deleted).
bool KeyServedHere(RedisModuleCtx* ctx, RedisModuleString* name) noexcept {
  RedisModuleCallReply* reply = RedisModule_Call(ctx, "EXISTS", "s", name);
  if (reply == nullptr) return false;
  RedisModule_FreeCallReply(reply);
  return true;
}

// Grants every waiter whose time has come, in order, each decided again at its planned instant
// on the key as it is, and carried out like a plain call (propagated as SET ... PXAT). Over
// maxmemory, a due waiter gets the server's OOM error instead, as the plain call would, and the
// waiters behind it are planned again without its take. In cluster mode, the waiters of a key that
// this node does not serve now (KeyServedHere) get Error::kWaitMoved, and nothing is written.
void GrantDue(RedisModuleCtx* ctx, Queue* queue, int64_t now_ns, bool cluster) noexcept {
  if (WritesPaused()) {
    HoldWhilePaused(ctx, queue, now_ns);
    return;
  }
  if (queue->paused) {
    // The pause ended: the grants held by it come now, not at the instants they had.
    queue->paused = false;
    queue->origin_ns = std::max(queue->origin_ns, now_ns);
    Replan(queue, now_ns);
  }
  bool fresh = false;  // the plan was just made from the key as it is
  bool refused_for_memory = false;
  while (queue->head != nullptr) {
    Waiter* waiter = queue->head;
    // Before the key is opened: the check may delete an expired key.
    if (cluster && !KeyServedHere(ctx, queue->name)) {
      waiter->error = Error::kWaitMoved;
      Finish(waiter, Ending::kError, now_ns);
      continue;
    }
    StringKey key;
    StoredValue stored;
    if (const Error error = OpenStored(ctx, queue->name, key, stored, true);
        error != Error::kNone) {
      waiter->error = error;
      Finish(waiter, Ending::kError, now_ns);
      continue;
    }
    const wait::Snapshot real = wait::Snapshot::Of(stored);
    if (!real.fits) {
      waiter->error = UnreadableError(waiter->request);
      Finish(waiter, Ending::kError, now_ns);
      continue;
    }
    if (!queue->basis.SameAs(real, now_ns / kNanosPerMilli)) {
      queue->basis = real;
      queue->origin_ns = now_ns;
      Replan(queue, now_ns);
      fresh = true;
      continue;
    }
    if (waiter->grant_at_ns > now_ns) break;
    if (OverMaxmemory()) {
      waiter->error = Error::kWaitOom;
      Finish(waiter, Ending::kError, now_ns);
      refused_for_memory = true;
      continue;
    }
    const Outcome outcome =
        wait::DecideAt(waiter->request, stored, Operation::kTake, waiter->grant_at_ns,
                       waiter->verbose ? Detail::kFull : Detail::kReply);
    if (outcome.error != Error::kNone) {
      waiter->error = outcome.error;
      Finish(waiter, Ending::kError, now_ns);
      continue;
    }
    if (!outcome.allowed) {
      // Only a plan made from another value can be wrong here; a fresh one that still is would
      // loop, so its first waiter is refused.
      if (fresh) {
        Refuse(waiter, stored, kNever, now_ns);
      } else {
        queue->basis = real;
        queue->origin_ns = now_ns;
        Replan(queue, now_ns);
        fresh = true;
      }
      continue;
    }
    if (const Error error = CarryOut(ctx, key, outcome); error != Error::kNone) {
      waiter->error = error;
      Finish(waiter, Ending::kError, now_ns);
      continue;
    }
    queue->basis.Apply(outcome);
    queue->origin_ns = waiter->grant_at_ns;
    waiter->reply = outcome.reply;
    if (waiter->verbose) waiter->values = VerboseOf(outcome);
    Finish(waiter, Ending::kGranted, now_ns);
    fresh = false;
  }
  if (refused_for_memory) Replan(queue, now_ns);
}

void OnTimer(RedisModuleCtx* ctx, void* data) noexcept {
  auto* queue = static_cast<Queue*>(data);
  queue->timer_running = false;
  const int64_t now_ns = RealNowNs();
  const int flags = RedisModule_GetContextFlags(ctx);
  if ((flags & REDISMODULE_CTX_FLAGS_MASTER) == 0) {
    // No longer a primary (the server unblocks its blocked clients itself when it turns replica;
    // this is the guard): nothing is written.
    while (queue->head != nullptr) {
      queue->head->error = Error::kWaitReadonly;
      Finish(queue->head, Ending::kError, now_ns);
    }
  } else {
    RedisModule_SelectDb(ctx, queue->db);
    GrantDue(ctx, queue, now_ns, (flags & REDISMODULE_CTX_FLAGS_CLUSTER) != 0);
  }
  Schedule(ctx, queue);
}

int ReplyEnding(RedisModuleCtx* ctx, const Waiter& waiter) noexcept {
  if (waiter.ending == Ending::kError) return ReplyError(ctx, waiter.error);
  if (waiter.verbose) {
    ReplyVerbose(ctx, waiter.values);
    return REDISMODULE_OK;
  }
  return RedisModule_ReplyWithLongLong(ctx, waiter.reply);
}

int OnReply(RedisModuleCtx* ctx, RedisModuleString** /*argv*/, int /*argc*/) noexcept {
  const auto* waiter = static_cast<const Waiter*>(RedisModule_GetBlockedClientPrivateData(ctx));
  return ReplyEnding(ctx, *waiter);
}

// CLIENT UNBLOCK <id> [TIMEOUT]: the call is refused with the wait it still had; the waiters
// behind it move up.
int OnTimeout(RedisModuleCtx* ctx, RedisModuleString** /*argv*/, int /*argc*/) noexcept {
  Waiter* waiter = FindWaiter(RedisModule_GetBlockedClientHandle(ctx));
  if (waiter == nullptr) return RedisModule_ReplyWithLongLong(ctx, kDeniedReply);
  Queue* queue = waiter->queue;
  const int64_t now_ns = RealNowNs();
  const int64_t retry_ms = wait::WaitMs(waiter->grant_at_ns, now_ns);
  {
    StringKey key;
    StoredValue stored;
    if (OpenStored(ctx, queue->name, key, stored, true) != Error::kNone) stored = {};
    Refuse(waiter, stored, retry_ms, now_ns);
  }
  Replan(queue, now_ns);
  Schedule(ctx, queue);
  return ReplyEnding(ctx, *waiter);
}

// The client disconnected, was killed, was unblocked with CLIENT UNBLOCK <id> ERROR, or the
// server turned replica: its place is freed, nothing was taken, the waiters behind it move up.
void OnDisconnect(RedisModuleCtx* ctx, RedisModuleBlockedClient* client) noexcept {
  Waiter* waiter = FindWaiter(client);
  if (waiter == nullptr) return;  // already granted or refused
  Queue* queue = waiter->queue;
  const int64_t now_ns = RealNowNs();
  Finish(waiter, Ending::kGone, now_ns);
  Replan(queue, now_ns);
  Schedule(ctx, queue);
}

void OnFree(RedisModuleCtx* /*ctx*/, void* data) noexcept {
  auto* waiter = static_cast<Waiter*>(data);
  waiter->~Waiter();
  RedisModule_Free(waiter);
}

// FLUSHALL and FLUSHDB: every queue of the flushed databases plans again from its (now missing)
// key at once.
void OnFlush(RedisModuleCtx* ctx, RedisModuleEvent /*event*/, uint64_t subevent,
             void* data) noexcept {
  if (subevent != REDISMODULE_SUBEVENT_FLUSHDB_END) return;
  const auto* info = static_cast<const RedisModuleFlushInfo*>(data);
  for (Queue* queue = all_queues; queue != nullptr; queue = queue->next) {
    if (info->dbnum != -1 && info->dbnum != queue->db) continue;
    if (queue->timer_running) RedisModule_StopTimer(ctx, queue->timer, nullptr);
    queue->timer = RedisModule_CreateTimer(ctx, 0, OnTimer, queue);
    queue->timer_running = true;
  }
}

long long GetBound(const char* /*name*/, void* privdata) noexcept {
  return *static_cast<long long*>(privdata);
}

int SetBound(const char* /*name*/, long long value, void* privdata,
             RedisModuleString** /*err*/) noexcept {
  *static_cast<long long*>(privdata) = value;
  return REDISMODULE_OK;
}

// True when one more waiter fits on `queue` (nullptr: a new queue) and on the node.
bool Room(const Queue* queue) noexcept {
  const auto count = static_cast<long long>(queue != nullptr ? queue->count : 0);
  return count < max_per_key && static_cast<long long>(waiters_total) < max_total;
}

void Block(RedisModuleCtx* ctx, Queue* queue, const wait::Request& request, bool verbose,
           int64_t now_ns, int64_t deadline_ns, const wait::Grant& grant) noexcept {
  auto* waiter = static_cast<Waiter*>(RedisModule_Alloc(sizeof(Waiter)));
  new (waiter) Waiter();
  waiter->request = request;
  waiter->verbose = verbose;
  waiter->arrived_ns = now_ns;
  waiter->deadline_ns = deadline_ns;
  waiter->grant_at_ns = grant.at_ns;
  waiter->client = RedisModule_BlockClient(ctx, OnReply, OnTimeout, OnFree, 0);
  RedisModule_SetDisconnectCallback(waiter->client, OnDisconnect);
  Append(queue, waiter);
  queue->tail.Apply(grant.outcome);
  queue->tail_ns = grant.at_ns;
  counters.Add(Counter::kWaited);
}

int ReplyRefused(RedisModuleCtx* ctx, const wait::Request& request, bool verbose,
                 const StoredValue& stored, int64_t now_ns, int64_t retry_ms) noexcept {
  CountDecision(false, static_cast<uint64_t>(request.tokens));
  if (!verbose) return RedisModule_ReplyWithLongLong(ctx, kDeniedReply);
  ReplyVerbose(ctx, RefusedValues(request, stored, now_ns, retry_ms));
  return REDISMODULE_OK;
}

}  // namespace

int WaitCall(RedisModuleCtx* ctx, RedisModuleString* name, const wait::Request& request,
             bool verbose, int64_t wait_ms, int64_t now_ns) noexcept {
  const int flags = RedisModule_GetContextFlags(ctx);
  // Inside MULTI, a script or any context that cannot block, WAIT is WAIT 0.
  const bool can_block =
      wait_ms > 0 && (flags & (REDISMODULE_CTX_FLAGS_MULTI | REDISMODULE_CTX_FLAGS_LUA |
                               REDISMODULE_CTX_FLAGS_DENY_BLOCKING)) == 0;
  const int64_t deadline_ns = now_ns + std::max<int64_t>(wait_ms, 0) * kNanosPerMilli;
  const int db = RedisModule_GetSelectedDb(ctx);
  Queue* queue = waiters_total != 0 ? FindQueue(db, name) : nullptr;

  StringKey key;
  StoredValue stored;
  if (const Error error = OpenStored(ctx, name, key, stored, true); error != Error::kNone) {
    return ReplyError(ctx, error);
  }
  const wait::Snapshot real = wait::Snapshot::Of(stored);
  if (queue != nullptr && !queue->basis.SameAs(real, now_ns / kNanosPerMilli)) {
    // Another command changed the key: plan the queue again from what it holds.
    queue->basis = real;
    queue->origin_ns = now_ns;
    Replan(queue, now_ns);
    if (!Schedule(ctx, queue)) queue = nullptr;
  }

  if (queue == nullptr) {
    // Nobody waits on this key: a plain call, unless it must wait and may.
    const wait::Grant grant = wait::EarliestGrant(request, stored, now_ns);
    if (grant.error != Error::kNone) return ReplyError(ctx, grant.error);
    if (!grant.never && grant.at_ns <= now_ns) {
      if (const Error error = CarryOut(ctx, key, grant.outcome); error != Error::kNone) {
        return ReplyError(ctx, error);
      }
      CountDecision(true, static_cast<uint64_t>(request.tokens));
      return ReplyOutcome(ctx, grant.outcome, verbose);
    }
    const int64_t retry_ms = grant.never ? kNever : wait::WaitMs(grant.at_ns, now_ns);
    if (!can_block || grant.never || grant.at_ns > deadline_ns || !Room(nullptr) || !real.fits) {
      return ReplyRefused(ctx, request, verbose, stored, now_ns, retry_ms);
    }
    queue = NewQueue(db, name);
    queue->basis = real;
    queue->origin_ns = now_ns;
    queue->tail = real;
    Block(ctx, queue, request, verbose, now_ns, deadline_ns, grant);
    Schedule(ctx, queue);
    return REDISMODULE_OK;
  }

  // Someone waits on this key: this call queues behind every waiter, or is refused.
  const wait::Grant grant =
      wait::EarliestGrant(request, queue->tail.View(), std::max(queue->tail_ns, now_ns));
  if (grant.error != Error::kNone) return ReplyError(ctx, grant.error);
  const int64_t retry_ms = grant.never ? kNever : wait::WaitMs(grant.at_ns, now_ns);
  if (!can_block || grant.never || grant.at_ns > deadline_ns || !Room(queue)) {
    return ReplyRefused(ctx, request, verbose, stored, now_ns, retry_ms);
  }
  Block(ctx, queue, request, verbose, now_ns, deadline_ns, grant);
  return REDISMODULE_OK;
}

int RegisterWait(RedisModuleCtx* ctx) noexcept {
  queues_by_key = RedisModule_CreateDict(nullptr);
  waiters_by_client = RedisModule_CreateDict(nullptr);
  if (RedisModule_SubscribeToServerEvent(ctx, RedisModuleEvent_FlushDB, OnFlush) !=
      REDISMODULE_OK) {
    return REDISMODULE_ERR;
  }
  if (!RMAPI_FUNC_SUPPORTED(RedisModule_RegisterNumericConfig)) {
    RedisModule_Log(ctx, "notice",
                    "Shield's WAIT bounds are not configurable on this server: %lld waiters per "
                    "key, %lld in all",
                    max_per_key, max_total);
    return REDISMODULE_OK;
  }
  if (RedisModule_RegisterNumericConfig(ctx, "wait-max-per-key", kDefaultMaxPerKey,
                                        REDISMODULE_CONFIG_DEFAULT, 0, kMaxConfigured, GetBound,
                                        SetBound, nullptr, &max_per_key) != REDISMODULE_OK ||
      RedisModule_RegisterNumericConfig(ctx, "wait-max-total", kDefaultMaxTotal,
                                        REDISMODULE_CONFIG_DEFAULT, 0, kMaxConfigured, GetBound,
                                        SetBound, nullptr, &max_total) != REDISMODULE_OK ||
      RedisModule_LoadConfigs(ctx) != REDISMODULE_OK) {
    RedisModule_Log(ctx, "warning", "Shield could not register its WAIT configuration");
    return REDISMODULE_ERR;
  }
  return REDISMODULE_OK;
}

}  // namespace shield::glue
