"""Input rules shared by every desk: text hygiene, e-mail and phone normalisation.

Each function returns the clean value or raises ``FieldError`` naming the field, so a screen
shows the message beside the input and the API answers 422 with the field.
"""

from __future__ import annotations

from collections.abc import Callable
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
