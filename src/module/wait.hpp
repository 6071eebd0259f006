// WAIT <ms> on SHIELD.absorb and SHIELD.gcra: a first-come-first-served queue per key, in which the
// server holds each caller until its tokens are there (docs/commands.md, WAIT). The queues live
// on the main thread: blocked clients (RedisModule_BlockClient), one timer per queue at its first
// waiter's exact grant time, and grants carried out like a plain call's (SET ... PXAT).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/bucket/bucket_args.hpp"
#include "core/wait/wait.hpp"
#include "module/glue.hpp"

namespace shield::glue {

// Calls waiting on this node, on every key.
extern size_t waiters_total;

// True when a call must go through WaitCall: it gave WAIT, or someone waits somewhere on this
// node (then its key may have a queue, which a call without WAIT must not overtake). A plain call
// on a node where nobody waits pays this one test.
inline bool NeedsWaitPath(int64_t wait_ms) noexcept {
  return wait_ms != kNoWait || waiters_total != 0;
}

// A take of `request` on the key `name` at `now_ns` (the command's time; a bucket's is a whole
// millisecond) by a call whose own counters are counted, waiting up to `wait_ms` (kNoWait or 0:
// not at all). Replies, or blocks the client until its grant.
int WaitCall(RedisModuleCtx* ctx, RedisModuleString* name, const wait::Request& request,
             bool verbose, int64_t wait_ms, int64_t now_ns) noexcept;

// At load: the bounds as module configuration (where the server offers it) and the FLUSHALL
// event. REDISMODULE_ERR when the server refuses them.
int RegisterWait(RedisModuleCtx* ctx) noexcept;

}  // namespace shield::glue
