"""FastAPI and Starlette integration: the ASGI middleware for the whole application, and a
dependency for one route's own policies.

    app.add_middleware(ShieldMiddleware, limiter=limiter, exempt=["/health"])
    @app.post("/upload", dependencies=[Depends(RateLimit(limiter, [policy]))])
"""

from fastapi import HTTPException, Request, Response

from .asgi import ShieldMiddleware, scope_info
from .web import HttpRateLimit

__all__ = ["ShieldMiddleware", "RateLimit"]


class RateLimit:
    """A FastAPI dependency that limits one route with its own policies (options: `HttpRateLimit`'s).
    Allowed: the RateLimit headers go on the response; refused: HTTPException 429 (or 503) with
    the headers, whose detail names the violated policies."""

    def __init__(self, limiter, policies=None, **options):
        self.rules = HttpRateLimit(limiter, **options)
        self.policies = tuple(policies) if policies else None

    async def __call__(self, request: Request, response: Response):
        decision = await self.rules.adecide(scope_info(request.scope), self.policies)
        if decision is None:
            return None
        if not decision.allowed:
            status, _, headers, _ = self.rules.refusal(decision)
            raise HTTPException(status, detail={"title": "Too Many Requests" if status == 429 else
                                                "Service Unavailable",
                                                "violated_policies": list(decision.violated)},
                                headers=dict(h for h in headers if h[0] not in ("Content-Type", "Content-Length")))
        for name, value in self.rules.headers(decision):
            response.headers[name] = value
        return decision
