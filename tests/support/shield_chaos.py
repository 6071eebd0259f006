#!/usr/bin/env python3
"""Chaos on a six-node Shield cluster: load, faults at random, and a history checked against a model.

    /usr/bin/python3 bench/chaos.py                       # both modes, 600 s each (the long form)
    /usr/bin/python3 bench/chaos.py --duration 50         # the short form CI runs (tests/cluster/test_chaos.py)
    /usr/bin/python3 bench/chaos.py --mode wait --seed 7  # replay one mode with one seed

bench/chaos.py is the command; the code lives here, in tests/support/, which the tests import too.

What it does, per mode (`nowait`, then `wait`), on a fresh cluster each time:

1. Starts 3 primaries + 3 replicas with Shield loaded and `appendonly yes` (tests/support's `Cluster`,
   free loopback ports below 32768; `--server` picks the binary: a path or a kind of
   scripts/install-servers.sh such as valkey9.1).
2. Runs load from `--threads` threads, each with its own unmodified redis-py `RedisCluster`, on
   `--buckets` buckets: single buckets (half that run dry, half that never do) and pairs sharing a
   hash tag. The mix is SHIELD.absorb (sometimes VERBOSE or 2 tokens), SHIELD.absorb_multi on a pair
   (sometimes VERBOSE), SHIELD.limit on a pair (two BUCKET policies, all or nothing: the model reads
   it as absorb_multi), SHIELD.inspect and SHIELD.refund. Each bucket is written by one thread only,
   so a bucket's calls form one sequence. In `wait` mode the client sends `WAIT 1 <--wait-ms>` on the
   same connection right after every call that wrote (see "Tracing" below) and records its reply.
3. Meanwhile, the main thread injects one fault at a time, at random times and of random kinds
   drawn from a generator seeded with `--seed` (printed at start, and in every failure message):
   - `hard_failover`: kill -9 of a primary; its replica is promoted (after cluster-node-timeout);
     the killed node is restarted from its AOF and rejoins as a replica;
   - `lagging_failover`: the same, but first the replica falls behind: it is given credentials
     the primary refuses (`masteruser`/`masterauth` of no such user), the primary drops its link
     (`CLIENT KILL TYPE replica`), and the primary is killed 100-300 ms later while the replica
     cannot reconnect (its credentials are restored once it is promoted). This is what a replica
     that lags (a slow network, a busy replica) loses, so the loss measured below is not zero and
     WAIT's protection shows where it matters;
   - `crash_restart`: kill -9 of a primary and an immediate restart from its AOF, before anyone
     notices: no failover;
   - `manual_failover`: `CLUSTER FAILOVER` on a replica;
   - `reshard`: `redis-cli --cluster reshard` of a few slots to another primary;
   - `migrateslots`: `CLUSTER MIGRATESLOTS` of a few slots (only when the server binary's version
     is Valkey 9 or later);
   - `restart_node`: a graceful stop (SIGTERM) of any node and a restart from its AOF.
   After each fault it waits (bounded) until the cluster is healthy again. The first round runs
   every kind once, in a seeded random order; later ones are drawn at random.
4. Stops the load and checks (see "Checks").

Tracing. The driver patches redis-py's cluster module so that the `Redis` objects it creates for
each node are a subclass whose `parse_response` notes every error the client saw on the way
(MOVED, ASK, TRYAGAIN, CLUSTERDOWN, LOADING, connection reset/refused, timeouts), and
`get_connection` notes failed connects, all against the call under way (a thread-local). So each
recorded call carries the redirects the client followed and the errors it retried internally; the
driver itself retries a call that still failed after redis-py's own retries, when the error is
transient, with a bounded backoff (at most `--retry-seconds` per operation), and records each
attempt as its own call. In `wait` mode the same hook sends `WAIT 1 <ms>` on the very connection
that carried the write, right after its reply: WAIT counts the replicas that acknowledged every
write of *this connection*, so it has to be that connection. Every call is recorded with its
arguments, reply or error, the node that answered, monotonic and wall start/end times.

Checks (any failure prints the seed and an excerpt of the history):
- no node died that the driver did not kill; no node log shows a crash report; every restart
  loaded its AOF; at the end every primary is killed with -9 and restarted once more and must hold
  exactly the values and PEXPIRETIMEs it held before (the AOF has every acknowledged write);
- the cluster ends `cluster_state:ok` and every bucket answers SHIELD.inspect. When the cluster is
  not healthy within `--heal-seconds` after a fault, the driver diagnoses it and repairs what
  Redis Cluster itself left wrong (a node missing a slot every other node says it owns, seen when a
  failover closely follows a reshard: CLUSTER ADDSLOTS on that node; otherwise
  `redis-cli --cluster fix`). Each repair is recorded in `cluster_repairs` with its diagnosis;
  one that does not bring the cluster back is a failure;
- every reply is what the command replies (an integer, an array of integers, a VERBOSE array),
  and every error is a transient one the driver retried; anything else is a failure;
- per bucket, over every window of its history, the tokens granted (minus those refunded) never
  exceed `capacity + capacity * (window + 5 ms) / period` plus the tokens hard failovers lost for
  that bucket (measured as below). Whatever exceeds capacity + refill is reported as
  over-admission, by cause: `hard_failover_loss` up to the measured loss, `unexplained` beyond it
  (a failure). A refund counts as giving its tokens back (even when the bucket was full, which
  only loosens the bound), and so does a refund whose outcome is unknown (it may have run); a take
  whose outcome is unknown counts as not granted (it can only have lowered what was left).

Measuring what a hard failover loses. Replication is asynchronous, so a primary P can acknowledge
a write that its replica R has not received when P dies; R, once promoted, hands those tokens out
again. The driver measures exactly that, per bucket, at every `hard_failover` and
`lagging_failover`:
  a. right after kill -9 of P (and once R reports its link to P down, so R has applied everything
     P ever sent it), it reads from R (READONLY) the value and PEXPIRETIME of every bucket in P's
     slots. R receives nothing more until it is promoted (P is dead, and writes to P's slots fail
     until then), so this is exactly the state R will serve from;
  b. it copies P's AOF folder before restarting P, and loads the copy into a standalone server:
     that gives P's final state of every bucket. P writes its AOF before it answers a client (and
     kill -9 of a process loses nothing the kernel already has), so this includes every write P
     acknowledged, and every write R received (R's stream comes from the same commands);
  c. per bucket, `lost = tokens(R) - tokens(P)`, both read at one instant with Shield's own
     formula (`count + (period - ttl) * capacity / period`, a missing or expired key is full).
     Buckets use refill rates under 0.0002 tokens per ms, so the millisecond rounding of the
     carried refill does not blur this by a token. `lost` counts the tokens of writes P made that
     R never saw. A call in flight at the kill (no reply) may be among them without having been
     acknowledged: when P's stored count is not the last acknowledged reply, that call ran, and
     its tokens are taken off, so `lost_acknowledged` counts only acknowledged grants;
  d. with WAIT, each write is confirmed when WAIT returned 1. Tokens of acknowledged writes after
     the last confirmed one (WAIT returned 0, failed, or the call was in flight) may be lost;
     `lost_confirmed = lost_acknowledged - those`, clamped at 0, must be 0: a grant a replica
     acknowledged is never lost. This is asserted in `wait` mode.
  e. `lost` is net: a refund R missed counts against a take R missed. A bucket where R holds
     fewer tokens than P (R missed more refunds than takes) over-admits nothing; those are counted
     as `keys_replica_stricter`.
The figures (per failover and in total) go to the results with the over-admission they explain.

Results: bench/results/chaos.json and bench/results/chaos.md (`--out` changes the folder; the CI
wrapper writes none). The full history of a mode (every call, every fault) is written as gzip'd
JSON lines and kept in the temporary folder (or `--history-dir`), its path printed, when a check
fails or with `--keep-history`.

Bounds: every loop is bounded in count or time; every server is started by the Cluster helper and
stopped by its PID; traffic is to 127.0.0.1 only.
"""

import argparse
import gzip
import json
import logging
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "bench" / "results"  # where the command (bench/chaos.py) writes its results

import redis
import redis.cluster
from redis.crc import key_slot
from redis.exceptions import (AskError, BusyLoadingError, ClusterDownError, ClusterError,
                              ConnectionError, MasterDownError, MovedError, RedisClusterException,
                              ResponseError, TimeoutError, TryAgainError)

import shield_servers
from shield_cluster import Cluster, node_table, wait_for_promotion
from shield_servers import HOST, MODULE, Server, cli_binary, wait_until

logging.getLogger("redis.cluster").setLevel(logging.CRITICAL)  # it logs every MOVED as an error

# ---- buckets -----------------------------------------------------------------------------------
# Refill rates stay under 0.0002 tokens/ms (see "Measuring" in the docstring).
DRY = (3, 300)           # capacity, period s: runs dry in a few calls, refills 1 token per 100 s
BUSY = (5000, 86400)     # never runs dry in a run: every absorb writes
PAIR_SHORT = (4, 240)    # {g}:s of an absorb_multi pair: runs dry, refills 1 token per 60 s
PAIR_LONG = (500, 86400) # {g}:l

TAKES = ("SHIELD.absorb", "SHIELD.absorb_multi", "SHIELD.limit")  # the calls that take tokens
SLACK_US = 5_000         # added to every window: server clocks are read to the millisecond
TRANSIENT = {"MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN", "LOADING", "MASTERDOWN", "timeout",
             "conn_refused", "conn_reset", "conn_closed", "conn_other", "ttl_exhausted",
             "slot_not_covered", "cluster_client"}
FAULT_KINDS = ["hard_failover", "lagging_failover", "crash_restart", "manual_failover", "reshard", "migrateslots",
               "restart_node"]
CRASH_PATTERNS = re.compile(r"crashed by signal|ASSERTION FAILED|Guru Meditation|BUG REPORT START",
                            re.IGNORECASE)
AOF_LOADED = re.compile(r"DB loaded from (append only file|disk)|Done loading AOF|Reading RDB base file "
                        r"on AOF loading", re.IGNORECASE)


class Bucket:
    __slots__ = ("key", "capacity", "period", "kind", "unit", "thread")

    def __init__(self, key, limits, kind, unit, thread):
        self.key, (self.capacity, self.period), self.kind = key, limits, kind
        self.unit, self.thread = unit, thread


def make_buckets(count, threads):
    """About `count` buckets: 2/3 single (dry and busy alternating), 1/3 in absorb_multi pairs.
    Returns (buckets by key, units per thread); a unit is ('single', key) or ('pair', k1, k2)."""
    buckets, units = {}, [[] for _ in range(threads)]
    singles = count * 2 // 3
    for i in range(singles):
        t = i % threads
        kind, limits = ("dry", DRY) if i % 2 == 0 else ("busy", BUSY)
        key = f"chaos:{kind}:{i}"
        buckets[key] = Bucket(key, limits, kind, ("single", key), t)
        units[t].append(("single", key))
    for i in range((count - singles) // 2):
        t = i % threads
        short, long_ = f"{{chaos:g{i}}}:s", f"{{chaos:g{i}}}:l"
        unit = ("pair", short, long_)
        buckets[short] = Bucket(short, PAIR_SHORT, "pair_short", unit, t)
        buckets[long_] = Bucket(long_, PAIR_LONG, "pair_long", unit, t)
        units[t].append(unit)
    return buckets, units


def tokens_at(value, expire_at, capacity, period_s, now_ms):
    """Shield's reading of a stored bucket (src/core/bucket/bucket.cpp StateAt, without BURST)."""
    if value is None or expire_at is None or expire_at < 0 or expire_at <= now_ms:
        return capacity
    window = period_s * 1000
    ttl = min(expire_at - now_ms, window)
    return min(capacity, min(max(int(value), 0), capacity) + (window - ttl) * capacity // window)


# ---- tracing hooks in redis-py's cluster client ------------------------------------------------

_tls = threading.local()
WAIT = {"ms": 0}  # > 0: WAIT 1 <ms> after every write


def classify(error):
    """A short kind for an exception the client raised."""
    if isinstance(error, MovedError):
        return "MOVED"
    if isinstance(error, AskError):
        return "ASK"
    if isinstance(error, TryAgainError):
        return "TRYAGAIN"
    if isinstance(error, ClusterDownError):
        return "CLUSTERDOWN"
    if isinstance(error, BusyLoadingError):
        return "LOADING"
    if isinstance(error, MasterDownError):
        return "MASTERDOWN"
    if isinstance(error, TimeoutError):
        return "timeout"
    if isinstance(error, ConnectionError):
        text = str(error).lower()
        if "refused" in text:
            return "conn_refused"
        if "reset" in text or "broken pipe" in text:
            return "conn_reset"
        if "closed" in text:
            return "conn_closed"
        return "conn_other"
    if isinstance(error, ClusterError) and "TTL exhausted" in str(error):
        return "ttl_exhausted"
    if type(error).__name__ == "SlotNotCoveredError":
        return "slot_not_covered"
    if isinstance(error, RedisClusterException):
        return "cluster_client"
    if isinstance(error, ResponseError):
        return "ERR:" + (str(error).split() or ["?"])[0]
    return "PY:" + type(error).__name__


def wrote(op, reply):
    """True when a successful reply means the call wrote (so WAIT has something to confirm)."""
    if op == "SHIELD.refund":
        return True
    if op == "SHIELD.absorb":
        return verbose_allowed(reply) if isinstance(reply, list) else reply >= 0
    if op == "SHIELD.absorb_multi":
        if reply and isinstance(reply[0], list):
            return verbose_allowed(reply[0])
        return all(v >= 0 for v in reply)
    if op == "SHIELD.limit":
        return verbose_allowed(reply)
    return False


def verbose_allowed(fields):
    return dict(zip(fields[::2], fields[1::2])).get("allowed") == 1


class TracingRedis(redis.Redis):
    """The Redis object redis-py's cluster client creates for each node, with the tracing hook."""

    def parse_response(self, connection, command_name, **options):
        call = getattr(_tls, "call", None)
        try:
            reply = super().parse_response(connection, command_name, **options)
        except BaseException as error:
            if call is not None:
                call.events.append(classify(error))
            raise
        if call is not None and command_name == call.op:
            call.node = connection.port
            if WAIT["ms"] and isinstance(reply, (int, list)) and wrote(call.op, reply):
                try:
                    connection.send_command("WAIT", 1, WAIT["ms"])
                    call.wait = int(super().parse_response(connection, "WAIT"))
                except Exception as error:  # the write stands; its confirmation is unknown
                    call.wait = -1
                    call.events.append("WAIT:" + classify(error))
                    connection.disconnect()
        return reply


_original_get_connection = redis.cluster.get_connection


def _traced_get_connection(redis_node, *args, **options):
    try:
        return _original_get_connection(redis_node, *args, **options)
    except BaseException as error:
        call = getattr(_tls, "call", None)
        if call is not None:
            call.events.append(classify(error))
        raise


redis.cluster.Redis = TracingRedis
# redis-py 4.3's ClusterNode.__del__ reads redis_connection, which a node whose constructor failed
# never set: a default keeps it from printing an AttributeError at exit.
redis.cluster.ClusterNode.redis_connection = None
redis.cluster.get_connection = _traced_get_connection


# ---- the history -------------------------------------------------------------------------------

class Call:
    __slots__ = ("seq", "thread", "op", "args", "t0", "t1", "w0", "w1", "reply", "error", "text",
                 "events", "node", "wait", "attempt")

    def __init__(self, seq, thread, op, args, attempt):
        self.seq, self.thread, self.op, self.args, self.attempt = seq, thread, op, args, attempt
        self.reply = self.error = self.text = self.node = self.wait = None
        self.events = []

    def keys(self):
        if self.op == "SHIELD.absorb_multi":
            return [self.args[i] for i in range(0, len(self.args) - 3, 4)]
        if self.op == "SHIELD.limit":
            return list(self.args[1:1 + self.args[0]])
        return [self.args[0]]

    def as_dict(self):
        return {"seq": self.seq, "thread": self.thread, "op": self.op, "args": list(self.args),
                "attempt": self.attempt, "t0": round(self.t0, 6), "t1": round(self.t1, 6),
                "wall0": round(self.w0, 6), "wall1": round(self.w1, 6), "reply": self.reply,
                "error": self.error, "text": self.text, "events": self.events, "node": self.node,
                "wait": self.wait}

    def line(self):
        outcome = f"reply={self.reply!r}" if self.error is None else f"ERROR {self.error}: {self.text}"
        extra = f" events={self.events}" if self.events else ""
        wait = f" wait={self.wait}" if self.wait is not None else ""
        return (f"  #{self.seq} t={self.t0:.4f}..{self.t1:.4f} thread={self.thread} node={self.node} "
                f"{self.op} {' '.join(map(str, self.args))} -> {outcome}{wait}{extra}")


class Load:
    """Client threads; each owns its units and records every call."""

    def __init__(self, cluster, buckets, units, seed, rate, retry_seconds):
        self.cluster, self.buckets, self.units = cluster, buckets, units
        self.seed, self.retry_seconds = seed, retry_seconds
        self.interval = len(units) / rate if rate > 0 else 0.0
        self.histories = [[] for _ in units]
        self.retries = [Counter() for _ in units]
        self.abandoned = [0 for _ in units]
        self.stopping = threading.Event()
        self.seq = iter(range(1, 1 << 62))
        self.seq_lock = threading.Lock()
        self.threads = [threading.Thread(target=self.work, args=(i,), daemon=True, name=f"load-{i}")
                        for i in range(len(units))]

    def next_seq(self):
        with self.seq_lock:
            return next(self.seq)

    def choose(self, rng, unit):
        if unit[0] == "single":
            b = self.buckets[unit[1]]
            x = rng.random()
            if x < 0.55:
                return "SHIELD.absorb", (b.key, b.capacity, b.period)
            if x < 0.65:
                return "SHIELD.absorb", (b.key, b.capacity, b.period, 1, "VERBOSE")
            if x < 0.70:
                return "SHIELD.absorb", (b.key, b.capacity, b.period, 2)
            if x < 0.88:
                return "SHIELD.inspect", (b.key, b.capacity, b.period)
            return "SHIELD.refund", (b.key, b.capacity, b.period, 1)
        s, l_ = self.buckets[unit[1]], self.buckets[unit[2]]
        x = rng.random()
        pair = (s.key, s.capacity, s.period, 1, l_.key, l_.capacity, l_.period, 1)
        if x < 0.45:
            return "SHIELD.absorb_multi", pair
        if x < 0.55:
            return "SHIELD.absorb_multi", pair + ("VERBOSE",)
        if x < 0.75:  # the same take as one SHIELD.limit call of two bucket policies, cost 1 each
            return "SHIELD.limit", (2, s.key, l_.key, "s", "BUCKET", s.capacity, s.period,
                                    "l", "BUCKET", l_.capacity, l_.period)
        if x < 0.90:
            b = s if rng.random() < 0.5 else l_
            return "SHIELD.inspect", (b.key, b.capacity, b.period)
        b = s if rng.random() < 0.5 else l_
        return "SHIELD.refund", (b.key, b.capacity, b.period, 1)

    def work(self, index):
        rng = random.Random(f"{self.seed}:thread:{index}")
        units, history, retries = self.units[index], self.histories[index], self.retries[index]
        client = None
        next_at = time.monotonic()
        for _ in range(100_000_000):  # bounded; stops on self.stopping long before
            if self.stopping.is_set():
                break
            if self.interval:
                next_at += self.interval
                delay = next_at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                elif delay < -1.0:  # behind by more than a second (a fault): do not burst
                    next_at = time.monotonic()
            op, args = self.choose(rng, rng.choice(units))
            give_up_at = time.monotonic() + self.retry_seconds
            for attempt in range(1000):
                if client is None:
                    try:
                        client = self.cluster_client()
                    except Exception as error:  # no node answered yet: transient
                        retries["client_init:" + classify(error)] += 1
                        time.sleep(0.2)
                        if time.monotonic() > give_up_at or self.stopping.is_set():
                            break
                        continue
                call = Call(self.next_seq(), index, op, args, attempt)
                _tls.call = call
                call.t0, call.w0 = time.monotonic(), time.time()
                try:
                    call.reply = client.execute_command(op, *args)
                except Exception as error:
                    call.error, call.text = classify(error), str(error)[:200]
                call.t1, call.w1 = time.monotonic(), time.time()
                _tls.call = None
                history.append(call)
                if call.error is None or call.error not in TRANSIENT:
                    break
                retries[call.error] += 1
                if self.stopping.is_set() or time.monotonic() > give_up_at:
                    self.abandoned[index] += 1
                    break
                if call.error in ("conn_refused", "conn_reset", "conn_closed", "conn_other", "timeout",
                                  "cluster_client", "slot_not_covered") and attempt >= 3:
                    client.close()  # start over from the startup nodes
                    client = None
                time.sleep(min(0.5, 0.02 * (2 ** min(attempt, 5))) * (0.5 + rng.random()))
        if client is not None:
            client.close()

    def cluster_client(self):
        return self.cluster.client(socket_timeout=2.0, socket_connect_timeout=1.0)

    def start(self):
        for t in self.threads:
            t.start()

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=60)
        return [t.name for t in self.threads if t.is_alive()]

    def calls(self):
        return [c for h in self.histories for c in h]

    def calls_since(self, t):
        return [c for h in self.histories for c in h if c.t0 >= t]


# ---- servers and faults ------------------------------------------------------------------------

def server_version(binary):
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
    name = "valkey" if "valkey" in out.lower() else "redis"
    m = re.search(r"v=(\d+)\.(\d+)\.(\d+)", out)
    return name, tuple(int(x) for x in m.groups()) if m else (0, 0, 0), out.strip()


def resolve_server(spec):
    """A path, or a kind of scripts/install-servers.sh (redis7, valkey9.1, ...), or None for the
    default (SHIELD_CLUSTER_SERVER's kind, else redis-server on the PATH)."""
    spec = spec or os.environ.get("SHIELD_CLUSTER_SERVER")
    if spec and os.path.sep in spec:
        return spec
    if spec:
        find = getattr(shield_servers, "find_server", None)
        if find:
            found = find(spec)
            if found:
                return found
        found = shield_servers.server_binaries().get(spec)
        if found:
            return found
        raise SystemExit(f"no server binary for {spec!r}")
    return shutil.which("redis-server")


class Chaos:
    """One mode's run: the cluster, the load, the faults and their records."""

    def __init__(self, args, mode, seed, workdir):
        self.args, self.mode, self.seed, self.workdir = args, mode, seed, workdir
        self.rng = random.Random(f"{seed}:faults")
        self.binary = resolve_server(args.server)
        self.server_name, self.version, self.version_text = server_version(self.binary)
        self.has_migrateslots = self.server_name == "valkey" and self.version >= (9, 0, 0)
        self.faults = []
        self.failures = []
        self.expected_down = set()
        self.crashes = []
        self.aof_loads = Counter()
        self.repairs = []
        self.buckets, self.units = make_buckets(args.buckets, args.threads)
        self.slot_of = {k: key_slot(k.encode()) for k in self.buckets}
        self.load = None
        self.cluster = None
        self.t_start = None

    # -- helpers --
    def log(self, text):
        print(f"[{self.mode} {time.monotonic() - self.t_start:7.2f}s] {text}", flush=True)

    def fail(self, text):
        self.failures.append(text)
        self.log("FAILURE: " + text.splitlines()[0])

    def slots_of(self, node):
        return next(r["slots"] for r in self.cluster.table() if r["port"] == node.port)

    def keys_in(self, slots):
        return [k for k, s in self.slot_of.items() if s in slots]

    def read_states(self, node, keys, readonly=False):
        """{key: (value or None, PEXPIRETIME)} through one connection."""
        states = {}
        with node.client(socket_timeout=10) as c:
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                pipe = c.pipeline(transaction=False)
                if readonly:
                    pipe.execute_command("READONLY")
                for k in chunk:
                    pipe.get(k)
                    pipe.execute_command("PEXPIRETIME", k)
                out = pipe.execute()
                if readonly:
                    out = out[1:]
                for i, k in enumerate(chunk):
                    states[k] = (out[2 * i], int(out[2 * i + 1]))
        return states

    def check_aof_loaded(self, node, log_offset):
        try:
            with open(node.log_path, errors="replace") as f:
                f.seek(log_offset)
                text = f.read()
        except OSError:
            text = ""
        if AOF_LOADED.search(text):
            self.aof_loads["loaded"] += 1
        else:
            self.aof_loads["no_load_line"] += 1
            self.fail(f"node {node.port} restarted without the log saying its AOF was loaded:\n"
                      f"{text[-1500:]}")

    def restart(self, node):
        offset = os.path.getsize(node.log_path) if os.path.exists(node.log_path) else 0
        try:
            self.cluster.restart(node, timeout=60)
        except Exception as error:
            self.fail(f"node {node.port} did not come back from its AOF: {error!r}\n{node.log_tail(30)}")
            return False
        finally:
            self.expected_down.discard(node.port)
        self.check_aof_loaded(node, offset)
        return True

    def kill(self, node):
        self.expected_down.add(node.port)
        node.kill()

    def stop_gracefully(self, node):
        self.expected_down.add(node.port)
        node.stop()
        code = node.process.returncode
        if code not in (0, None):
            self.fail(f"node {node.port} exited with {code} on SIGTERM:\n{node.log_tail(30)}")

    def healthy(self, what, timeout=None):
        """Waits for the cluster to be healthy. When it is not within the time, diagnoses it and
        repairs what Redis Cluster itself got wrong (recorded in `repairs`, not a Shield failure):
        a node that does not own a slot every other node says it owns (seen after a reshard
        followed within seconds by a failover: the slot's config epoch bump races the election)
        gets the slot back with CLUSTER ADDSLOTS; anything else, `redis-cli --cluster fix`."""
        timeout = timeout or self.args.heal_seconds
        try:
            self.cluster.wait_healthy(timeout=timeout)
            return True
        except Exception as error:
            first_error = error
        diag = self.diagnose()
        repair = {"after": what, "at": round(time.monotonic() - self.t_start, 1), "diagnosis": diag,
                  "actions": []}
        self.repairs.append(repair)
        self.log(f"cluster not healthy after {what} within {timeout}s: {json.dumps(diag)[:600]}")
        for port, slots in diag["missing_own_slots"].items():
            with self.cluster.node_by_port(int(port)).client() as c:
                try:
                    c.execute_command("CLUSTER", "ADDSLOTS", *slots)
                    repair["actions"].append(f"CLUSTER ADDSLOTS {slots} on {port}")
                except ResponseError as e:
                    repair["actions"].append(f"CLUSTER ADDSLOTS {slots} on {port}: {e}")
        for attempt in range(2):
            try:
                self.cluster.wait_healthy(timeout=20)
                repair["repaired"] = True
                self.log(f"  repaired: {repair['actions']}")
                return True
            except Exception:
                pass
            for port, state in diag["nodes"].items():
                if state.get("state") != "ok":
                    done = subprocess.run([cli_binary(), "--cluster", "fix", f"{HOST}:{port}", "--cluster-yes"],
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                          timeout=120)
                    repair["actions"].append(f"redis-cli --cluster fix {port}: exit {done.returncode}")
            diag = self.diagnose()
        repair["repaired"] = False
        self.fail(f"cluster not healthy after {what} within {timeout}s ({first_error!r}), nor after "
                  f"repairs {repair['actions']}: {json.dumps(diag)[:1500]}")
        return False

    def diagnose(self):
        """Each live node's cluster_state and own slots, and where its view of slot owners differs
        from the majority's."""
        views, nodes = {}, {}
        for node in self.cluster.nodes:
            if not node.alive:
                nodes[node.port] = {"alive": False}
                continue
            try:
                with node.client(socket_timeout=2) as c:
                    info = c.cluster("INFO")
                    table = node_table(c)
                    role = c.info("replication")
            except Exception as error:
                nodes[node.port] = {"error": repr(error)}
                continue
            owner = {}
            for row in table:
                if "master" in row["flags"]:
                    for slot in row["slots"]:
                        owner[slot] = row["port"]
            views[node.port] = owner
            mine = next((r for r in table if "myself" in r["flags"]), None)
            nodes[node.port] = {"state": info["cluster_state"], "slots_ok": int(info["cluster_slots_ok"]),
                                "known": int(info["cluster_known_nodes"]), "role": role["role"],
                                "link": role.get("master_link_status"),
                                "own_slots": len(mine["slots"]) if mine else None,
                                "flagged": [(r["port"], r["flags"]) for r in table
                                            if {"fail", "fail?"} & set(r["flags"])]}
        majority = {}
        for slot in range(16384):
            votes = Counter(v.get(slot) for v in views.values())
            majority[slot] = votes.most_common(1)[0][0] if votes else None
        missing = defaultdict(list)
        disagree = {}
        for port, owner in views.items():
            diff = [s for s in range(16384) if owner.get(s) != majority[s]]
            if diff:
                disagree[port] = {"slots": diff[:20], "count": len(diff)}
                for s in diff:
                    if majority[s] == port and owner.get(s) is None:
                        missing[port].append(s)
        return {"nodes": nodes, "disagree": disagree, "missing_own_slots": dict(missing)}

    def watch_crashes(self):
        for node in self.cluster.nodes:
            if node.port in self.expected_down or node.alive:
                continue
            code = node.process.returncode if node.process else None
            self.crashes.append({"port": node.port, "code": code, "at": round(time.monotonic() - self.t_start, 3)})
            self.fail(f"node {node.port} died on its own (exit {code}):\n{node.log_tail(40)}")
            self.restart(node)

    # -- faults --
    def cut_replica_link(self, primary, replica):
        """Makes the replica fall behind: it is given credentials the primary refuses
        (masteruser/masterauth of no such user), then the primary drops its link
        (CLIENT KILL TYPE replica); the replica cannot reconnect, so what the primary acknowledges
        from then on, the replica does not have, as with a replica that lags. Returns the ms the
        link has been down when this returns, 100-300 ms later (None if it came back up)."""
        with replica.client() as r:
            r.config_set("masteruser", "chaos-no-such-user")
            r.config_set("masterauth", "chaos-no-such-password")
        with primary.client() as p:
            p.execute_command("CLIENT", "KILL", "TYPE", "replica")
        cut = time.monotonic()
        time.sleep(self.rng.uniform(0.1, 0.3))
        with replica.client() as r:
            if r.info("replication").get("master_link_status") == "down":
                return round((time.monotonic() - cut) * 1000, 1)
        return None

    def restore_replica_link(self, replica):
        with replica.client() as r:
            r.config_set("masterauth", "")
            r.config_set("masteruser", "")

    def fault_lagging_failover(self, f):
        self.fault_hard_failover(f, lagging=True)

    def fault_hard_failover(self, f, lagging=False):
        with_replica = []
        for p in self.cluster.primaries():
            try:
                with_replica.append((p, self.cluster.replica_of(p)))
            except LookupError:
                pass
        primary, replica = self.rng.choice(with_replica)
        slots = self.slots_of(primary)
        keys = self.keys_in(slots)
        f.update(node=primary.port, promoted=replica.port, keys=len(keys))
        if lagging:
            f["replica_cut_ms"] = self.cut_replica_link(primary, replica)
        f["t_kill"], f["wall_kill"] = time.monotonic(), time.time()
        self.kill(primary)

        def link_down():
            with replica.client(socket_timeout=2) as c:
                return c.info("replication").get("master_link_status") == "down"

        try:
            wait_until(link_down, timeout=10, interval=0.005, what="the replica to see its link down")
        except TimeoutError:
            f["link_down_timeout"] = True
        snapshot = self.read_states(replica, keys, readonly=True)
        f["wall_snapshot"] = time.time()
        f["snapshot_ms"] = round((time.monotonic() - f["t_kill"]) * 1000, 1)
        aof_copy = Path(self.workdir) / f"aof-{len(self.faults)}-{primary.port}"
        shutil.copytree(Path(primary.dir) / "appendonlydir", aof_copy / "appendonlydir")
        try:
            wait_for_promotion(self.cluster, replica, timeout=60)
            f["promoted_after_s"] = round(time.monotonic() - f["t_kill"], 3)
        except Exception as error:
            self.fail(f"replica {replica.port} not promoted after kill -9 of {primary.port}: {error!r}")
        if lagging:
            self.restore_replica_link(replica)
        f["t_restart"] = time.monotonic()
        self.restart(primary)
        final, f["wall_load"] = self.load_aof(aof_copy, keys)
        shutil.rmtree(aof_copy, ignore_errors=True)
        f["_snapshot"], f["_final"], f["_keys"] = snapshot, final, keys

    def load_aof(self, folder, keys):
        """Loads a copied AOF folder in a standalone server (module loaded, not a cluster) and reads
        `keys` from it: P's final state of every bucket."""
        server = Server(self.binary, module=MODULE, workdir=str(folder),
                        extra_args=["--appendonly", "yes"])
        try:
            server.start(timeout=60)
            states = self.read_states(server, keys)
            return states, time.time()
        finally:
            server.cleanup()

    def fault_crash_restart(self, f):
        primary = self.rng.choice(self.cluster.primaries())
        f["node"] = primary.port
        t = time.monotonic()
        self.kill(primary)
        self.restart(primary)
        f["down_s"] = round(time.monotonic() - t, 3)
        with primary.client() as c:
            f["still_primary"] = c.info("replication")["role"] == "master"
        if not f["still_primary"]:
            f["note"] = "the replica took over before the restart: an unmeasured hard failover"

    def fault_manual_failover(self, f):
        replica = self.rng.choice(self.cluster.replicas())
        f["node"] = replica.port
        with replica.client() as c:
            f["reply"] = c.execute_command("CLUSTER", "FAILOVER")
        f["promoted_after_s"] = round(wait_for_promotion(self.cluster, replica, timeout=60), 3)

    def fault_reshard(self, f):
        source, target = self.rng.sample(self.cluster.primaries(), 2)
        count = self.rng.randint(2, 24)
        f.update(node=source.port, target=target.port, slots=count)
        done = subprocess.run(
            [cli_binary(), "--cluster", "reshard", f"{HOST}:{source.port}",
             "--cluster-from", self.cluster.node_id(source), "--cluster-to", self.cluster.node_id(target),
             "--cluster-slots", str(count), "--cluster-yes", "--cluster-pipeline", "10"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=180)
        f["returncode"] = done.returncode
        if done.returncode != 0:
            self.fail(f"redis-cli --cluster reshard exited {done.returncode}:\n{done.stdout[-2000:]}")

    def fault_migrateslots(self, f):
        source, target = self.rng.sample(self.cluster.primaries(), 2)
        slots = sorted(self.slots_of(source))
        count = self.rng.randint(2, 16)
        runs = [i for i in range(len(slots) - count + 1) if slots[i + count - 1] - slots[i] == count - 1]
        if not runs:
            count, runs = 1, list(range(len(slots)))
        low = slots[self.rng.choice(runs)]
        high = low + count - 1
        f.update(node=source.port, target=target.port, slots=[low, high])
        with source.client() as s:
            try:
                f["reply"] = s.execute_command("CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", low, high,
                                               "NODE", self.cluster.node_id(target))
            except ResponseError as error:
                f["refused"] = str(error)
                self.fail(f"CLUSTER MIGRATESLOTS refused: {error}")
                return

        def finished():
            owners = {self.cluster.owner(s).port for s in (low, high)}
            return owners == {target.port}

        try:
            wait_until(finished, timeout=120, interval=0.02, what="the slot migration")
        except TimeoutError as error:
            with source.client() as s:
                jobs = s.execute_command("CLUSTER", "GETSLOTMIGRATIONS")
            self.fail(f"CLUSTER MIGRATESLOTS {low}-{high} did not finish: {error!r}; jobs {jobs!r}")

    def fault_restart_node(self, f):
        node = self.rng.choice([n for n in self.cluster.nodes if n.alive])
        with node.client() as c:
            f["role"] = c.info("replication")["role"]
        f["node"] = node.port
        t = time.monotonic()
        self.stop_gracefully(node)
        self.restart(node)
        f["down_s"] = round(time.monotonic() - t, 3)

    def inject(self, kind):
        f = {"kind": kind, "t0": time.monotonic(), "wall0": time.time()}
        self.log(f"fault: {kind}")
        try:
            getattr(self, f"fault_{kind}")(f)
        except Exception as error:
            f["error"] = repr(error)
            self.fail(f"fault {kind} raised {error!r}")
            for node in self.cluster.nodes:  # bring anything we stopped back
                if not node.alive:
                    self.restart(node)
        f["t1"] = time.monotonic()
        self.healthy(kind)
        f["healed_s"] = round(time.monotonic() - f["t0"], 3)
        self.faults.append(f)
        self.log(f"  done in {f['healed_s']} s: " +
                 json.dumps({k: v for k, v in f.items() if not k.startswith(("_", "t", "wall"))}))

    def kinds(self):
        kinds = [k for k in FAULT_KINDS if k != "migrateslots" or self.has_migrateslots]
        if self.args.faults:
            kinds = [k for k in kinds if k in self.args.faults.split(",")]
        return kinds

    # -- the run --
    def run(self):
        self.t_start = time.monotonic()
        args = self.args
        WAIT["ms"] = args.wait_ms if self.mode == "wait" else 0
        self.cluster = Cluster(self.binary, primaries=3, replicas=1, node_timeout=args.node_timeout)
        self.log(f"seed {self.seed}; server {self.version_text.split()[0:3]}; starting the cluster")
        self.cluster.start()
        try:
            self.load = Load(self.cluster, self.buckets, self.units, self.seed, args.rate, args.retry_seconds)
            self.load.start()
            load_started = time.monotonic()
            deadline = load_started + args.duration
            deck = self.kinds()
            self.rng.shuffle(deck)
            time.sleep(min(2.0, args.duration / 10))
            for _ in range(10_000):
                if time.monotonic() >= deadline - 1:
                    break
                kind = deck.pop(0) if deck else self.rng.choice(self.kinds())
                self.inject(kind)
                self.watch_crashes()
                gap = self.rng.uniform(args.gap_min, args.gap_max)
                until = min(deadline, time.monotonic() + gap)
                while time.monotonic() < until:
                    time.sleep(min(0.25, max(0.0, until - time.monotonic())))
                    self.watch_crashes()
            stuck = self.load.stop()
            self.load_seconds = time.monotonic() - load_started
            if stuck:
                self.fail(f"load threads did not stop within 60 s: {stuck}")
            self.log(f"load stopped after {self.load_seconds:.1f} s; checking")
            self.watch_crashes()
            self.healthy("the run", timeout=90)
            self.final_checks()
        finally:
            self.cluster.stop()
        return self.report()

    def final_checks(self):
        # Every bucket readable, through a fresh client.
        client = self.cluster.client(socket_timeout=5)
        unreadable = []
        try:
            for key, b in self.buckets.items():
                try:
                    reply = client.execute_command("SHIELD.inspect", key, b.capacity, b.period)
                    if not (isinstance(reply, list) and len(reply) == 12):
                        unreadable.append((key, reply))
                except Exception as error:
                    unreadable.append((key, repr(error)))
        finally:
            client.close()
        self.unreadable = unreadable
        if unreadable:
            self.fail(f"{len(unreadable)} buckets not readable at the end, e.g. {unreadable[:5]}")
        with self.cluster.live_node().client() as c:
            self.final_state = c.cluster("INFO")["cluster_state"]
        if self.final_state != "ok":
            self.fail(f"cluster_state is {self.final_state} at the end")
        # Every primary's AOF has what it holds: kill -9, restart, compare exactly.
        self.aof_reload = []
        for primary in self.cluster.primaries():
            keys = self.keys_in(self.slots_of(primary))
            before = self.read_states(primary, keys)
            self.kill(primary)
            if not self.restart(primary):
                continue
            # A primary back from a restart refuses commands (CLUSTERDOWN) for about 2 s, until
            # the cluster has had the chance to reconfigure it.
            self.healthy("the final AOF reload", timeout=60)
            after = self.read_states(primary, keys)
            now = int(time.time() * 1000)
            differ = [(k, before[k], after[k]) for k in keys
                      if before[k] != after[k] and not (before[k][1] >= 0 and before[k][1] <= now)]
            self.aof_reload.append({"node": primary.port, "keys": len(keys), "differ": len(differ)})
            if differ:
                self.fail(f"primary {primary.port} restarted from its AOF with {len(differ)} buckets "
                          f"changed, e.g. {differ[:5]}")
        for node in self.cluster.nodes:
            try:
                with open(node.log_path, errors="replace") as fh:
                    for line in fh:
                        if CRASH_PATTERNS.search(line):
                            self.fail(f"node {node.port} log reports a crash: {line.strip()}\n"
                                      f"{node.log_tail(40)}")
                            break
            except OSError:
                pass

    # -- the model check --
    def report(self):
        calls = self.load.calls() if self.load else []
        calls.sort(key=lambda c: c.t0)
        by_key = defaultdict(list)
        for c in calls:
            for k in c.keys():
                by_key[k].append(c)
        problems = []  # (text, excerpt calls)

        # Replies: a number, an array, or a transient error that was retried.
        events, unexpected, bad_replies = Counter(), [], []
        for c in calls:
            events.update(e for e in c.events)
            if c.error is not None:
                if c.error not in TRANSIENT:
                    unexpected.append(c)
                continue
            if not valid_reply(c, self.buckets):
                bad_replies.append(c)
        for c in unexpected[:5]:
            problems.append((f"an error that is not transient: {c.error} {c.text}", context(by_key, c)))
        for c in bad_replies[:5]:
            problems.append((f"a reply that is not what {c.op} replies: {c.reply!r}", context(by_key, c)))

        # Hard failovers: what the promoted replica never saw.
        lost_by_key = Counter()
        failover_figures = []
        for f in self.faults:
            if "_snapshot" not in f:
                continue
            fig = self.measure_loss(f, by_key, lost_by_key, problems)
            failover_figures.append(fig)

        # Over-admission per bucket, over every window.
        over = Counter()
        worst = []
        granted_tokens = refunded_tokens = 0
        for key, b in self.buckets.items():
            ev = events_of(by_key.get(key, []), key)
            granted_tokens += sum(d for _, _, d, _ in ev if d > 0)
            refunded_tokens += -sum(d for _, _, d, _ in ev if d < 0)
            excess, window = max_excess(ev, b.capacity, b.period)
            if excess <= 0:
                continue
            explained = min(excess, lost_by_key.get(key, 0))
            over["hard_failover_loss"] += explained
            over["unexplained"] += excess - explained
            worst.append((excess - explained, excess, key, window))
            if excess > explained:
                first, last = window
                excerpt = [c for c in by_key[key] if first - 1e-9 <= c.t0 <= last + 1e-9]
                problems.append((f"bucket {key} (capacity {b.capacity}, period {b.period} s) granted "
                                 f"{excess} tokens beyond capacity + refill between t={first:.3f} and "
                                 f"t={last:.3f}, of which {explained} are explained by hard failover "
                                 f"loss", excerpt))
        for text, excerpt in problems:
            self.failures.append(text + "\n" + "\n".join(c.line() for c in excerpt[-40:])
                                 + "\n" + self.faults_near(excerpt))

        ops = Counter(c.op for c in calls)
        granted_calls = sum(1 for c in calls if c.error is None and c.op != "SHIELD.inspect"
                            and c.op != "SHIELD.refund" and wrote(c.op, c.reply))
        denied_calls = sum(1 for c in calls if c.error is None and c.op in TAKES
                           and not wrote(c.op, c.reply))
        retries = Counter()
        for r in self.load.retries:
            retries.update(r)
        waits = Counter(("returned_" + str(c.wait)) if c.wait is not None and c.wait >= 0 else "failed"
                        for c in calls if c.wait is not None)
        total_lost = sum(f["lost_acknowledged"] for f in failover_figures)
        result = {
            "mode": self.mode,
            "seed": self.seed,
            "ok": not self.failures,
            "server": self.version_text.split(" sha=")[0],
            "module": MODULE,
            "duration_s": self.args.duration,
            "load_seconds": round(getattr(self, "load_seconds", 0.0), 1),
            "node_timeout_ms": self.args.node_timeout,
            "threads": self.args.threads,
            "buckets": len(self.buckets),
            "calls": len(calls),
            "calls_by_command": dict(ops),
            "calls_per_second": round(len(calls) / max(getattr(self, "load_seconds", 1.0), 1e-9), 1),
            "granted_calls": granted_calls,
            "denied_calls": denied_calls,
            "tokens_granted": granted_tokens,
            "tokens_refunded": refunded_tokens,
            "faults": dict(Counter(f["kind"] for f in self.faults)),
            "fault_log": [{k: v for k, v in f.items() if not k.startswith("_") and k not in ("t0", "t1")}
                          for f in self.faults],
            "redirects_followed": {k: events[k] for k in ("MOVED", "ASK") if events[k]},
            "client_internal_errors": {k: v for k, v in events.items() if k not in ("MOVED", "ASK")},
            "retries_by_driver": dict(retries),
            "abandoned_operations": sum(self.load.abandoned),
            "unexpected_errors": len(unexpected),
            "bad_replies": len(bad_replies),
            "wait": dict(waits) if self.mode == "wait" else None,
            "hard_failovers": failover_figures,
            "lost_tokens_acknowledged": total_lost,
            "lost_tokens_confirmed_by_wait": sum(f["lost_confirmed"] for f in failover_figures),
            "over_admission_tokens": dict(over),
            "aof_loads": dict(self.aof_loads),
            "final_aof_reload": getattr(self, "aof_reload", []),
            "crashes": self.crashes,
            "cluster_repairs": self.repairs,
            "final_cluster_state": getattr(self, "final_state", None),
            "failures": self.failures,
        }
        self.calls_for_dump = calls
        return result

    def measure_loss(self, f, by_key, lost_by_key, problems):
        snap, final, keys = f["_snapshot"], f["_final"], f["_keys"]
        t_kill = f["t_kill"]
        at = int(max(f["wall_snapshot"], f["wall_load"]) * 1000)
        fig = {"kind": f["kind"], "node": f["node"], "promoted": f["promoted"], "keys": len(keys),
               "replica_cut_ms": f.get("replica_cut_ms"),
               "promoted_after_s": f.get("promoted_after_s"), "lost_raw": 0, "lost_acknowledged": 0,
               "lost_confirmed": 0, "keys_with_loss": 0, "in_flight_applied": 0,
               "keys_replica_stricter": 0, "lost_refunds_net": 0, "keys_differing": 0}
        for key in keys:
            b = self.buckets[key]
            r_tokens = tokens_at(*snap[key], b.capacity, b.period, at)
            p_tokens = tokens_at(*final[key], b.capacity, b.period, at)
            if snap[key] != final[key]:
                fig["keys_differing"] += 1
            raw = r_tokens - p_tokens
            if raw < 0:
                # The writes R missed gave back more than they took (refunds): R is stricter than
                # P was, which over-admits nothing.
                fig["keys_replica_stricter"] += 1
                fig["lost_refunds_net"] += -raw
                continue
            if raw == 0:
                continue
            fig["lost_raw"] += raw
            # Calls sent before the kill; those answered were answered by P (node = P's port), or,
            # when redis-py's own retries outlasted the failover, by the promoted replica: those
            # are not in the snapshot nor in P's AOF, and are left out.
            # A call sent a few microseconds after t_kill may still have been answered by P before
            # the signal landed: what P answered before its restart, P answered before it died.
            before = [c for c in by_key.get(key, [])
                      if (c.error is not None and c.t0 <= t_kill)
                      or (c.error is None and c.node == f["node"] and c.t0 <= f["t_restart"])]
            acked = [c for c in before if c.error is None and writes_key(c, key)]
            last = acked[-1] if acked else None
            pending = [c for c in before if c.error is not None and (last is None or c.t0 > last.t0)
                       and c.op != "SHIELD.inspect"]
            taken = sum(take_of(c, key) for c in pending)
            stored = final[key][0]
            applied = last is not None and stored is not None and str(value_after(last, key)) != stored
            lost = max(0, raw - taken) if (applied and taken) else raw
            if applied and taken:
                fig["in_flight_applied"] += 1
            # Acknowledged writes after the last one WAIT confirmed may be lost; anything more is not.
            unconfirmed = 0
            for c in reversed(acked):
                if c.wait == 1:
                    break
                unconfirmed += max(0, take_of(c, key))
            confirmed_lost = max(0, lost - unconfirmed) if self.mode == "wait" else 0
            fig["lost_acknowledged"] += lost
            fig["lost_confirmed"] += confirmed_lost
            fig["keys_with_loss"] += 1 if lost else 0
            lost_by_key[key] += lost
            if confirmed_lost:
                problems.append((f"hard failover of {f['node']}: {confirmed_lost} tokens of {key} that "
                                 f"WAIT confirmed were lost (replica {snap[key]}, primary {final[key]})",
                                 before[-10:]))
        # Writes the killed node acknowledged after its restart, before it learned it had lost its
        # slots: clients with an old slot map could reach it there (none expected).
        fig["acks_by_restarted_old_primary"] = sum(
            1 for c in self.load.calls_since(f["t_restart"]) if c.error is None and c.node == f["node"]
            and c.t1 <= f["t1"] and c.op != "SHIELD.inspect")
        return fig

    def faults_near(self, excerpt):
        if not excerpt:
            return ""
        lo, hi = excerpt[0].t0 - 2, excerpt[-1].t1 + 2
        near = [f for f in self.faults if f["t0"] <= hi and f.get("t1", f["t0"]) >= lo]
        return "  faults around it: " + "; ".join(
            f"{f['kind']} node {f.get('node')} t={f['t0']:.3f}..{f.get('t1', 0):.3f}" for f in near)


def valid_reply(c, buckets):
    r = c.reply
    if c.op == "SHIELD.absorb":
        if isinstance(r, list):
            return verbose_ok(r)
        return isinstance(r, int) and -1 <= r <= buckets[c.args[0]].capacity
    if c.op == "SHIELD.absorb_multi":
        if not isinstance(r, list) or len(r) != 2:
            return False
        if isinstance(r[0], list):
            return all(verbose_ok(x) for x in r)
        return all(isinstance(x, int) and x >= -1 for x in r)
    if c.op == "SHIELD.limit":
        return limit_reply_ok(r, [buckets[k] for k in c.keys()])
    if c.op == "SHIELD.inspect":
        return isinstance(r, list) and verbose_ok(r)
    if c.op == "SHIELD.refund":
        return isinstance(r, int) and 0 <= r <= buckets[c.args[0]].capacity
    return False


LIMIT_POLICY_FIELDS = ["name", "algorithm", "allowed", "remaining", "limit", "window", "reset_after_ms",
                       "retry_after_ms"]


def limit_reply_ok(r, buckets):
    """SHIELD.limit's RESP2 reply for the chaos pair: its four fields, one policy per bucket, each
    policy's remaining within 0..its limit, and violated naming exactly the policies that refused."""
    if not isinstance(r, list) or r[::2] != ["allowed", "retry_after_ms", "violated", "policies"]:
        return False
    fields = dict(zip(r[::2], r[1::2]))
    policies = fields["policies"]
    if not isinstance(policies, list) or len(policies) != len(buckets):
        return False
    refused = []
    for p, b in zip(policies, buckets):
        if not isinstance(p, list) or p[::2] != LIMIT_POLICY_FIELDS:
            return False
        f = dict(zip(p[::2], p[1::2]))
        if f["algorithm"] != "bucket" or f["limit"] != b.capacity or not 0 <= f["remaining"] <= b.capacity:
            return False
        if not f["allowed"]:
            refused.append(f["name"])
    return fields["violated"] == refused and fields["allowed"] == (0 if refused else 1)


def verbose_ok(fields):
    names = ["allowed", "remaining", "capacity", "period", "retry_after_ms", "reset_after_ms"]
    return isinstance(fields, list) and fields[::2] == names and all(isinstance(v, int) for v in fields[1::2])


def key_index(c, key):
    return c.keys().index(key)


def take_of(c, key):
    """Tokens the call asks to take from `key` (negative for a refund)."""
    i = key_index(c, key)
    if c.op == "SHIELD.absorb":
        return int(c.args[3]) if len(c.args) > 3 and c.args[3] != "VERBOSE" else 1
    if c.op == "SHIELD.absorb_multi":
        return int(c.args[4 * i + 3])
    if c.op == "SHIELD.limit":
        return 1  # no COST: one token from every policy
    if c.op == "SHIELD.refund":
        return -int(c.args[3])
    return 0


def writes_key(c, key):
    return c.op in (*TAKES, "SHIELD.refund") and wrote(c.op, c.reply)


def value_after(c, key):
    """The count a successful writing call left in `key`."""
    i = key_index(c, key)
    r = c.reply
    if c.op == "SHIELD.absorb_multi":
        r = r[i]
    if c.op == "SHIELD.limit":
        r = dict(zip(r[::2], r[1::2]))["policies"][i]
    if isinstance(r, list):
        return dict(zip(r[::2], r[1::2]))["remaining"]
    return r


def events_of(calls, key):
    """(start µs, end µs, tokens, call) per call that moved tokens of `key`: + granted, - refunded.
    A refund whose outcome is unknown counts as given back (it may have run)."""
    ev = []
    for c in calls:
        if c.op == "SHIELD.inspect":
            continue
        t = take_of(c, key)
        if c.error is None:
            if c.op == "SHIELD.refund":
                ev.append((int(c.t0 * 1e6), int(c.t1 * 1e6), t, c))
            elif wrote(c.op, c.reply):
                ev.append((int(c.t0 * 1e6), int(c.t1 * 1e6), t, c))
        elif c.op == "SHIELD.refund":
            ev.append((int(c.t0 * 1e6), int(c.t1 * 1e6), t, c))
    return ev


def max_excess(ev, capacity, period_s):
    """The most tokens any window of grants exceeds capacity + refill by, and that window
    (first call's start, last call's end, in monotonic seconds). O(n): for a window from event i to
    event j, net(i..j) * P <= M * P + C * (end_j - start_i + slack); keep the smallest
    G(i-1) * P - C * start_i seen so far."""
    p_us = period_s * 1_000_000
    best = best_start = None
    g = 0
    worst, window = 0, None
    for start, end, delta, _ in ev:
        v = g * p_us - capacity * start
        if best is None or v < best:
            best, best_start = v, start
        g += delta
        if delta <= 0:
            continue
        lhs = g * p_us - capacity * end - best
        excess_scaled = lhs - capacity * p_us - capacity * SLACK_US
        if excess_scaled > 0:
            tokens = -(-excess_scaled // p_us)
            if tokens > worst:
                worst, window = tokens, (best_start / 1e6, end / 1e6)
    return worst, window


def context(by_key, c):
    seq = by_key.get(c.keys()[0], [])
    i = seq.index(c) if c in seq else 0
    return seq[max(0, i - 10):i + 3]


# ---- results -----------------------------------------------------------------------------------

def write_results(results, out, history_paths):
    out.mkdir(parents=True, exist_ok=True)
    (out / "chaos.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    lines = ["# Chaos on the six-node cluster", "",
             f"Measured {results['date']} on {results['machine']}; {results['runs'][0]['server'] if results['runs'] else ''}; "
             f"module {Path(results['runs'][0]['module']).name if results['runs'] else ''}.",
             f"`{results['command']}`; seed {results['seed']}. Three primaries, three replicas, `appendonly yes`, "
             f"cluster-node-timeout {results['runs'][0]['node_timeout_ms'] if results['runs'] else ''} ms.", "",
             "| | " + " | ".join(r["mode"] for r in results["runs"]) + " |",
             "|---|" + "---:|" * len(results["runs"])]

    def row(name, fn):
        lines.append(f"| {name} | " + " | ".join(str(fn(r)) for r in results["runs"]) + " |")

    row("result", lambda r: "pass" if r["ok"] else f"FAIL ({len(r['failures'])})")
    row("load seconds", lambda r: r["load_seconds"])
    row("client threads / buckets", lambda r: f"{r['threads']} / {r['buckets']}")
    row("calls (per second)", lambda r: f"{r['calls']:,} ({r['calls_per_second']:,})")
    row("calls by command", lambda r: ", ".join(f"{k} {v:,}" for k, v in sorted(r["calls_by_command"].items())))
    row("granted calls / denied calls", lambda r: f"{r['granted_calls']:,} / {r['denied_calls']:,}")
    row("tokens granted / refunded", lambda r: f"{r['tokens_granted']:,} / {r['tokens_refunded']:,}")
    row("faults injected", lambda r: ", ".join(f"{k} {v}" for k, v in sorted(r["faults"].items())))
    row("redirects followed", lambda r: ", ".join(f"{k} {v}" for k, v in r["redirects_followed"].items()) or "0")
    row("errors retried inside redis-py", lambda r: ", ".join(f"{k} {v}" for k, v in sorted(r["client_internal_errors"].items())) or "0")
    row("calls retried by the driver", lambda r: ", ".join(f"{k} {v}" for k, v in sorted(r["retries_by_driver"].items())) or "0")
    row("operations abandoned (retry time up)", lambda r: r["abandoned_operations"])
    row("unexpected errors / bad replies", lambda r: f"{r['unexpected_errors']} / {r['bad_replies']}")
    row("WAIT replies", lambda r: ", ".join(f"{k} {v}" for k, v in sorted((r["wait"] or {}).items())) or "n/a")
    def per(r, kind, field):
        return ", ".join(str(f[field]) for f in r["hard_failovers"] if f["kind"] == kind) or "none"

    row("hard failovers (kill -9): promoted after (s)", lambda r: per(r, "hard_failover", "promoted_after_s"))
    row("hard failovers (kill -9): tokens lost, acknowledged", lambda r: per(r, "hard_failover", "lost_acknowledged"))
    row("lagging failovers: replica link down before the kill (ms)", lambda r: per(r, "lagging_failover", "replica_cut_ms"))
    row("lagging failovers: tokens lost, acknowledged", lambda r: per(r, "lagging_failover", "lost_acknowledged"))
    row("of them confirmed by WAIT (must be 0)", lambda r: r["lost_tokens_confirmed_by_wait"] if r["mode"] == "wait" else "n/a")
    row("over-admission: hard failover loss", lambda r: r["over_admission_tokens"].get("hard_failover_loss", 0))
    row("over-admission: unexplained (must be 0)", lambda r: r["over_admission_tokens"].get("unexplained", 0))
    row("AOF loads (restarts)", lambda r: r["aof_loads"].get("loaded", 0))
    row("crashes not caused by the driver", lambda r: len(r["crashes"]))
    row("Redis Cluster repairs needed (see cluster_repairs)", lambda r: len(r.get("cluster_repairs", [])))
    row("final cluster_state", lambda r: r["final_cluster_state"])
    lines += ["", "Over-admission is tokens granted beyond capacity + refill over some window of a bucket's "
              "history; the tokens lost at a hard failover are grants the killed primary acknowledged that "
              "its promoted replica never received (bench/chaos.py explains how each is measured)."]
    (out / "chaos.md").write_text("\n".join(lines) + "\n")


def dump_history(path, chaos, calls):
    with gzip.open(path, "wt") as f:
        for fault in chaos.faults:
            f.write(json.dumps({"fault": {k: v for k, v in fault.items() if not k.startswith("_")}},
                               default=str) + "\n")
        for c in calls:
            f.write(json.dumps(c.as_dict(), default=str) + "\n")


def run_mode(args, mode, seed, out_dir=None):
    """Runs one mode; returns its result dict (result['failures'] empty when every check passed)."""
    workdir = tempfile.mkdtemp(prefix=f"shield-chaos-{mode}-")
    chaos = Chaos(args, mode, seed, workdir)
    try:
        result = chaos.run()
    except BaseException as error:
        result = chaos.report() if chaos.load else {"mode": mode, "seed": seed, "failures": []}
        result.setdefault("failures", []).append(f"the run raised {error!r}")
        result["ok"] = False
        if isinstance(error, KeyboardInterrupt):
            raise
    history = Path(workdir) / f"history-{mode}.jsonl.gz"
    dump_history(history, chaos, getattr(chaos, "calls_for_dump", []))
    if result["failures"] or args.keep_history:
        keep = Path(args.history_dir or tempfile.gettempdir()) / f"chaos-history-{mode}-{seed}.jsonl.gz"
        keep.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(history, keep)
        result["history_file"] = str(keep)
    shutil.rmtree(workdir, ignore_errors=True)
    return result


def failure_text(result):
    text = [f"chaos {result['mode']} failed; replay with --seed {result['seed']} --mode {result['mode']}"]
    if result.get("history_file"):
        text.append(f"full history: {result['history_file']}")
    for i, f in enumerate(result["failures"][:8]):
        text.append(f"--- failure {i + 1} of {len(result['failures'])} (seed {result['seed']}):\n{f}")
    return "\n".join(text)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Chaos on a six-node Shield cluster (see the docstring).")
    p.add_argument("--duration", type=float, default=600, help="seconds of load per mode (default 600)")
    p.add_argument("--mode", choices=["nowait", "wait", "both"], default="both")
    p.add_argument("--seed", type=int, default=None, help="default: random, printed")
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--buckets", type=int, default=3000)
    p.add_argument("--rate", type=float, default=1000, help="calls per second over all threads (0: no cap)")
    p.add_argument("--wait-ms", type=int, default=200, help="WAIT timeout in wait mode")
    p.add_argument("--node-timeout", type=int, default=3000, help="cluster-node-timeout, ms")
    p.add_argument("--gap-min", type=float, default=1.0, help="least seconds between faults")
    p.add_argument("--gap-max", type=float, default=4.0, help="most seconds between faults")
    p.add_argument("--heal-seconds", type=float, default=30, help="longest wait for health after a fault")
    p.add_argument("--retry-seconds", type=float, default=30, help="longest retrying of one operation")
    p.add_argument("--faults", default=None, help="comma-separated kinds (default: all the server supports)")
    p.add_argument("--server", default=None, help="server binary path or kind (default: redis-server)")
    p.add_argument("--out", default=str(RESULTS), help="folder for chaos.json and chaos.md")
    p.add_argument("--no-results", action="store_true", help="write no results files")
    p.add_argument("--keep-history", action="store_true", help="keep each mode's history file")
    p.add_argument("--history-dir", default=None,
                   help="where a kept history goes (default: the system's temporary folder)")
    return p.parse_args(argv)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv=None):
    # SIGTERM, and SIGINT even when started in the background (where it is ignored by default),
    # stop the run through its cleanup: every server is stopped by its PID.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    args = parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**9)
    print(f"chaos: seed {seed} (replay with --seed {seed})", flush=True)
    modes = ["nowait", "wait"] if args.mode == "both" else [args.mode]
    started = time.monotonic()
    runs = [run_mode(args, mode, seed, None if args.no_results else args.out) for mode in modes]
    command = "/usr/bin/python3 bench/chaos.py " + " ".join(argv if argv is not None else sys.argv[1:])
    results = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "machine": f"{platform.machine()}, {os.cpu_count()} cores",
               "command": command.strip(), "seed": seed,
               "seconds": round(time.monotonic() - started, 1), "runs": runs}
    if not args.no_results:
        write_results(results, Path(args.out), None)
        print((Path(args.out) / "chaos.md").read_text())
    ok = True
    for r in runs:
        if r["failures"]:
            ok = False
            print(failure_text(r), file=sys.stderr)
    print(f"chaos: {'pass' if ok else 'FAIL'} in {results['seconds']} s (seed {seed})", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
