"""What an export shows of personal data, decided here as data.

* **Identifiers** (PAN, Aadhaar, tax numbers, bank accounts, look-up hashes: every column marked
  ``info={"pii": ...}``) are masked in every export, whoever asks, as on the screens.
* **Contact details** (e-mail, phone, postal address, a message's recipient or sender) are shown
  in full only to the roles in ``FULL_CONTACT_ROLES``, who work with clients and need to reach
  them. Everyone else gets them masked: the Auditor (DOMAIN section 1: "no exports of unmasked
  PII"; the audit needs to see that a record exists, not how to reach the person) and the
  Broker (an outside introducer: a file leaving the company must not carry other people's
  contact details). A role added later is masked until it is listed here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from app.core.masking import mask

FULL_CONTACT_ROLES = frozenset({"Admin", "Manager", "Agent", "Compliance", "LoanOfficer"})
"""Roles whose exports show e-mail, phone and address columns in full."""

CONTACT_COLUMN = re.compile(r"(^|_)(email|phone|mobile|whatsapp|address|recipient|sender)($|_)")
"""List columns (by name, the last part of a dotted name) holding contact details."""

CONTACT_COLUMNS_BY_TABLE: dict[str, frozenset[str]] = {
    "client_contact": frozenset({"value"}),  # an e-mail, phone or postal address, by its kind
}
"""Columns whose name does not say so but that hold contact details."""


def sees_full_contacts(roles: Iterable[str]) -> bool:
    return not FULL_CONTACT_ROLES.isdisjoint(roles)


def is_contact_column(table: str, column: str) -> bool:
    leaf = column.rsplit(".", 1)[-1]
    return bool(CONTACT_COLUMN.search(leaf)) or leaf in CONTACT_COLUMNS_BY_TABLE.get(
        table, frozenset()
    )


def mask_email(value: str) -> str:
    """``asha.verma@example.com`` -> ``a*********@example.com``."""
    local, at, domain = value.partition("@")
    if not at:
        return mask_text(value)
    return (local[:1] + "*" * max(len(local) - 1, 3)) + "@" + domain


def mask_phone(value: str) -> str:
    """``+919876543210`` -> ``*********3210``: only the last four digits stay."""
    digits = [ch for ch in value if ch.isdigit()]
    if len(digits) <= 4:
        return "*" * len(value)
    return "*" * (len(digits) - 4) + "".join(digits[-4:])


def mask_text(value: str) -> str:
    """An address or anything else: nothing of it stays."""
    return "[withheld]" if value else ""


def mask_contact(value: Any) -> Any:
    """A contact detail as people without full access see it (non-text values pass through)."""
    if not isinstance(value, str) or not value:
        return value
    text = value.strip()
    if "@" in text and " " not in text:
        return mask_email(text)
    if re.fullmatch(r"[+()\d\s.-]{6,}", text):
        return mask_phone(text)
    return mask_text(text)


def mask_identifier(kind: str, value: Any) -> Any:
    return mask(kind, value) if value not in (None, "") else value
