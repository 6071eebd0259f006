"""What every HTTP integration shares: who the client is (keys), which requests are limited by which
policies (exempt routes, per-route policies, cost), and what the response carries (the RateLimit
headers, and 429 or 503 with an application/problem+json body)."""

import hashlib
import ipaddress
import json
from dataclasses import dataclass
from typing import Mapping, Optional

__all__ = ["RequestInfo", "HttpRateLimit", "client_ip", "header", "user", "first_of"]


@dataclass
class RequestInfo:
    """A request as the key, exempt and cost functions see it, whatever the framework."""

    method: str
    path: str
    headers: Mapping[str, str]  # names in lower case
    remote_addr: Optional[str]
    user: Optional[str] = None  # the authenticated user's name, when the framework has one
    request: object = None  # the framework's own request (WSGI environ, ASGI scope, flask/django request)


def client_ip(trusted_proxies=()):
    """The client's address. `X-Forwarded-For` is read only when the connection comes from one of
    `trusted_proxies` (addresses or networks): then the rightmost address that is not a trusted
    proxy is the client (everything left of it could have been written by the client)."""
    networks = [ipaddress.ip_network(p, strict=False) for p in trusted_proxies]

    def trusted(address):
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in networks)

    def key(info):
        address = info.remote_addr
        if address and networks and trusted(address):
            hops = [h.strip() for h in info.headers.get("x-forwarded-for", "").split(",") if h.strip()]
            for hop in reversed(hops):
                address = hop
                if not trusted(hop):
                    break
        return f"ip:{address}" if address else None

    return key


def header(name, *, known=None):
    """The value of header `name`, hashed (Redis keys never hold the secret). With `known` (a set of
    accepted values, or a function value -> bool) an unknown value gives no key, so that made-up
    values cannot dodge the limit; without it, use this only behind something that checks it."""
    lower = name.lower()

    def key(info):
        value = info.headers.get(lower)
        if not value:
            return None
        if known is not None and not (known(value) if callable(known) else value in known):
            return None
        return f"{lower}:{hashlib.sha256(value.encode()).hexdigest()[:32]}"

    return key


def user():
    """The authenticated user's name (Flask: g.user or REMOTE_USER; Django: request.user; ASGI:
    scope["user"], as Starlette's AuthenticationMiddleware sets it)."""
    return lambda info: f"user:{info.user}" if info.user else None


def first_of(*functions):
    """The first key any of `functions` gives: `first_of(user(), client_ip())`."""
    def key(info):
        for function in functions:
            value = function(info)
            if value:
                return value
        return None

    return key


def _matcher(pattern):
    """`"/health"` (exact path), `"/static/*"` (prefix), with an optional method: `"POST /upload"`."""
    method, _, path = pattern.partition(" ") if " " in pattern else ("", "", pattern)
    method = method.upper()

    def matches(info):
        if method and info.method.upper() != method:
            return False
        return info.path.startswith(path[:-1]) if path.endswith("*") else info.path == path

    return matches


class HttpRateLimit:
    """The rules of one application.

    - `key`: request -> key (default `client_ip()`); when it gives None the connection's address is used.
    - `exempt`: route patterns (see `_matcher`) or a function request -> bool: not limited, no headers.
    - `routes`: {pattern: [policies]}: the first matching pattern's policies replace the limiter's.
    - `cost`: request -> int, the tokens the request takes (default 1).
    - `legacy_headers`: also send X-RateLimit-Limit, -Remaining and -Reset.
    """

    def __init__(self, limiter, *, key=None, exempt=(), routes=None, cost=None, legacy_headers=False):
        self.limiter = limiter
        self.key = key or client_ip()
        self._fallback = client_ip()
        if callable(exempt):
            self.exempt = exempt
        else:
            matchers = [_matcher(p) for p in exempt]
            self.exempt = lambda info: any(m(info) for m in matchers)
        self.routes = [(_matcher(p), tuple(policies)) for p, policies in (routes or {}).items()]
        self.cost = cost or (lambda info: 1)
        self.legacy_headers = legacy_headers

    def plan(self, info, view_policies=None, view_cost=None):
        """(key, cost, policies) for a request, or None when it is exempt."""
        if self.exempt(info):
            return None
        policies = view_policies
        if policies is None:
            policies = next((p for m, p in self.routes if m(info)), None)
        key = self.key(info) or self._fallback(info) or "ip:unknown"
        cost = view_cost(info) if view_cost else self.cost(info)
        return key, cost, policies

    def decide(self, info, view_policies=None, view_cost=None):
        plan = self.plan(info, view_policies, view_cost)
        return None if plan is None else self.limiter.consume(*plan)

    async def adecide(self, info, view_policies=None, view_cost=None):
        plan = self.plan(info, view_policies, view_cost)
        return None if plan is None else await self.limiter.consume(*plan)

    def headers(self, decision):
        return list(decision.headers(legacy=self.legacy_headers).items())

    def refusal(self, decision):
        """(status code, reason, headers, body) of a refused request: 429 when a policy refused,
        503 when Redis failed and a policy fails closed."""
        if decision.source == "fail-closed":
            status, reason = 503, "Service Unavailable"
            detail = "The rate limiter is unavailable and these policies fail closed."
        else:
            status, reason = 429, "Too Many Requests"
            detail = "The request exceeds these rate limit policies."
        problem = {"type": "about:blank", "title": reason, "status": status, "detail": detail,
                   "violated_policies": list(decision.violated)}
        if decision.retry_after_seconds is not None:
            problem["retry_after"] = decision.retry_after_seconds
        body = json.dumps(problem).encode()
        headers = self.headers(decision) + [("Content-Type", "application/problem+json"),
                                            ("Content-Length", str(len(body)))]
        return status, reason, headers, body


def lower_headers(pairs):
    """{lower-case name: value} from (name, value) pairs; repeated names are joined with commas."""
    headers = {}
    for name, value in pairs:
        name = name.lower()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def environ_info(environ, user=None):
    """A RequestInfo from a WSGI environ."""
    pairs = [(k[5:].replace("_", "-"), v) for k, v in environ.items() if k.startswith("HTTP_")]
    for name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(name):
            pairs.append((name.replace("_", "-"), environ[name]))
    return RequestInfo(environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "") or "/",
                       lower_headers(pairs), environ.get("REMOTE_ADDR"),
                       user if user is not None else environ.get("REMOTE_USER"), environ)

