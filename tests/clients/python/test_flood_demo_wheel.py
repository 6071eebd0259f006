"""The deny cache under a flood (Redis calls counted with INFO commandstats), the demo's contract
(python3 -m redis_shield.demo), and the wheel: built offline, installed into a venv."""

import os
import shutil
import signal
import subprocess
import threading
import urllib.error
import urllib.request
import zipfile

from pyclient_support import CLIENT, client_env, command_calls
from redis_shield import Limiter, Policy
from shield_servers import HOST, free_port, wait_until
from sfparse import ratelimit, ratelimit_policy

PYTHON = "/usr/bin/python3"


def flood(limiter, requests, threads=4):
    outcomes = []

    def work():
        for _ in range(requests // threads):
            outcomes.append(limiter.consume("ip:203.0.113.66").source)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return outcomes


def test_the_deny_cache_saves_nearly_every_redis_call_of_a_flood_from_one_client(url, server):
    policies = [Policy.bucket("per-minute", 10, 60)]
    with server.client() as c:
        c.config_resetstat()
        uncached = flood(Limiter.from_url(url, policies, deny_cache=None), 2000)
        without_cache = command_calls(c, "SHIELD.limit")
        c.flushall()
        c.config_resetstat()
        cached = flood(Limiter.from_url(url, policies), 2000)
        with_cache = command_calls(c, "SHIELD.limit")
    assert without_cache == 2000 and uncached.count("redis") == 2000
    assert cached.count("deny-cache") >= 1980
    assert with_cache == cached.count("redis") and with_cache <= 20  # 10 allowed, the first refusals
    print(f"flood of 2000 requests: {without_cache} SHIELD.limit calls without the deny cache, {with_cache} with it")


def get(port, path="/"):
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=10) as reply:
            return reply.status, reply.headers, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_the_demo_answers_ten_requests_then_refuses_with_429_taking_nothing_from_the_daily_quota(url, server,
                                                                                                  tmp_path):
    port = free_port()
    log = open(tmp_path / "demo.log", "wb")
    demo = subprocess.Popen([PYTHON, "-m", "redis_shield.demo", "--port", str(port), "--redis-url", url],
                            env=client_env(), stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        wait_until(lambda: demo.poll() is None and get(port, "/ready-probe")[0] == 404, what="the demo to answer")
        replies = [get(port) for _ in range(12)]
    finally:
        os.kill(demo.pid, signal.SIGTERM)
        demo.wait(timeout=10)
        log.close()
    lines = [f"{status} {headers['RateLimit']} Retry-After={headers.get('Retry-After')} {body.decode().strip()[:40]}"
             for status, headers, body in replies]
    print("\n".join(lines))
    statuses = [status for status, _, _ in replies]
    assert statuses[:10] == [200] * 10 and set(statuses[10:]) == {429}
    assert all(body == b"hello\n" for _, _, body in replies[:10])
    for status, headers, _ in replies:
        assert ratelimit_policy(headers["RateLimit-Policy"]) == {"per-second": {"q": 10, "w": 2},
                                                                 "daily": {"q": 1000, "w": 86400}}
        ratelimit(headers["RateLimit"])
    assert ratelimit(replies[9][1]["RateLimit"])["per-second"]["r"] == 0
    assert replies[10][1]["Retry-After"] == "1"
    daily = [ratelimit(headers["RateLimit"])["daily"]["r"] for _, headers, _ in replies]
    assert daily == list(range(999, 989, -1)) + [990, 990]  # the 429s took nothing from the day's 1000
    with server.client() as c:
        assert c.get("shield:{ip:127.0.0.1}:daily") == "10"


def test_the_wheel_builds_offline_and_installs_into_a_venv_with_system_site_packages(tmp_path):
    source = tmp_path / "src"
    shutil.copytree(CLIENT, source, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    wheels = tmp_path / "wheels"
    env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    subprocess.run([PYTHON, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels),
                    str(source)], check=True, env=env, capture_output=True, timeout=300)
    [wheel] = list(wheels.glob("redis_shield-*.whl"))
    assert "redis_shield/limiter.py" in zipfile.ZipFile(wheel).namelist()
    venv = tmp_path / "venv"
    subprocess.run([PYTHON, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=120)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--no-deps", str(wheel)],
                   check=True, env=env, capture_output=True, timeout=300)
    probe = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import redis_shield, redis; print(redis_shield.__file__, redis.__version__)"],
                           check=True, capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert str(venv) in probe.stdout  # the installed copy, with Debian's redis-py
