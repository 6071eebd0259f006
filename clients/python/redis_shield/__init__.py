"""Redis Shield's Python client: rate limits declared once as policies, checked together in one atomic
SHIELD.limit call over redis-py (sync and asyncio, standalone and cluster), with WSGI/ASGI middleware and
Flask, Django and FastAPI/Starlette integrations. See docs/clients/python.md."""

from .core import Decision, DenyCache, FailureTracker, Policy, PolicyResult
from .web import HttpRateLimit, RequestInfo, client_ip, first_of, header, user
from .limiter import AsyncLimiter, AsyncReservation, Limiter, Reservation, connect_kwargs

__version__ = "0.1.0"

__all__ = ["Policy", "Decision", "PolicyResult", "DenyCache", "FailureTracker", "Limiter", "AsyncLimiter",
           "Reservation", "AsyncReservation", "connect_kwargs", "HttpRateLimit", "RequestInfo", "client_ip", "header",
           "user", "first_of"]
