"""The benchmark's workloads: each command as sent, the keys it runs on, and how they are prepared.

Shared by the throughput benchmark (bench/bench.py) and the callgrind counts (shield_instructions,
bench/instructions.py). tests/support/ is the one place for Python that tests and bench/ share:
tests reach it through their conftest, bench/'s commands put it on sys.path; nothing imports bench/.
"""

import os
from pathlib import Path

BIG = 1_000_000_000_000  # a capacity no benchmark run can exhaust
YEAR = 365 * 24 * 3600  # the refund buckets' period: they refill BIG tokens a year

# name -> (command words for redis-benchmark, INFO commandstats entry, keys to prepare)
WORKLOADS = {
    "SET": (["SET", "k:__rand_int__", "v"], "set", None),
    "SET PX": (["SET", "k:__rand_int__", "v", "PX", "60000"], "set", None),
    "SET PX new": (["SET", "n:__rand_int__", "v", "PX", "60000"], "set", "new"),
    "INCR": (["INCR", "i:__rand_int__"], "incr", None),
    "absorb new": (["SHIELD.absorb", "n:__rand_int__", str(BIG), "60", "1"], "SHIELD.absorb", "new"),
    "absorb allowed": (["SHIELD.absorb", "a:__rand_int__", str(BIG), "60", "1"], "SHIELD.absorb", "allowed"),
    "absorb denied": (["SHIELD.absorb", "d:__rand_int__", "1", "3600", "1"], "SHIELD.absorb", "denied"),
    "Lua bucket": (["EVALSHA", "{bucket}", "1", "l:__rand_int__", str(BIG), "60", "1"], "evalsha", None),
    "Lua GCRA": (["EVALSHA", "{gcra}", "1", "g:__rand_int__", str(BIG), "60", "1"], "evalsha", None),
    # The floor module's commands (bench/floor), on live keys: FLOOR.write on its own keys, which
    # hold its value; FLOOR.read (a write command's read, the key opened read+write: the floor of
    # a denied absorb) on the denied buckets; FLOOR.read_ro and FLOOR.call_read (a read-only
    # command's reads: the floors of SHIELD.inspect) on the live buckets SHIELD.inspect reads.
    "floor write": (["FLOOR.write", "f:__rand_int__", "1", "1", "1"], "FLOOR.write", "floor"),
    "floor read": (["FLOOR.read", "d:__rand_int__", "1", "1", "1"], "FLOOR.read", "denied"),
    "floor read ro": (["FLOOR.read_ro", "a:__rand_int__", "1", "1", "1"], "FLOOR.read_ro", "allowed"),
    "floor call read": (["FLOOR.call_read", "a:__rand_int__", "1", "1", "1"], "FLOOR.call_read", "allowed"),
    "absorb VERBOSE": (["SHIELD.absorb", "a:__rand_int__", str(BIG), "60", "1", "VERBOSE"], "SHIELD.absorb",
                       "allowed"),
    "inspect": (["SHIELD.inspect", "a:__rand_int__", str(BIG), "60", "1"], "SHIELD.inspect", "allowed"),
    # redis-benchmark draws a number for each __rand_int__, so the two keys have different numbers;
    # the suffixes keep them apart when the numbers match.
    "absorb_multi 2": (["SHIELD.absorb_multi", "{m:__rand_int__}:a", str(BIG), "60", "1",
                        "{m:__rand_int__}:b", str(BIG), "60", "1"], "SHIELD.absorb_multi", "multi"),
    "refund": (["SHIELD.refund", "r:__rand_int__", str(BIG), str(YEAR), "1"], "SHIELD.refund", "refund"),
    "absorb BURST": (["SHIELD.absorb", "b:__rand_int__", str(BIG), "60", "1", "BURST", str(2 * BIG)],
                     "SHIELD.absorb", "burst"),
    # The other algorithms, on live keys. CL.THROTTLE at one token a minute with a huge burst:
    # a fast rate would let every key expire between calls.
    "CL.THROTTLE allowed": (["CL.THROTTLE", "t:__rand_int__", str(BIG), "1", "60", "1"], "cl.throttle", "throttle"),
    "CL.THROTTLE denied": (["CL.THROTTLE", "u:__rand_int__", "0", "1", "3600"], "cl.throttle", "throttled"),
    "gcra allowed": (["SHIELD.gcra", "g:__rand_int__", "1", "60", "1", "BURST", str(BIG)], "SHIELD.gcra", "gcra"),
    "window allowed": (["SHIELD.window", "w:__rand_int__", str(BIG), "3600", "1"], "SHIELD.window", "window"),
    "quota allowed": (["SHIELD.quota", "q:__rand_int__", str(BIG), "MONTH", "1"], "SHIELD.quota", "quota"),
    # SHIELD.limit on the live buckets: one policy (to compare with absorb VERBOSE, a reply of
    # similar size), two (with absorb_multi's keys), and two with the headers.
    "limit 1": (["SHIELD.limit", "1", "a:__rand_int__", "p", "BUCKET", str(BIG), "60"], "SHIELD.limit",
                "allowed"),
    "limit 2": (["SHIELD.limit", "2", "{m:__rand_int__}:a", "{m:__rand_int__}:b", "p", "BUCKET", str(BIG), "60",
                 "q", "BUCKET", str(BIG), "60"], "SHIELD.limit", "multi"),
    "limit 2 HEADERS": (["SHIELD.limit", "2", "{m:__rand_int__}:a", "{m:__rand_int__}:b", "p", "BUCKET", str(BIG),
                         "60", "q", "BUCKET", str(BIG), "60", "HEADERS"], "SHIELD.limit", "multi"),
    # Settling one token back on the half-empty refund buckets: every call writes.
    "settle": (["SHIELD.settle", "r:__rand_int__", str(BIG), str(YEAR), "2", "1"], "SHIELD.settle", "refund"),
}

PREPARE = {
    # Every key of the space holds a live bucket that will keep granting.
    "allowed": ("a:%012d", f"redis.call('SHIELD.absorb', key, '{BIG}', '60', '1')"),
    # Every key of the space holds an exhausted bucket that refills in an hour.
    "denied": ("d:%012d", "redis.call('SHIELD.absorb', key, '1', '3600', '1')"),
    # Every key holds the floor module's value, so FLOOR.write overwrites it without resizing.
    "floor": ("f:%012d", "redis.call('FLOOR.write', key, '1', '1', '1')"),
    # Two live buckets per number, {m:N}:a and {m:N}:b.
    "multi": ("{m:%012d}", f"redis.call('SHIELD.absorb', key .. ':a', '{BIG}', '60', '1') "
                           f"redis.call('SHIELD.absorb', key .. ':b', '{BIG}', '60', '1')"),
    # Half-empty buckets that take half a year to refill: every refund writes, none fills a bucket.
    "refund": ("r:%012d", f"redis.call('DEL', key) redis.call('SHIELD.absorb', key, '{BIG}', '{YEAR}', '{BIG // 2}')"),
    # Live buckets holding up to twice their capacity.
    "burst": ("b:%012d", f"redis.call('SHIELD.absorb', key, '{BIG}', '60', '1', 'BURST', '{2 * BIG}')"),
    "throttle": ("t:%012d", f"redis.call('CL.THROTTLE', key, '{BIG}', '1', '60')"),
    "throttled": ("u:%012d", "redis.call('CL.THROTTLE', key, '0', '1', '3600')"),
    "gcra": ("g:%012d", f"redis.call('SHIELD.gcra', key, '1', '60', '1', 'BURST', '{BIG}')"),
    "window": ("w:%012d", f"redis.call('SHIELD.window', key, '{BIG}', '3600', '1')"),
    "quota": ("q:%012d", f"redis.call('SHIELD.quota', key, '{BIG}', 'MONTH', '1')"),
}


def prepare_keys(client, kind, keyspace):
    """Puts PREPARE[kind]'s value at keys 0 .. keyspace-1 of its pattern, 50,000 a script call."""
    pattern, call = PREPARE[kind]
    script = (f"for i = tonumber(ARGV[1]), tonumber(ARGV[2]) do local key = string.format('{pattern}', i) "
              f"{call} end return 1")
    for start in range(0, keyspace, 50_000):
        client.eval(script, 0, start, min(keyspace, start + 50_000) - 1)


def needs_floor(names):
    """Whether any of these workloads calls the floor module, or prepares its keys with it."""
    return any(WORKLOADS[name][0][0].upper().startswith("FLOOR.") or WORKLOADS[name][2] == "floor"
               for name in names)


def default_floor(module):
    """Where the CMake build puts the floor module (only with -DSHIELD_BUILD_BENCH=ON), next to the
    Shield module it built; $SHIELD_FLOOR_MODULE overrides."""
    return os.environ.get("SHIELD_FLOOR_MODULE") or str(Path(module).parent / "bench" / "floor" / "libshield_floor.so")
