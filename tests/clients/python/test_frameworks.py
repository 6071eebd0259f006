"""The middleware in real Flask, Django and FastAPI/Starlette applications, against a real server:
keys (client address with trusted proxies, a header, the user), exempt routes, per-route policies,
cost from the request, the headers on every response, 429 and 503 with problem+json bodies."""

import json
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request

import django
import flask
import pytest
from django.conf import settings
from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, AuthenticationBackend, SimpleUser
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from pyclient_support import client_env
from redis_shield import AsyncLimiter, HttpRateLimit, Limiter, Policy, client_ip, first_of, header, user
from redis_shield.asgi import ShieldMiddleware as ASGIShield
from redis_shield.flask import Shield
from redis_shield.wsgi import ShieldMiddleware as WSGIShield
from shield_servers import HOST, free_port, wait_until
from sfparse import ratelimit, ratelimit_policy

THREE = [Policy.bucket("per-minute", 3, 60)]


def assert_refused(status, headers, body, policies):
    assert status == 429
    assert int(headers["Retry-After"]) >= 1
    assert headers["Content-Type"] == "application/problem+json"
    problem = json.loads(body)
    assert problem["status"] == 429 and problem["violated_policies"] == policies
    ratelimit_policy(headers["RateLimit-Policy"]) and ratelimit(headers["RateLimit"])


# ---- Flask -------------------------------------------------------------------------------------

def flask_app(url, **options):
    app = flask.Flask("flask_test")

    @app.before_request
    def login():  # a stand-in for a login layer (registered before Shield): the user a test header names
        flask.g.user = flask.request.headers.get("X-Test-User")

    shield = Shield(app, Limiter.from_url(url, THREE), **options)

    @app.get("/")
    def index():
        return "hello"

    @app.get("/health")
    @shield.exempt
    def health():
        return "ok"

    @app.post("/upload")
    @shield.limit(Policy.bucket("bytes", 1000, 60), cost=lambda info: int(info.headers.get("content-length", 1)))
    def upload():
        return "stored"

    @app.get("/me")
    def me():
        return "me"

    return app


def test_flask_limits_each_client_address_and_refuses_with_a_problem_body(url):
    client = flask_app(url).test_client()
    replies = [client.get("/", environ_base={"REMOTE_ADDR": "192.0.2.1"}) for _ in range(4)]
    assert [r.status_code for r in replies] == [200, 200, 200, 429]
    assert ratelimit(replies[0].headers["RateLimit"]) == {"per-minute": {"r": 2, "t": 20}}
    assert ratelimit_policy(replies[0].headers["RateLimit-Policy"]) == {"per-minute": {"q": 3, "w": 60}}
    assert_refused(429, replies[3].headers, replies[3].data, ["per-minute"])
    assert client.get("/", environ_base={"REMOTE_ADDR": "192.0.2.2"}).status_code == 200


def test_flask_exempt_routes_carry_no_headers_and_per_route_policies_take_the_requests_cost(url):
    client = flask_app(url).test_client()
    assert "RateLimit" not in client.get("/health").headers
    first = client.post("/upload", data=b"x" * 600)
    assert ratelimit(first.headers["RateLimit"]) == {"bytes": {"r": 400, "t": 36}}
    second = client.post("/upload", data=b"x" * 600)
    assert_refused(second.status_code, second.headers, second.data, ["bytes"])


def test_flask_keys_by_the_user_when_one_is_logged_in(url):
    client = flask_app(url, key=first_of(user(), client_ip())).test_client()
    for _ in range(3):
        assert client.get("/me", headers={"X-Test-User": "alice"}).status_code == 200
    assert client.get("/me", headers={"X-Test-User": "alice"}).status_code == 429
    assert client.get("/me", headers={"X-Test-User": "bob"}).status_code == 200
    assert client.get("/me").status_code == 200  # anonymous: by address


def test_x_forwarded_for_counts_only_from_a_trusted_proxy(url):
    app = flask_app(url, key=client_ip(trusted_proxies=["10.0.0.0/8"]))
    client = app.test_client()
    proxy = {"REMOTE_ADDR": "10.1.2.3"}
    for spoof in ("1.1.1.1", "2.2.2.2", "3.3.3.3"):  # each a new client behind the proxy
        reply = client.get("/", environ_base=proxy, headers={"X-Forwarded-For": f"{spoof}, 10.9.9.9"})
        assert reply.headers["RateLimit"] == '"per-minute";r=2;t=20'
    stranger = {"REMOTE_ADDR": "198.51.100.7"}  # not a proxy: its X-Forwarded-For is ignored
    codes = [client.get("/", environ_base=stranger, headers={"X-Forwarded-For": f"5.5.5.{n}"}).status_code
             for n in range(4)]
    assert codes == [200, 200, 200, 429]


def test_a_header_key_counts_only_known_values(url):
    app = flask_app(url, key=first_of(header("X-Api-Key", known={"good-key"}), client_ip()))
    client = app.test_client()
    made_up = [client.get("/", headers={"X-Api-Key": f"made-up-{n}"}).status_code for n in range(4)]
    assert made_up == [200, 200, 200, 429]  # unknown keys fall back to the address
    assert client.get("/", headers={"X-Api-Key": "good-key"}).status_code == 200
    redis_keys = Limiter.from_url(url).client.keys("*")
    assert any(k.startswith(b"shield:{x-api-key:") for k in redis_keys)
    assert not any(b"good-key" in k for k in redis_keys)  # the value is hashed


def test_legacy_headers_come_when_asked(url):
    reply = flask_app(url, legacy_headers=True).test_client().get("/")
    assert (reply.headers["X-RateLimit-Limit"], reply.headers["X-RateLimit-Remaining"]) == ("3", "2")


def test_wsgi_middleware_fails_closed_with_503_when_the_server_is_killed(url, server):
    limiter = Limiter.from_url(url, [Policy.bucket("strict", 10, 60, on_failure="closed")], timeout=0.2)
    app = flask.Flask("wsgi_test")
    app.get("/")(lambda: "hello")
    app.wsgi_app = WSGIShield(app.wsgi_app, limiter)
    client = app.test_client()
    assert client.get("/").status_code == 200
    server.kill()
    reply = client.get("/")
    assert reply.status_code == 503 and json.loads(reply.data)["violated_policies"] == ["strict"]
    assert reply.headers["Retry-After"] == "1" and "RateLimit-Policy" in reply.headers


# ---- Django ------------------------------------------------------------------------------------

def django_client(url, **options):
    if not settings.configured:
        settings.configure(DEBUG=False, ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__, SECRET_KEY="test",
                           MIDDLEWARE=["redis_shield.django.ShieldMiddleware"], INSTALLED_APPS=[])
        django.setup()
    settings.REDIS_SHIELD = HttpRateLimit(Limiter.from_url(url, THREE), **options)
    from django.test import Client
    return Client()


def _django_views():
    from django.http import HttpResponse
    from django.urls import path

    from redis_shield.django import exempt, limit

    def index(request):
        return HttpResponse("hello")

    @exempt
    def health(request):
        return HttpResponse("ok")

    @limit(Policy.window("search", 1, 60))
    def search(request):
        return HttpResponse("found")

    return [path("", index), path("health", health), path("search", search)]


urlpatterns = _django_views()


def test_django_limits_views_with_headers_on_every_response(url):
    client = django_client(url)
    replies = [client.get("/", REMOTE_ADDR="192.0.2.10") for _ in range(4)]
    assert [r.status_code for r in replies] == [200, 200, 200, 429]
    assert ratelimit(replies[1]["RateLimit"])["per-minute"]["r"] == 1
    assert_refused(429, replies[3], replies[3].content, ["per-minute"])
    assert not replies[0].has_header("X-RateLimit-Limit")


def test_django_exempt_and_per_view_policies(url):
    client = django_client(url, legacy_headers=True)
    assert not client.get("/health").has_header("RateLimit")
    assert client.get("/search").status_code == 200
    refused = client.get("/search")
    assert_refused(refused.status_code, refused, refused.content, ["search"])
    assert refused["X-RateLimit-Limit"] == "1"


class HeaderUserMiddleware:
    """A stand-in for Django's AuthenticationMiddleware: request.user from a test header."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        name = request.headers.get("X-Test-User")
        request.user = type("User", (), {"is_authenticated": bool(name), "get_username": lambda self: name})()
        return self.get_response(request)


def test_django_keys_by_the_authenticated_user(url):
    client = django_client(url, key=first_of(user(), client_ip()))
    middleware = settings.MIDDLEWARE
    settings.MIDDLEWARE = [f"{__name__}.HeaderUserMiddleware", "redis_shield.django.ShieldMiddleware"]
    try:
        codes = [client.get("/", HTTP_X_TEST_USER="erin").status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        assert client.get("/", HTTP_X_TEST_USER="frank").status_code == 200
    finally:
        settings.MIDDLEWARE = middleware


# ---- Starlette and FastAPI ---------------------------------------------------------------------

class HeaderUser(AuthenticationBackend):
    async def authenticate(self, conn):
        name = conn.headers.get("x-test-user")
        return (AuthCredentials(["authenticated"]), SimpleUser(name)) if name else None


def test_starlette_limits_by_the_authenticated_user_and_skips_exempt_routes(url):
    async def home(request):
        return PlainTextResponse("hello")

    app = Starlette(routes=[Route("/", home), Route("/health", home)])
    app.add_middleware(ASGIShield, limiter=AsyncLimiter.from_url(url, THREE),
                       key=first_of(user(), client_ip()), exempt=["/health"])
    app.add_middleware(AuthenticationMiddleware, backend=HeaderUser())  # runs first
    with TestClient(app) as client:
        codes = [client.get("/", headers={"X-Test-User": "carol"}).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        assert client.get("/", headers={"X-Test-User": "dave"}).status_code == 200
        assert "ratelimit" not in client.get("/health").headers


FASTAPI_APP = textwrap.dedent("""
    import os
    from fastapi import Depends, FastAPI
    from redis_shield import AsyncLimiter, Policy
    from redis_shield.fastapi import RateLimit, ShieldMiddleware

    limiter = AsyncLimiter.from_url(os.environ["REDIS_URL"], [Policy.bucket("per-minute", 3, 60)])
    app = FastAPI()
    app.add_middleware(ShieldMiddleware, limiter=limiter, exempt=["/expensive"],
                       cost=lambda info: int(info.headers.get("x-cost", "1")))

    @app.get("/")
    async def index():
        return {"hello": "world"}

    @app.get("/expensive", dependencies=[Depends(RateLimit(limiter, [Policy.bucket("expensive", 1, 60)]))])
    async def expensive():
        return {"done": True}
""")


def http_get(port, path, headers=None):
    request = urllib.request.Request(f"http://{HOST}:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, reply.headers, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


@pytest.fixture
def uvicorn_app(url, tmp_path):
    (tmp_path / "fastapi_app.py").write_text(FASTAPI_APP)
    port = free_port()
    env = dict(client_env(), REDIS_URL=url)
    log = open(tmp_path / "uvicorn.log", "wb")
    process = subprocess.Popen([sys.executable, "-m", "uvicorn", "fastapi_app:app", "--host", HOST, "--port",
                                str(port), "--log-level", "warning"], cwd=tmp_path, env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: process.poll() is None and http_get(port, "/openapi.json")[0] in (200, 429),
                   what="uvicorn to answer")
        yield port
    finally:
        process.kill()
        process.wait(timeout=10)
        log.close()


def test_fastapi_under_uvicorn_limits_requests_by_their_cost(uvicorn_app):
    # the readiness probe took one token of 127.0.0.1's three
    status, headers, _ = http_get(uvicorn_app, "/")
    assert status == 200 and ratelimit(headers["RateLimit"])["per-minute"]["r"] == 1
    status, headers, body = http_get(uvicorn_app, "/", {"X-Cost": "2"})
    assert_refused(status, headers, body, ["per-minute"])


def test_a_fastapi_dependency_limits_one_route_with_its_own_policy(uvicorn_app):
    status, headers, _ = http_get(uvicorn_app, "/expensive")
    assert status == 200 and ratelimit(headers["RateLimit"]) == {"expensive": {"r": 0, "t": 60}}
    status, headers, body = http_get(uvicorn_app, "/expensive")
    assert status == 429 and int(headers["Retry-After"]) >= 1
    assert json.loads(body)["detail"]["violated_policies"] == ["expensive"]


def test_routes_give_matching_requests_their_own_policies_by_method_and_prefix(url):
    async def handler(request):
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/upload", handler, methods=["GET", "POST"]), Route("/api/items", handler)])
    app.add_middleware(ASGIShield, limiter=AsyncLimiter.from_url(url, THREE),
                       routes={"POST /upload": [Policy.bucket("uploads", 1, 60)],
                               "/api/*": [Policy.window("api", 2, 60)]})
    with TestClient(app) as client:
        assert list(ratelimit(client.post("/upload").headers["ratelimit"])) == ["uploads"]
        assert list(ratelimit(client.get("/upload").headers["ratelimit"])) == ["per-minute"]
        assert list(ratelimit(client.get("/api/items").headers["ratelimit"])) == ["api"]
        refused = client.post("/upload")
        assert_refused(refused.status_code, refused.headers, refused.content, ["uploads"])


def test_the_middleware_refuses_a_limiter_of_the_wrong_kind(url):
    with pytest.raises(TypeError):
        ASGIShield(None, Limiter.from_url(url, THREE))
    with pytest.raises(TypeError):
        WSGIShield(None, AsyncLimiter.from_url(url, THREE))


DOTTED_RULES = None


def test_django_reads_its_rules_from_a_dotted_path_too(url):
    global DOTTED_RULES
    client = django_client(url)
    DOTTED_RULES = HttpRateLimit(Limiter.from_url(url, [Policy.bucket("dotted", 5, 60)]))
    settings.REDIS_SHIELD = f"{__name__}.DOTTED_RULES"
    assert list(ratelimit(client.get("/")["RateLimit"])) == ["dotted"]


def test_flask_init_app_attaches_a_shield_made_before_the_app(url):
    shield = Shield(limiter=Limiter.from_url(url, THREE))
    app = flask.Flask("late")
    app.get("/")(lambda: "hello")
    shield.init_app(app)
    assert ratelimit(app.test_client().get("/").headers["RateLimit"]) == {"per-minute": {"r": 2, "t": 20}}
