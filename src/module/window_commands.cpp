// SHIELD.window: parses with the core, reads and writes through the store unit, and shapes its
// reply with the core's data.
#include "core/window/window_policy.hpp"
#include "module/glue.hpp"

namespace shield::glue {

// SHIELD.window <key> <limit> <window> [<tokens>] [VERBOSE] [DRYRUN]
//
// Takes `tokens` (default 1) from a sliding window that admits at most <limit> tokens in any
// <window> seconds (two-counter approximation: core/window/window.hpp states its error bound). The
// key holds "<window-start-ms>:<previous>:<current>" and expires at window start + 2 * window.
// DRYRUN decides and replies as the call would, and changes nothing (the key is read through GET).
// Reply: integer, the tokens that can still be taken after this call; -1 when fewer than
// `tokens` can, in which case nothing is written or propagated. With VERBOSE: the VERBOSE map
// (capacity = limit, period = window).
// Errors: wrong arity; "limit/window/tokens must be positive"; "window value too large";
// "syntax error" for VERBOSE twice; "invalid sliding window state in Redis"; WRONGTYPE.
int WindowCommand(RedisModuleCtx* ctx, RedisModuleString** argv, int argc) noexcept {
  const int64_t now_ms = NowMs();
  const ArgsAfterKey views(argv, argc, 2);
  if (!views.ok()) return ReplyError(ctx, Error::kArity);
  const WindowArgs args = ParseWindowArgs(views.all(), now_ms);
  if (args.error != Error::kNone) return ReplyError(ctx, args.error);

  return TakeOrPeek(ctx, argv[1], args.dry_run, args.verbose, args.tokens, false,
                    [&](const StoredValue& stored, Operation operation, Detail detail) {
                      return window::Decide(args.limits, stored, operation, args.tokens, now_ms,
                                            detail);
                    });
}

}  // namespace shield::glue
