"""ASGI middleware (Starlette, FastAPI, any ASGI application):
`app.add_middleware(ShieldMiddleware, limiter=AsyncLimiter(...), key=..., exempt=..., routes=...)`."""

import inspect

from .web import HttpRateLimit, RequestInfo, lower_headers

__all__ = ["ShieldMiddleware", "scope_info"]


def scope_info(scope):
    """A RequestInfo from an ASGI HTTP scope. The user is scope["user"] when it is authenticated
    (Starlette's AuthenticationMiddleware sets it; add that middleware after this one, so that it
    runs first)."""
    headers = lower_headers((k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers", ()))
    client = scope.get("client")
    user = scope.get("user")
    name = None
    if user is not None and getattr(user, "is_authenticated", False):
        name = _user_name(user)
    return RequestInfo(scope.get("method", "GET"), scope.get("path", "/"), headers,
                       client[0] if client else None, name, scope)


def _user_name(user):
    for attribute in ("display_name", "username", "identity"):
        try:
            value = getattr(user, attribute, None)
        except NotImplementedError:  # Starlette's BaseUser leaves some undefined
            value = None
        if value:
            return str(value)
    return str(user)


class ShieldMiddleware:
    """Limits every HTTP request of an ASGI application with an `AsyncLimiter` (options:
    `HttpRateLimit`'s); responses as redis_shield.wsgi.ShieldMiddleware's."""

    def __init__(self, app, limiter, **options):
        if not inspect.iscoroutinefunction(limiter.consume):
            raise TypeError("the ASGI middleware needs an AsyncLimiter")
        self.app = app
        self.rules = HttpRateLimit(limiter, **options)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        decision = await self.rules.adecide(scope_info(scope))
        if decision is None:
            await self.app(scope, receive, send)
            return
        if not decision.allowed:
            status, _, headers, body = self.rules.refusal(decision)
            await send({"type": "http.response.start", "status": status, "headers": _encode(headers)})
            await send({"type": "http.response.body", "body": body})
            return
        extra = _encode(self.rules.headers(decision))

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message = dict(message, headers=list(message.get("headers", ())) + extra)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _encode(headers):
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
