"""Guards every request passes, whatever screen or API it is for.

* **JSON**: a body with the same key twice is refused (which value was meant?), and one nested
  too deeply to parse is a 400, not a crash.
* **Query arguments**: no control characters (NUL...) anywhere in an address; an API's ``q``
  must be valid rison with ``page`` 0 or more, a list screen's page 0 or more and its page
  size at most 100; a refused list query (a column not offered for sorting or filtering, a
  password field...) is audited.
* **Cross-site requests**: the JSON API is exempt from the forms' CSRF token because another
  site cannot send a bearer token; a caller signed in with the browser's session cookie instead
  must send the token (``X-CSRFToken``) with every POST, PUT, PATCH or DELETE, so a page on
  another site cannot act with a member of staff's session.
* **Redirects after signing in or out** stay on the site: ``next`` values that browsers read as
  another host (``//evil.example``, ``/\\evil.example``, ``https://evil.example``) send the user
  to the home page instead.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Request, Response, current_app, g, jsonify, redirect, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge
from werkzeug.routing import IntegerConverter

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for key, value in pairs:
        if key in body:
            raise ValueError(f"the key {key!r} appears twice in one object")
        body[key] = value
    return body


class StrictJSONProvider(DefaultJSONProvider):
    """Flask's JSON, refusing duplicate keys and bodies nested too deeply to read."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        kwargs.setdefault("object_pairs_hook", _refuse_duplicate_keys)
        try:
            return json.loads(s, **kwargs)
        except RecursionError:
            raise ValueError("the JSON is nested too deeply") from None


class BoundedIntegerConverter(IntegerConverter):
    """``<int:pk>`` in a URL: at most what an Integer key holds, so ``/99999999999999999999``
    is a 404 instead of a database error."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(map, *args, **kwargs)


class CrmRequest(Request):
    """Flask's request; JSON it cannot read is refused saying why (Flask says why only in
    debug mode)."""

    def on_json_loading_failed(self, e: ValueError | None) -> Any:
        if e is None:
            return super().on_json_loading_failed(e)
        raise BadRequest(f"The JSON body could not be read: {e}.")


def _api_refusal(status: int, message: Any) -> Response:
    response = jsonify(message=message)
    response.status_code = status
    return response


def _check_list_arguments() -> Response | None:
    import prison

    raw = request.args.get("q")
    if raw is None:
        return None
    try:
        args = prison.loads(raw)
    except Exception:  # prison raises anything from ParserException to RecursionError
        return _api_refusal(400, {"q": ["is not a valid rison argument."]})
    if not isinstance(args, dict):
        return _api_refusal(400, {"q": ["must be a rison object, e.g. (page:0,page_size:25)."]})
    for name in ("page", "page_size"):
        value = args.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            return _api_refusal(400, {name: ["must be a whole number."]})
        if name == "page" and value < 0:
            return _api_refusal(400, {name: ["must be 0 or more (the first page is 0)."]})
    return None


def _control_character_in_the_address() -> str | None:
    """No search, filter or id in this app holds a NUL byte or another control character
    (PostgreSQL cannot even compare one), so an address carrying one is refused whole."""
    for key, value in request.args.items(multi=True):
        if any(ord(ch) < 32 for ch in key + value):
            return (
                f"The address is refused: the argument {key[:40]!r} contains a control character "
                "(such as a NUL byte)."
            )
    return None


SCREEN_MAX_PAGE_SIZE = 100


def _bad_screen_list_argument() -> str | None:
    """A list screen's ``page_<View>`` and ``psize_<View>``: whole numbers, a page from 0, a
    page size from 1 to ``SCREEN_MAX_PAGE_SIZE`` (a million rows on one page is not a page)."""
    for key, value in request.args.items():
        prefix = key.split("_", 1)[0]
        if "_" not in key or prefix not in ("page", "psize"):
            continue
        try:
            number = int(value)
        except ValueError:
            return f"{key} must be a whole number, not {value[:40]!r}."
        if prefix == "page" and not 0 <= number < 2**31:
            return f"{key} must be a page number from 0."
        if prefix == "psize" and not 1 <= number <= SCREEN_MAX_PAGE_SIZE:
            return f"{key} must be from 1 to {SCREEN_MAX_PAGE_SIZE} rows a page."
    return None


def _check_cross_site(csrf: Any) -> None:
    """A signed-in browser session writing to the API must prove the request comes from our
    own pages (raises CSRFError otherwise)."""
    from flask_login import current_user

    if request.method not in UNSAFE_METHODS or not current_app.config.get("WTF_CSRF_ENABLED"):
        return
    if request.headers.get("Authorization"):
        return
    if current_user and current_user.is_authenticated:
        csrf.protect()


def _stays_on_site(location: str) -> bool:
    from flask_appbuilder.utils.base import is_safe_redirect_url

    if "\\" in location or any(ord(ch) < 32 for ch in location):
        return False
    parts = urlsplit(location)
    if not parts.netloc:  # "https:evil.example" is another host to a browser, too
        return not parts.scheme and not location.startswith("//")
    return is_safe_redirect_url(location)


def install_request_guards(app: Flask, api_blueprints: dict[str, str], csrf: Any) -> None:
    """``api_blueprints``: each API blueprint's name and the record type its refusals are
    audited under."""
    from app.core.audit import REJECTION_RECORDED, record_event, record_rejection

    app.json = StrictJSONProvider(app)
    app.request_class = CrmRequest

    @app.before_request
    def _refuse_oversized_bodies() -> None:
        """Judge an upload by its declared size before a byte of it is read (Flask itself
        checks only when a view reads the form, and an API view would answer 500)."""
        limit = app.config.get("MAX_CONTENT_LENGTH")
        if limit and request.content_length and request.content_length > limit:
            raise RequestEntityTooLarge()

    @app.before_request
    def _refuse_hostile_addresses() -> Response | None:
        message = _control_character_in_the_address()
        if message is None and request.blueprint not in api_blueprints:
            message = _bad_screen_list_argument()
        if message is None:
            return None
        record_rejection(
            api_blueprints.get(request.blueprint, request.blueprint or "request"), message
        )
        if request.blueprint in api_blueprints:
            return _api_refusal(400, message)
        raise BadRequest(message)

    @app.before_request
    def _guard_api_requests() -> Response | None:
        if request.blueprint not in api_blueprints:
            return None
        refused = _check_list_arguments() if request.method == "GET" else None
        if refused is not None:
            return refused
        _check_cross_site(csrf)
        return None

    @app.after_request
    def _audit_refusals(response: Response) -> Response:
        """An API's 400 or 422 that no service recorded (FAB's own checks of list arguments
        and bodies) is audited here, once."""
        if (
            request.blueprint in api_blueprints
            and response.status_code in (400, 413, 422)
            and not g.get(REJECTION_RECORDED)
        ):
            record_rejection(api_blueprints[request.blueprint], response.get_data(as_text=True))
        return response

    @app.after_request
    def _keep_sign_in_redirects_on_site(response: Response) -> Response:
        if not (request.endpoint or "").split(".")[0].startswith("Auth"):
            return response
        wanted = request.args.get("next")
        if wanted and not _stays_on_site(wanted):
            record_event(
                "permission_denied",
                detail=f"refused to redirect off the site to {wanted[:200]!r} "
                f"({request.method} {request.path})",
            )
        if response.status_code in (301, 302, 303, 307, 308) and not _stays_on_site(
            response.headers.get("Location", "")
        ):
            return redirect(app.appbuilder.get_url_for_index)
        return response
