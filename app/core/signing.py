"""Signed webhooks: the HMAC-SHA256 scheme every inbound webhook of FinCRM checks (payment
providers, market-data providers).

A delivery carries a header ``t=<unix time>,v1=<hex>``, the HMAC-SHA256 of ``"{t}.{raw body}"``
under a shared secret. It is refused when no ``v1`` matches, or when ``t`` is further from now
than the tolerance (a stale or replayed delivery).
"""

from __future__ import annotations

import hashlib
import hmac
import time


class SignatureRefused(Exception):
    """A webhook whose signature is missing, wrong or too old; ``status`` is the answer."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def signature(secret: str, payload: bytes, timestamp: int) -> str:
    """The hex HMAC-SHA256 of ``"{timestamp}.{payload}"`` under ``secret``."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()


def signature_header(secret: str, payload: bytes, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    return f"t={timestamp},v1={signature(secret, payload, timestamp)}"


def verify_signature(
    secret: str, payload: bytes, header: str | None, tolerance: int, now: float | None = None
) -> int:
    """Check a ``t=...,v1=...`` header; returns its timestamp. Any one ``v1`` matching is
    enough (a sender rolling its secret sends two)."""
    if not secret:
        raise SignatureRefused("no webhook signing secret is configured.", 401)
    if not header:
        raise SignatureRefused("the signature header is missing.", 401)
    timestamp = None
    candidates = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError as exc:
                raise SignatureRefused("the signature's timestamp is not a number.", 400) from exc
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureRefused("the signature header has no timestamp or no v1 signature.", 401)
    expected = signature(secret, payload, timestamp)
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise SignatureRefused("the signature does not match the payload.", 401)
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance:
        raise SignatureRefused(
            f"the signature's timestamp is {int(abs(now - timestamp))} s from now, beyond the "
            f"{tolerance} s tolerance (a stale or replayed delivery).",
            400,
        )
    return timestamp
