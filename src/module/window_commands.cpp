// SHIELD.window: parses with the core, reads and writes through the store unit, and shapes its
// reply with the core's data.
#include "core/window/window.hpp"
#include "module/glue.hpp"

namespace shield::glue {

// SHIELD.window <key> <limit> <window> [<tokens>] [VERBOSE]
//
// Takes `tokens` (default 1) from a sliding window that admits at most <limit> tokens in any
// <window> seconds (two-counter approximation: core/window/window.hpp states its error bound). The
// key holds "<window-start-ms>:<previous>:<current>" and expires at window start + 2 * window.
// Reply: integer, the tokens that can still be taken after this call; -1 when fewer than
// `tokens` can, in which case nothing is written or propagated. With VERBOSE: the VERBOSE map
// (capacity = limit, period = window).
// Errors: wrong arity; "limit/window/tokens must be positive"; "window value too large";
// "syntax error" for VERBOSE twice; "invalid sliding window state in Redis"; WRONGTYPE.
int WindowCommand(RedisModuleCtx* ctx, RedisModuleString** argv, int argc) noexcept {
  CountCall(Counter::kWindowCalls);
  const int64_t now_ms = NowMs();
  std::string_view views[kMaxArgsAfterKey];
  size_t count = 0;
  if (!ArgsAfterKey(argv, argc, 2, views, count)) return ReplyError(ctx, Error::kArity);
  const WindowArgs args = ParseWindowArgs({views, count}, now_ms);
  if (args.error != Error::kNone) return ReplyError(ctx, args.error);

  StringKey key;
  std::string_view value;
  if (const Error error = OpenString(ctx, argv[1], key, value); error != Error::kNone) {
    return ReplyError(ctx, error);
  }
  std::optional<WindowState> stored;
  if (key.exists) {
    stored = ParseWindowState(value);
    if (!stored) return ReplyError(ctx, Error::kInvalidWindow);
  }
  const WindowDecision decision = WindowAbsorb(args.limits, stored, args.tokens, now_ms);
  if (decision.allowed) {
    char text[kWindowStateTextCapacity];
    const size_t len = FormatWindowState(decision.after.state, text);
    const Error error =
        WriteString(ctx, key, {text, len}, WindowExpireAt(args.limits, decision.after.state));
    if (error != Error::kNone) return ReplyError(ctx, error);
  }
  CountDecision(decision.allowed, static_cast<uint64_t>(args.tokens));
  if (args.verbose) {
    ReplyVerbose(ctx, WindowVerbose(args.limits, decision, args.tokens, now_ms));
    return REDISMODULE_OK;
  }
  return RedisModule_ReplyWithLongLong(ctx, WindowReply(args.limits, decision));
}

}  // namespace shield::glue
