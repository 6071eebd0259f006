// SHIELD.stats, INFO shield, and SHIELD.stats CLUSTER over the cluster bus.
#include <cstring>
#include <new>

#include "module/glue.hpp"

namespace shield::glue {

Counters counters;

namespace {

// The fields this node reports: the totals, then a count of calls per command of the command
// table (SetUpStats).
CounterFields fields{{}};

// The counters as field/value pairs of a map whose header the caller has sent.
void ReplyCounterFields(RedisModuleCtx* ctx, const Counters& values) noexcept {
  for (size_t field = 0; field < fields.size(); ++field) {
    const std::string_view name = fields.Name(field);
    RedisModule_ReplyWithStringBuffer(ctx, name.data(), name.size());
    RedisModule_ReplyWithLongLong(ctx, static_cast<long long>(fields.Value(values, field)));
  }
}

// ---- SHIELD.stats CLUSTER ----------------------------------------------------------------------

enum class NodeStatus { kTimeout, kOk, kUnreachable };

struct NodeEntry {
  char id[REDISMODULE_NODE_ID_LEN + 1];
  char ip[64];  // NET_IP_STR_LEN is 46
  int port;
  bool primary;
  NodeStatus status;
  Counters counters;
};

// One SHIELD.stats CLUSTER call in flight: the blocked client, the nodes asked, what came back.
struct ClusterRequest {
  uint64_t id;
  RedisModuleBlockedClient* client;
  RedisModuleTimerID timer;
  bool timer_running;
  bool resent;      // the second request has gone out
  int64_t rest_ms;  // of the timeout, after the resend
  size_t waiting;   // nodes asked that have not answered
  size_t count;
  NodeEntry* nodes;
  ClusterRequest* next;  // in the list of requests in flight
};

ClusterRequest* in_flight = nullptr;
uint64_t next_request_id = 1;

void Unlink(ClusterRequest* request) noexcept {
  for (ClusterRequest** at = &in_flight; *at != nullptr; at = &(*at)->next) {
    if (*at == request) {
      *at = request->next;
      return;
    }
  }
}

// Hands the request to its client's reply callback; nothing more is recorded for it.
void Finish(RedisModuleCtx* ctx, ClusterRequest* request) noexcept {
  Unlink(request);
  if (request->timer_running) RedisModule_StopTimer(ctx, request->timer, nullptr);
  request->timer_running = false;
  RedisModule_UnblockClient(request->client, request);
}

// Valkey 8.1+ drops a module message that is the first on a fresh cluster-bus link (it comes with
// the short header before the receiving end knows who sent it, as just after a cluster forms or a
// link reconnects); the link is whole again within about 100 ms. So a node that has not answered
// after kResendAfterMs is asked once more, when the timeout leaves room for it.
constexpr int64_t kResendAfterMs = 200;

// Asks `node` for its counters; false when the bus cannot reach it.
bool Ask(RedisModuleCtx* ctx, const ClusterRequest& request, NodeEntry& node) noexcept {
  uint8_t message[kStatsRequestSize];
  EncodeStatsRequest(request.id, std::span<uint8_t, kStatsRequestSize>(message));
  return RedisModule_SendClusterMessage(ctx, node.id, kStatsRequestType,
                                        reinterpret_cast<const char*>(message),
                                        kStatsRequestSize) == REDISMODULE_OK;
}

void OnTimer(RedisModuleCtx* ctx, void* data) noexcept {
  auto* request = static_cast<ClusterRequest*>(data);
  request->timer_running = false;
  if (request->resent || request->rest_ms <= 0) {
    Finish(ctx, request);
    return;
  }
  request->resent = true;
  for (size_t i = 0; i < request->count; ++i) {
    NodeEntry& node = request->nodes[i];
    if (node.status != NodeStatus::kTimeout || Ask(ctx, *request, node)) continue;
    node.status = NodeStatus::kUnreachable;
    --request->waiting;
  }
  if (request->waiting == 0) {
    Finish(ctx, request);
    return;
  }
  request->timer = RedisModule_CreateTimer(ctx, request->rest_ms, OnTimer, request);
  request->timer_running = true;
}

const char* StatusName(NodeStatus status) noexcept {
  switch (status) {
    case NodeStatus::kOk:
      return "ok";
    case NodeStatus::kUnreachable:
      return "unreachable";
    case NodeStatus::kTimeout:
      break;
  }
  return "timeout";
}

int ReplyCluster(RedisModuleCtx* ctx, RedisModuleString** /*argv*/, int /*argc*/) noexcept {
  const auto* request =
      static_cast<const ClusterRequest*>(RedisModule_GetBlockedClientPrivateData(ctx));
  Counters sum;
  long long answered = 0;
  for (size_t i = 0; i < request->count; ++i) {
    if (request->nodes[i].status != NodeStatus::kOk) continue;
    sum.AddAll(request->nodes[i].counters);
    ++answered;
  }
  RedisModule_ReplyWithMap(ctx, static_cast<long>(fields.size()) + 3);
  ReplyCounterFields(ctx, sum);
  RedisModule_ReplyWithCString(ctx, "nodes_total");
  RedisModule_ReplyWithLongLong(ctx, static_cast<long long>(request->count));
  RedisModule_ReplyWithCString(ctx, "nodes_answered");
  RedisModule_ReplyWithLongLong(ctx, answered);
  RedisModule_ReplyWithCString(ctx, "nodes");
  RedisModule_ReplyWithArray(ctx, static_cast<long>(request->count));
  for (size_t i = 0; i < request->count; ++i) {
    const NodeEntry& node = request->nodes[i];
    const bool ok = node.status == NodeStatus::kOk;
    RedisModule_ReplyWithMap(ctx, 4 + (ok ? static_cast<long>(fields.size()) : 0));
    RedisModule_ReplyWithCString(ctx, "id");
    RedisModule_ReplyWithCString(ctx, node.id);
    RedisModule_ReplyWithCString(ctx, "address");
    RedisModuleString* address = RedisModule_CreateStringPrintf(ctx, "%s:%d", node.ip, node.port);
    RedisModule_ReplyWithString(ctx, address);
    RedisModule_FreeString(ctx, address);
    RedisModule_ReplyWithCString(ctx, "role");
    RedisModule_ReplyWithCString(ctx, node.primary ? "primary" : "replica");
    RedisModule_ReplyWithCString(ctx, "status");
    RedisModule_ReplyWithCString(ctx, StatusName(node.status));
    if (ok) ReplyCounterFields(ctx, node.counters);
  }
  return REDISMODULE_OK;
}

void FreeRequest(RedisModuleCtx* /*ctx*/, void* data) noexcept {
  auto* request = static_cast<ClusterRequest*>(data);
  RedisModule_Free(request->nodes);
  RedisModule_Free(request);
}

// Another node asks for our counters.
void OnStatsRequest(RedisModuleCtx* ctx, const char* sender_id, uint8_t /*type*/,
                    const unsigned char* payload, uint32_t len) noexcept {
  const auto request_id = DecodeStatsRequest({payload, len});
  if (!request_id) return;
  uint8_t reply[kMaxStatsReplySize];
  const size_t size = EncodeStatsReply(*request_id, counters, fields,
                                       std::span<uint8_t, kMaxStatsReplySize>(reply));
  // Node IDs come as 40 bytes without a terminating NUL, and the servers look them up as C
  // strings: pass a terminated copy.
  char sender[REDISMODULE_NODE_ID_LEN + 1] = {};
  std::memcpy(sender, sender_id, REDISMODULE_NODE_ID_LEN);
  RedisModule_SendClusterMessage(ctx, sender, kStatsReplyType, reinterpret_cast<const char*>(reply),
                                 static_cast<uint32_t>(size));
}

// A node answers one of our requests.
void OnStatsReply(RedisModuleCtx* ctx, const char* sender_id, uint8_t /*type*/,
                  const unsigned char* payload, uint32_t len) noexcept {
  const auto reply = DecodeStatsReply({payload, len}, fields);
  if (!reply) return;
  for (ClusterRequest* request = in_flight; request != nullptr; request = request->next) {
    if (request->id != reply->request_id) continue;
    for (size_t i = 0; i < request->count; ++i) {
      NodeEntry& node = request->nodes[i];
      if (node.status != NodeStatus::kTimeout ||
          std::memcmp(node.id, sender_id, REDISMODULE_NODE_ID_LEN) != 0) {
        continue;
      }
      node.status = NodeStatus::kOk;
      node.counters = reply->counters;
      if (--request->waiting == 0) Finish(ctx, request);
      return;
    }
    return;
  }
}

int StartClusterStats(RedisModuleCtx* ctx, int64_t timeout_ms) noexcept {
  if ((RedisModule_GetContextFlags(ctx) & REDISMODULE_CTX_FLAGS_CLUSTER) == 0) {
    return ReplyError(ctx, Error::kNeedsCluster);
  }
  if ((RedisModule_GetContextFlags(ctx) & (REDISMODULE_CTX_FLAGS_MULTI | REDISMODULE_CTX_FLAGS_LUA |
                                           REDISMODULE_CTX_FLAGS_DENY_BLOCKING)) != 0) {
    return ReplyError(ctx, Error::kCannotBlock);
  }
  size_t count = 0;
  char** ids = RedisModule_GetClusterNodesList(ctx, &count);
  auto* request = static_cast<ClusterRequest*>(RedisModule_Calloc(1, sizeof(ClusterRequest)));
  request->nodes =
      static_cast<NodeEntry*>(RedisModule_Calloc(count ? count : 1, sizeof(NodeEntry)));
  // The bit asks for the reply by name; Shield 2.0 echoes it, answering in its own form.
  request->id = next_request_id++ | kNamedReplyBit;
  request->count = count;
  const char* my_id = RedisModule_GetMyClusterID();
  for (size_t i = 0; i < count; ++i) {
    NodeEntry& node = request->nodes[i];
    // The list's IDs are not NUL-terminated; node.id (zero-filled) is, and is what the server's
    // lookups get.
    std::memcpy(node.id, ids[i], REDISMODULE_NODE_ID_LEN);
    int flags = 0;
    if (RedisModule_GetClusterNodeInfo(ctx, node.id, node.ip, nullptr, &node.port, &flags) !=
        REDISMODULE_OK) {
      node.status = NodeStatus::kUnreachable;
      continue;
    }
    node.primary = (flags & REDISMODULE_NODE_MASTER) != 0;
    if (my_id != nullptr && std::memcmp(node.id, my_id, REDISMODULE_NODE_ID_LEN) == 0) {
      node.status = NodeStatus::kOk;
      node.counters = counters;
      continue;
    }
    node.status = NodeStatus::kTimeout;
    if (!Ask(ctx, *request, node)) {
      node.status = NodeStatus::kUnreachable;
      continue;
    }
    ++request->waiting;
  }
  if (ids != nullptr) RedisModule_FreeClusterNodesList(ids);

  request->client = RedisModule_BlockClient(ctx, ReplyCluster, nullptr, FreeRequest, 0);
  request->next = in_flight;
  in_flight = request;
  if (request->waiting == 0) {
    Finish(ctx, request);
    return REDISMODULE_OK;
  }
  // The first timer resends to the silent nodes, the second ends the wait; a timeout too short
  // to leave room for a resend ends at once.
  const int64_t first_ms = timeout_ms > 2 * kResendAfterMs ? kResendAfterMs : timeout_ms;
  request->rest_ms = timeout_ms - first_ms;
  request->timer = RedisModule_CreateTimer(ctx, first_ms, OnTimer, request);
  request->timer_running = true;
  return REDISMODULE_OK;
}

}  // namespace

int ReplyError(RedisModuleCtx* ctx, Error error) noexcept {
  counters.Add(Counter::kErrors);
  if (error == Error::kArity) return RedisModule_WrongArity(ctx);
  // ErrorReply returns literals, which are NUL-terminated.
  return RedisModule_ReplyWithError(ctx, ErrorReply(error).data());
}

void ReplyVerbose(RedisModuleCtx* ctx, const VerboseValues& values) noexcept {
  RedisModule_ReplyWithMap(ctx, static_cast<long>(kVerboseFields.size()));
  for (size_t i = 0; i < kVerboseFields.size(); ++i) {
    RedisModule_ReplyWithStringBuffer(ctx, kVerboseFields[i].data(), kVerboseFields[i].size());
    RedisModule_ReplyWithLongLong(ctx, values[i]);
  }
}

// SHIELD.stats [CLUSTER [TIMEOUT <ms>]]
//
// Reply: this node's counters as a map; CLUSTER: the counters
// summed over every node that answered within the timeout, nodes_total, nodes_answered and a
// map per node. Only the calling client waits.
// Errors: "syntax error"; "timeout must be between 1 and 60000"; CLUSTER outside a cluster or
// inside MULTI or a script; RESET names SHIELD.stats_reset, which replaced it.
int StatsCommand(RedisModuleCtx* ctx, RedisModuleString** argv, int argc) noexcept {
  constexpr size_t kMaxArgs = 3;  // CLUSTER TIMEOUT <ms>
  const ArgViews<kMaxArgs> views(argv, argc, 1, 0);
  if (!views.ok()) return ReplyError(ctx, Error::kArity);
  const StatsArgs args = ParseStatsArgs(views.all());
  if (args.error != Error::kNone) return ReplyError(ctx, args.error);
  switch (args.mode) {
    case StatsMode::kCluster:
      return StartClusterStats(ctx, args.timeout_ms);
    case StatsMode::kNode:
      break;
  }
  RedisModule_ReplyWithMap(ctx, static_cast<long>(fields.size()));
  ReplyCounterFields(ctx, counters);
  return REDISMODULE_OK;
}

// SHIELD.stats_reset
//
// Zeroes this node's counters, then counts this call: calls and stats_reset_calls read 1 after a
// reset, so a dashboard sees that one happened. Flags `write admin` and, where the server
// sets module categories, @write @admin @dangerous: a user without admin rights, or a read-only
// user, cannot wipe the counters that would show an attack.
// Reply: OK.
int StatsResetCommand(RedisModuleCtx* ctx, RedisModuleString** /*argv*/, int argc) noexcept {
  if (argc != 1) return ReplyError(ctx, Error::kArity);
  counters.ResetCountingThisCall();
  return RedisModule_ReplyWithSimpleString(ctx, "OK");
}

void InfoCallback(RedisModuleInfoCtx* ctx, int /*for_crash_report*/) noexcept {
  RedisModule_InfoAddSection(ctx, "");
  // Every name is a string literal's (the totals', the command table's), so NUL-terminated.
  for (size_t field = 0; field < fields.size(); ++field) {
    RedisModule_InfoAddFieldULongLong(ctx, fields.Name(field).data(),
                                      fields.Value(counters, field));
  }
}

void SetUpStats(RedisModuleCtx* ctx, std::span<const std::string_view> command_counters) noexcept {
  fields = CounterFields(command_counters);
  RedisModule_RegisterClusterMessageReceiver(ctx, kStatsRequestType, OnStatsRequest);
  RedisModule_RegisterClusterMessageReceiver(ctx, kStatsReplyType, OnStatsReply);
}

}  // namespace shield::glue
