"""Security headers on every answer.

A Content-Security-Policy whose scripts are this site's own files and inline blocks carrying
the request's nonce (``csp_nonce()`` in templates, which FAB's own templates already call), no
plugins, no framing by other sites (``frame-ancestors 'none'``, and ``X-Frame-Options: DENY``
for older browsers), forms posting only here; ``X-Content-Type-Options: nosniff``, a referrer
kept to this site, and HSTS in production. An answer that sets its own policy (a document shown
inside this app's pages) keeps it.
"""

from __future__ import annotations

import secrets

from flask import Flask, current_app, g
from flask.wrappers import Response

HSTS = "max-age=31536000; includeSubDomains"


def csp_nonce() -> str:
    """This request's script nonce (made on first use)."""
    if "crm_csp_nonce" not in g:
        g.crm_csp_nonce = secrets.token_urlsafe(16)
    return g.crm_csp_nonce


def policy(nonce: str) -> str:
    return "; ".join(
        (
            "default-src 'self'",
            f"script-src 'self' 'nonce-{nonce}'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def install_security_headers(app: Flask) -> None:
    app.jinja_env.globals["csp_nonce"] = csp_nonce

    @app.after_request
    def _security_headers(response: Response) -> Response:
        headers = response.headers
        if "Content-Security-Policy" in headers:
            headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        else:
            headers["Content-Security-Policy"] = policy(csp_nonce())
            headers["X-Frame-Options"] = "DENY"
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "same-origin")
        if current_app.config.get("CRM_ENV") == "production":
            headers.setdefault("Strict-Transport-Security", HSTS)
        return response
