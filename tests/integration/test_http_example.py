"""examples/http_ratelimit.py turns SHIELD.absorb VERBOSE into the IETF RateLimit headers and 429s,
and limits each client by its address unless it sends an API key the server knows."""

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
from shield_servers import HOST, REPO, free_port, wait_until

EXAMPLE = REPO / "examples" / "http_ratelimit.py"
CAPACITY, PERIOD = 2, 2  # one token back every second


class Example:
    """The example server as a subprocess, pointed at a Shield server."""

    def __init__(self, redis_port, tmp_path, algorithm="bucket", period=PERIOD):
        self.algorithm = algorithm
        self.port = free_port()
        # The API keys this server knows (given with --api-keys); the first answers readiness probes.
        self.keys = [f"key-{uuid.uuid4().hex}" for _ in range(4)]
        self.log = open(tmp_path / "example.log", "wb")
        self.process = subprocess.Popen(
            [sys.executable, str(EXAMPLE), "--port", str(self.port),
             "--redis-url", f"redis://{HOST}:{redis_port}", "--algorithm", algorithm,
             "--capacity", str(CAPACITY), "--period", str(period), "--api-keys", ",".join(self.keys)],
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


@pytest.fixture(params=["bucket", "window", "gcra"])
def example(request, shield, tmp_path):
    """The example on each algorithm whose period is a number of seconds."""
    running = Example(shield.port, tmp_path, algorithm=request.param)
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


def ratelimit(headers):
    """The RateLimit header's r= and t= as integers."""
    match = re.fullmatch(r'"default";r=(\d+);t=(\d+)', headers["RateLimit"])
    assert match, headers["RateLimit"]
    return int(match[1]), int(match[2])


def test_requests_within_capacity_get_200_with_the_ratelimit_headers(example):
    key = example.keys[1]
    for remaining in (1, 0):
        status, headers = example.get(api_key=key)
        assert status == 200
        assert headers["RateLimit-Policy"] == f'"default";q={CAPACITY};w={PERIOD}'
        r, t = ratelimit(headers)
        assert r == remaining
        # A bucket or GCRA is full again within one period; a sliding window forgets a call
        # within two windows.
        assert 1 <= t <= (2 * PERIOD if example.algorithm == "window" else PERIOD)
        assert headers["Retry-After"] is None


def test_a_request_over_capacity_gets_429_with_retry_after_and_succeeds_after_waiting_it(example):
    key = example.keys[1]
    assert [example.get(api_key=key)[0] for _ in range(CAPACITY)] == [200] * CAPACITY
    status, headers = example.get(api_key=key)
    assert status == 429
    assert headers["RateLimit-Policy"] == f'"default";q={CAPACITY};w={PERIOD}'
    assert ratelimit(headers)[0] == 0
    retry_after = int(headers["Retry-After"])
    assert 1 <= retry_after <= (2 * PERIOD if example.algorithm == "window" else PERIOD)
    time.sleep(retry_after)  # what a client is told to do: the wait is the thing under test
    status, headers = example.get(api_key=key)
    assert status == 200
    assert headers["Retry-After"] is None


def test_each_known_api_key_has_its_own_bucket(example):
    first, second = example.keys[1], example.keys[2]
    for _ in range(CAPACITY):
        example.get(api_key=first)
    assert example.get(api_key=first)[0] == 429
    assert example.get(api_key=second)[0] == 200


def test_without_an_api_key_the_limit_is_the_client_address(example, shield):
    status, headers = example.get()
    assert status == 200
    assert ratelimit(headers)[0] == CAPACITY - 1
    with shield.client() as c:
        assert c.exists(f"ratelimit:ip:{HOST}") == 1
        assert 0 < c.pttl(f"ratelimit:ip:{HOST}") <= 2 * PERIOD * 1000


def test_random_unknown_api_keys_do_not_dodge_the_limit_of_the_address(example, shield):
    statuses = [example.get(api_key=f"made-up-{uuid.uuid4().hex}")[0] for _ in range(CAPACITY + 3)]
    assert statuses == [200] * CAPACITY + [429] * 3
    with shield.client() as c:
        assert c.exists(f"ratelimit:ip:{HOST}") == 1
        assert not [k for k in c.keys("ratelimit:*") if "made-up" in k]


def test_a_known_api_key_keeps_its_own_limit_when_its_address_is_limited(example):
    for _ in range(CAPACITY):
        example.get()
    assert example.get()[0] == 429
    assert example.get(api_key=f"made-up-{uuid.uuid4().hex}")[0] == 429
    assert example.get(api_key=example.keys[1])[0] == 200


def test_the_limit_of_a_known_api_key_is_named_by_its_digest_not_by_the_key(example, shield):
    assert example.get(api_key=example.keys[1])[0] == 200
    digest = hashlib.sha256(example.keys[1].encode()).hexdigest()[:32]
    with shield.client() as c:
        assert c.exists(f"ratelimit:key:{digest}") == 1
        assert not [k for k in c.keys("*") if example.keys[1] in k]


def test_the_quota_answers_429_until_the_end_of_the_hour(shield, tmp_path):
    running = Example(shield.port, tmp_path, algorithm="quota", period="HOUR")
    try:
        running.wait_ready()
        key = running.keys[1]
        assert [running.get(api_key=key)[0] for _ in range(CAPACITY)] == [200] * CAPACITY
        status, headers = running.get(api_key=key)
        assert status == 429
        assert headers["RateLimit-Policy"] == f'"default";q={CAPACITY};w=3600'
        seconds_left = 3600 - int(time.time()) % 3600
        assert abs(int(headers["Retry-After"]) - seconds_left) <= 2
        assert abs(ratelimit(headers)[1] - seconds_left) <= 2
    finally:
        running.stop()


def test_when_redis_is_down_the_example_answers_503(example, shield):
    shield.kill()
    assert example.get(api_key=example.keys[1])[0] == 503
