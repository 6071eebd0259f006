"""Django integration: add "redis_shield.django.ShieldMiddleware" to MIDDLEWARE (after
AuthenticationMiddleware) and set REDIS_SHIELD to the dotted path of an `HttpRateLimit`;
`@limit(...)` and `@exempt` on views."""

from django.conf import settings
from django.http import HttpResponse
from django.utils.module_loading import import_string

from .web import RequestInfo, lower_headers

__all__ = ["ShieldMiddleware", "limit", "exempt"]


def limit(*policies, cost=None):
    """This view's own policies (and cost: request info -> int) instead of the application's."""
    def decorate(view):
        view._shield_policies = tuple(policies) or None
        view._shield_cost = cost
        return view

    return decorate


def exempt(view):
    view._shield_exempt = True
    return view


def request_info(request):
    user = getattr(request, "user", None)
    name = user.get_username() if user is not None and user.is_authenticated else None
    pairs = [(k[5:].replace("_", "-"), v) for k, v in request.META.items() if k.startswith("HTTP_")]
    return RequestInfo(request.method, request.path_info, lower_headers(pairs),
                       request.META.get("REMOTE_ADDR"), name, request)


class ShieldMiddleware:
    """Limits the views of a Django project with the `HttpRateLimit` named by settings.REDIS_SHIELD."""

    def __init__(self, get_response):
        self.get_response = get_response
        rules = settings.REDIS_SHIELD
        self.rules = import_string(rules) if isinstance(rules, str) else rules

    def __call__(self, request):
        response = self.get_response(request)
        decision = getattr(request, "_shield_decision", None)
        if decision is not None:
            for name, value in self.rules.headers(decision):
                response[name] = value
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        if getattr(view_func, "_shield_exempt", False):
            return None
        decision = self.rules.decide(request_info(request), getattr(view_func, "_shield_policies", None),
                                     getattr(view_func, "_shield_cost", None))
        request._shield_decision = decision
        if decision is None or decision.allowed:
            return None
        status, _, headers, body = self.rules.refusal(decision)
        response = HttpResponse(body, status=status, content_type="application/problem+json")
        for name, value in headers:
            if name != "Content-Type":
                response[name] = value
        return response
