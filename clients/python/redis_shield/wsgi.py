"""WSGI middleware: `app = ShieldMiddleware(app, limiter, key=..., exempt=..., routes=..., cost=...)`."""

import inspect

from .web import HttpRateLimit, environ_info

__all__ = ["ShieldMiddleware"]


class ShieldMiddleware:
    """Limits every request of a WSGI application with a `Limiter` (options: `HttpRateLimit`'s).

    The authenticated user is the environ's REMOTE_USER. Every limited response carries the
    RateLimit-Policy and RateLimit headers; a refused request gets 429 (or 503 when Redis failed and
    a policy fails closed) with Retry-After and an application/problem+json body, and never reaches
    the application."""

    def __init__(self, app, limiter, **options):
        if inspect.iscoroutinefunction(limiter.consume):
            raise TypeError("the WSGI middleware needs a Limiter, not an AsyncLimiter")
        self.app = app
        self.rules = HttpRateLimit(limiter, **options)

    def __call__(self, environ, start_response):
        decision = self.rules.decide(environ_info(environ))
        if decision is None:
            return self.app(environ, start_response)
        if not decision.allowed:
            status, reason, headers, body = self.rules.refusal(decision)
            start_response(f"{status} {reason}", headers)
            return [body]
        extra = self.rules.headers(decision)

        def start(status, headers, exc_info=None):
            return start_response(status, list(headers) + extra, exc_info)

        return self.app(environ, start)
