"""One sign-in throttle for every way in: the form (``POST /login/``) and the API
(``POST /api/v1/security/login``) count against the same limits.

- per client address: every sign-in attempt, form or API (``AUTH_RATE_LIMIT``);
- per username: failed sign-ins, from any address (``CRM_LOGIN_USERNAME_LIMIT``), so spreading
  guesses over many addresses does not help either. Only failures count: a colleague's typos
  cannot lock a user out for long, a guesser's do.

Over a limit the answer is 429 with ``Retry-After`` (the back-off: until the window ends), and
the refusal is audited (``login throttled``, with which limit and for whom). The counts live in
Flask-Limiter's storage (``RATELIMIT_STORAGE_URI``: Redis in production, shared by every
worker).
"""

from __future__ import annotations

import time

from flask import Flask, current_app, jsonify, request
from flask.wrappers import Response
from limits import parse

LOGIN_ENDPOINTS = {"AuthDBView.login": "form", "SecurityApi.login": "api"}


def _strategy():
    return current_app.appbuilder.sm.limiter.limiter


def _on() -> bool:
    config = current_app.config
    return bool(config.get("RATELIMIT_ENABLED", True) and config.get("CRM_LOGIN_THROTTLED", True))


def _limits():
    config = current_app.config
    return (
        parse(config.get("AUTH_RATE_LIMIT", "10 per minute")),
        parse(
            config.get("CRM_LOGIN_USERNAME_LIMIT", config.get("AUTH_RATE_LIMIT", "10 per minute"))
        ),
    )


def _username() -> str:
    if request.is_json:
        body = request.get_json(silent=True)
        name = body.get("username") if isinstance(body, dict) else None
    else:
        name = request.form.get("username")
    return str(name or "").strip().lower()[:64]


def record_failure(username: str) -> None:
    """A failed sign-in of ``username`` (form or API): counted against that name."""
    if not username or not _on():
        return
    _strategy().hit(_limits()[1], "crm-login-user", username.strip().lower()[:64])


def _refuse(which: str, who: str, reset_at: float, way: str) -> Response:
    from app.core.audit import record_event

    wait = max(1, int(reset_at - time.time()))
    record_event(
        "login throttled",
        actor_name=who if which == "username" else "(blank)",
        detail=f"{way} sign-in refused for {wait} s: too many attempts for this {which} ({who})",
    )
    message = f"Too many sign-in attempts; try again in {wait} seconds."
    if way == "api":
        answer = jsonify(message=message)
    else:
        answer = Response(
            f"<!doctype html><title>Too many attempts</title><p>{message}</p>",
            mimetype="text/html",
        )
    answer.status_code = 429
    answer.headers["Retry-After"] = str(wait)
    return answer


def install_login_throttle(app: Flask) -> None:
    @app.before_request
    def _throttle_sign_in():
        way = LOGIN_ENDPOINTS.get(request.endpoint or "")
        if way is None or request.method != "POST" or not _on():
            return None
        by_address, by_user = _limits()
        strategy = _strategy()
        address = request.remote_addr or "?"
        name = _username()
        if name and not strategy.test(by_user, "crm-login-user", name):
            reset_at, _ = strategy.get_window_stats(by_user, "crm-login-user", name)
            return _refuse("username", name, reset_at, way)
        if not strategy.hit(by_address, "crm-login-address", address):
            reset_at, _ = strategy.get_window_stats(by_address, "crm-login-address", address)
            return _refuse("address", address, reset_at, way)
        return None
