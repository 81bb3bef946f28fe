"""Input rules shared by every desk: text hygiene, e-mail and phone normalisation.

Each function returns the clean value or raises ``FieldError`` naming the field, so a screen
shows the message beside the input and the API answers 422 with the field.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from wtforms import ValidationError as WTFormsValidationError

from app.core.errors import FieldError


def clean_text(value: Any, field: str, max_length: int, required: bool = False) -> str | None:
    """Strip, refuse control characters (NUL and friends) and over-long text."""
    if value is None:
        text = ""
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise FieldError("must be text.", field)
    if any(ord(ch) < 32 and ch not in "\t\n\r" for ch in text):
        raise FieldError("contains control characters (such as a NUL byte).", field)
    if len(text) > max_length:
        raise FieldError(f"is too long ({len(text)} characters; at most {max_length}).", field)
    if not text:
        if required:
            raise FieldError("is required.", field)
        return None
    return text


def normalise_email(value: Any, field: str = "email") -> str | None:
    """Lower-case, syntax-checked e-mail address (no DNS look-up), or None when empty."""
    text = clean_text(value, field, 254)
    if text is None:
        return None
    try:
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise FieldError(f"is not a valid e-mail address: {exc}", field) from exc
    return result.normalized.lower()


def normalise_phone(value: Any, default_region: str, field: str = "phone") -> str | None:
    """E.164 form of a phone number (``+919876543210``), or None when empty."""
    text = clean_text(value, field, 40)
    if text is None:
        return None
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as exc:
        raise FieldError(f"is not a phone number: {text!r}.", field) from exc
    if not phonenumbers.is_valid_number(number):
        raise FieldError(f"is not a valid phone number: {text!r}.", field)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def form_validator(rule: Callable[[Any], Any]) -> Callable[[Any, Any], None]:
    """Adapt a rule above to a WTForms field validator, so the form shows its message."""

    def _validate(form: Any, field: Any) -> None:
        try:
            rule(field.data)
        except FieldError as exc:
            raise WTFormsValidationError(exc.message) from exc

    return _validate


MAX_MONEY = Decimal("9999999999999999.99")
"""The largest amount a Numeric(18, 2) column holds."""


def parse_money(value: Any, field: str, required: bool = True, allow_zero: bool = False):
    """A Decimal amount in whole cents: refuses text that is not a number, NaN, infinity,
    fractions of a cent, negatives (and zero unless allowed) and amounts too large to store."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise FieldError("is required.", field)
        return None
    if isinstance(value, bool):
        raise FieldError("is not an amount.", field)
    if isinstance(value, float):
        value = repr(value)  # a JSON number: its shortest repr is what the sender wrote
    try:
        amount = Decimal(str(value).strip().replace(",", ""))
    except InvalidOperation as exc:
        raise FieldError(f"is not an amount: {str(value)[:40]!r}.", field) from exc
    if not amount.is_finite():
        raise FieldError("must be a finite amount.", field)
    if amount < 0 or (amount == 0 and not allow_zero):
        raise FieldError(
            "must be more than zero." if not allow_zero else "cannot be negative.", field
        )
    if amount > MAX_MONEY:
        raise FieldError(f"is too large (at most {MAX_MONEY:,}).", field)
    if amount != amount.quantize(Decimal("0.01")):
        raise FieldError("cannot have fractions of a cent.", field)
    return amount.quantize(Decimal("0.01"))


def parse_decimal(value: Any, field: str, low: Decimal, high: Decimal, required: bool = True):
    """A Decimal between ``low`` and ``high`` inclusive (rates, percentages)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise FieldError("is required.", field)
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise FieldError(f"is not a number: {str(value)[:40]!r}.", field) from exc
    if not number.is_finite() or not low <= number <= high:
        raise FieldError(f"must be between {low} and {high}.", field)
    return number


def parse_int(value: Any, field: str, low: int, high: int, required: bool = True) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise FieldError("is required.", field)
        return None
    try:
        number = int(str(value).strip())
    except ValueError as exc:
        raise FieldError(f"must be a whole number, not {str(value)[:40]!r}.", field) from exc
    if not low <= number <= high:
        raise FieldError(f"must be between {low} and {high}.", field)
    return number


def parse_date(value: Any, field: str, required: bool = False) -> date | None:
    """A calendar date from ``YYYY-MM-DD`` text (or a date)."""
    if isinstance(value, date):
        return value
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise FieldError("is required.", field)
        return None
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError as exc:
        raise FieldError(f"is not a date (YYYY-MM-DD): {str(value)[:40]!r}.", field) from exc


def parse_choice(value: Any, field: str, choices: tuple[str, ...], required: bool = True):
    if value in (None, ""):
        if required:
            raise FieldError("is required.", field)
        return None
    if value not in choices:
        raise FieldError(f"must be one of: {', '.join(choices)}.", field)
    return value
