"""examples/http_ratelimit.py decides a token bucket with a burst and a daily quota in one
SHIELD.limit call with HEADERS, sends the reply's RateLimit headers on every response and 429 with
Retry-After when either limit refuses, and limits each client by its address unless it sends an
API key the server knows."""

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import pytest
from shield_servers import HOST, REPO, each_started, free_port, wait_until

EXAMPLE = REPO / "examples" / "http_ratelimit.py"
# The bucket refills one request a second and holds two: q=2, and w=2 seconds from empty to full.
CAPACITY, PERIOD, BURST, DAILY = 1, 1, 2, 1000
DAY = 86400


class Example:
    """The example server as a subprocess, pointed at a Shield server."""

    def __init__(self, redis_port, tmp_path, capacity=CAPACITY, period=PERIOD, burst=BURST, daily=DAILY):
        self.port = free_port()
        # The API keys this server knows (given with --api-keys); the first answers readiness probes.
        self.keys = [f"key-{uuid.uuid4().hex}" for _ in range(4)]
        self.log = open(tmp_path / f"example-{self.port}.log", "wb")
        self.process = subprocess.Popen(
            [sys.executable, str(EXAMPLE), "--port", str(self.port),
             "--redis-url", f"redis://{HOST}:{redis_port}", "--capacity", str(capacity),
             "--period", str(period), "--burst", str(burst), "--daily", str(daily),
             "--api-keys", ",".join(self.keys)],
            stdout=self.log, stderr=subprocess.STDOUT)

    def get(self, api_key=None):
        """(status, headers) of GET /, with an X-Api-Key header when given."""
        request = urllib.request.Request(f"http://{HOST}:{self.port}/")
        if api_key:
            request.add_header("X-Api-Key", api_key)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.headers
        except urllib.error.HTTPError as error:
            return error.code, error.headers

    def wait_ready(self):
        def answers():
            if self.process.poll() is not None:
                raise RuntimeError(f"the example exited with {self.process.returncode}")
            return self.get(api_key=self.keys[0])[0] in (200, 429)

        wait_until(answers, timeout=15, what="the example to answer HTTP")
        return self

    def stop(self):
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.log.close()


@pytest.fixture
def shield(make_server):
    return make_server()


@pytest.fixture
def start(shield, tmp_path):
    """Starts the example with the given limits; stops every one started."""
    with each_started(lambda **limits: Example(shield.port, tmp_path, **limits), Example.wait_ready,
                      Example.stop) as make:
        yield make


@pytest.fixture
def example(start):
    return start()


def items(value):
    """A RateLimit or RateLimit-Policy header (a structured-field list) as {name: {param: int}}."""
    parsed = {}
    for item in value.split(", "):
        match = re.fullmatch(r'"([a-z]+)"((?:;[a-z]=\d+)+)', item)
        assert match, f"not a list item: {item!r} in {value!r}"
        parsed[match[1]] = {k: int(v) for k, v in re.findall(r";([a-z])=(\d+)", match[2])}
    return parsed


def policy_header(name, daily=DAILY):
    return f'"{name}";q={BURST};w={BURST * PERIOD // CAPACITY}, "day";q={daily};w={DAY}'


def seconds_to_utc_midnight():
    return DAY - int(time.time()) % DAY


def test_requests_within_both_limits_get_200_with_both_policies_in_the_headers(example):
    key = example.keys[1]
    for left in (1, 0):
        status, headers = example.get(api_key=key)
        assert status == 200
        assert headers["RateLimit-Policy"] == policy_header("key")
        state = items(headers["RateLimit"])
        assert list(state) == ["key", "day"]
        assert state["key"]["r"] == left and 1 <= state["key"]["t"] <= 2
        assert state["day"]["r"] == DAILY - 2 + left
        assert abs(state["day"]["t"] - seconds_to_utc_midnight()) <= 2
        assert headers["Retry-After"] is None


def test_a_request_over_the_burst_gets_429_with_retry_after_and_succeeds_after_waiting_it(example):
    key = example.keys[1]
    assert [example.get(api_key=key)[0] for _ in range(BURST)] == [200] * BURST
    status, headers = example.get(api_key=key)
    assert status == 429
    assert headers["RateLimit-Policy"] == policy_header("key")
    state = items(headers["RateLimit"])
    # Refused: nothing was taken from the daily quota either.
    assert state["key"]["r"] == 0 and state["day"]["r"] == DAILY - BURST
    retry_after = int(headers["Retry-After"])
    assert retry_after == PERIOD // CAPACITY  # one request back
    time.sleep(retry_after)  # what a client is told to do: the wait is the thing under test
    status, headers = example.get(api_key=key)
    assert status == 200
    assert headers["Retry-After"] is None
    assert items(headers["RateLimit"])["day"]["r"] == DAILY - BURST - 1


def test_the_daily_quota_refuses_until_utc_midnight_while_the_bucket_still_allows(start):
    example = start(capacity=1, period=1000, burst=100, daily=2)  # the bucket barely refills
    key = example.keys[1]
    assert [example.get(api_key=key)[0] for _ in range(2)] == [200] * 2
    status, headers = example.get(api_key=key)
    assert status == 429
    assert headers["RateLimit-Policy"] == '"key";q=100;w=100000, "day";q=2;w=86400'
    state = items(headers["RateLimit"])
    assert state["day"]["r"] == 0 and state["key"]["r"] == 98  # the bucket gave nothing up
    assert abs(int(headers["Retry-After"]) - seconds_to_utc_midnight()) <= 2
    assert abs(state["day"]["t"] - seconds_to_utc_midnight()) <= 2


def test_each_known_api_key_has_its_own_limits(example):
    first, second = example.keys[1], example.keys[2]
    for _ in range(BURST):
        example.get(api_key=first)
    assert example.get(api_key=first)[0] == 429
    status, headers = example.get(api_key=second)
    assert status == 200
    assert items(headers["RateLimit"])["day"]["r"] == DAILY - 1


def test_without_an_api_key_the_limits_are_the_client_address(example, shield):
    status, headers = example.get()
    assert status == 200
    assert headers["RateLimit-Policy"] == policy_header("ip")
    assert {name: item["r"] for name, item in items(headers["RateLimit"]).items()} == \
        {"ip": BURST - 1, "day": DAILY - 1}
    bucket, day = f"ratelimit:{{ip:{HOST}}}:bucket", f"ratelimit:{{ip:{HOST}}}:day"
    with shield.client() as c:
        assert c.mget(bucket, day) == [str(BURST - 1), "1"]
        assert 0 < c.pttl(bucket) <= BURST * PERIOD // CAPACITY * 1000
        assert 0 < c.pttl(day) <= DAY * 1000


def test_random_unknown_api_keys_do_not_dodge_the_limit_of_the_address(example, shield):
    statuses = [example.get(api_key=f"made-up-{uuid.uuid4().hex}")[0] for _ in range(BURST + 3)]
    assert statuses == [200] * BURST + [429] * 3
    with shield.client() as c:
        assert c.exists(f"ratelimit:{{ip:{HOST}}}:bucket") == 1
        assert not [k for k in c.keys("ratelimit:*") if "made-up" in k]


def test_a_known_api_key_keeps_its_own_limit_when_its_address_is_limited(example):
    for _ in range(BURST):
        example.get()
    assert example.get()[0] == 429
    assert example.get(api_key=f"made-up-{uuid.uuid4().hex}")[0] == 429
    assert example.get(api_key=example.keys[1])[0] == 200


def test_the_limits_of_a_known_api_key_are_named_by_its_digest_not_by_the_key(example, shield):
    assert example.get(api_key=example.keys[1])[0] == 200
    digest = hashlib.sha256(example.keys[1].encode()).hexdigest()[:32]
    with shield.client() as c:
        assert c.exists(f"ratelimit:{{key:{digest}}}:bucket", f"ratelimit:{{key:{digest}}}:day") == 2
        assert not [k for k in c.keys("*") if example.keys[1] in k]


def test_when_redis_is_down_the_example_answers_503(example, shield):
    shield.kill()
    assert example.get(api_key=example.keys[1])[0] == 503
