"""Flask integration: `shield = Shield(app, limiter, key=..., exempt=...)`, then `@shield.limit(...)`
and `@shield.exempt` on views."""

import flask

from .web import HttpRateLimit, environ_info

__all__ = ["Shield"]


class Shield:
    """Limits a Flask application's requests with a `Limiter` (options: `HttpRateLimit`'s).

    The authenticated user is `flask.g.user` when a login layer set it (its `username`, `id`, or
    itself as text), else REMOTE_USER. Views may carry their own policies and cost
    (`@shield.limit(policy, ..., cost=lambda info: ...)`) or none (`@shield.exempt`)."""

    def __init__(self, app=None, limiter=None, **options):
        self.rules = HttpRateLimit(limiter, **options)
        if app is not None:
            self.init_app(app)

    def init_app(self, app):
        app.before_request(self._before)
        app.after_request(self._after)

    def limit(self, *policies, cost=None):
        def decorate(view):
            view._shield_policies = tuple(policies) or None
            view._shield_cost = cost
            return view

        return decorate

    @staticmethod
    def exempt(view):
        view._shield_exempt = True
        return view

    def _before(self):
        view = flask.current_app.view_functions.get(flask.request.endpoint)
        if getattr(view, "_shield_exempt", False):
            return None
        info = environ_info(flask.request.environ, user=_flask_user())
        info.request = flask.request
        decision = self.rules.decide(info, getattr(view, "_shield_policies", None),
                                     getattr(view, "_shield_cost", None))
        flask.g._shield_decision = decision
        if decision is None or decision.allowed:
            return None
        status, _, headers, body = self.rules.refusal(decision)
        return flask.Response(body, status=status, headers=headers)

    def _after(self, response):
        decision = flask.g.get("_shield_decision")
        if decision is not None:
            for name, value in self.rules.headers(decision):
                response.headers[name] = value
        return response


def _flask_user():
    user = flask.g.get("user")
    if user is None:
        return None
    for attribute in ("username", "id"):
        if getattr(user, attribute, None) is not None:
            return str(getattr(user, attribute))
    return str(user)
