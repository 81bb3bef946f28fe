"""How sensitive identifiers are shown to people who may not see them in full.

Used by screens, the API, exports, the audit log and logs alike. A column names its kind in
``info={"pii": "<kind>"}``; ``mask(kind, value)`` shows it.
"""

from __future__ import annotations


def _keep(value: str, head: int, tail: int, fill: str = "X") -> str:
    if len(value) <= head + tail:
        return fill * len(value)
    return value[:head] + fill * (len(value) - head - tail) + value[len(value) - tail :]


def mask_aadhaar(value: str | None) -> str:
    """``123412341234`` -> ``XXXX XXXX 1234``."""
    digits = "".join(ch for ch in (value or "") if ch.isdigit())
    if not digits:
        return ""
    return f"XXXX XXXX {digits[-4:]}" if len(digits) >= 4 else "XXXX XXXX XXXX"


def mask_pan(value: str | None) -> str:
    """``ABCDE1234F`` -> ``ABCDXXXX4F``: the first four and last two characters stay."""
    compact = (value or "").replace(" ", "").upper()
    return _keep(compact, 4, 2) if compact else ""


def mask_account(value: str | None) -> str:
    """A bank account or tax number: ``****1234``."""
    compact = "".join(ch for ch in (value or "") if ch.isalnum())
    if not compact:
        return ""
    return "****" + compact[-4:] if len(compact) > 4 else "*" * len(compact)


def mask_secret(value: str | None) -> str:
    """Something nobody reads back (a password hash): only whether it is set."""
    return "********" if value else ""


MASKS = {
    "aadhaar": mask_aadhaar,
    "pan": mask_pan,
    "account": mask_account,
    "tax_id": mask_account,
    "secret": mask_secret,
}


def mask(kind: str, value: object) -> str:
    if value is None:
        return ""
    return MASKS[kind](str(value))
