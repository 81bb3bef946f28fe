"""Input rules shared by every desk: text hygiene, e-mail and phone normalisation.

Each function returns the clean value or raises ``FieldError`` naming the field, so a screen
shows the message beside the input and the API answers 422 with the field.

Text rules (every text field, through ``clean_text``):

* NFKC normalisation: full-width and compatibility forms become their plain letters
  (``Ａｓｈａ`` is stored as ``Asha``), so look-alikes of that kind compare equal;
* refused: control characters (NUL and friends; tab and line breaks are allowed), invisible
  format characters (zero-width space U+200B, word joiner, byte-order mark U+FEFF, soft hyphen,
  bidirectional overrides and isolates). The zero-width joiner and non-joiner (U+200D, U+200C)
  are allowed only after a letter of a script that writes with them (Indic, Arabic, ...) or an
  emoji, never beside Latin, Cyrillic or Greek letters or at the start of the text;
* names (``clean_name``, and a lead's company): no ``<`` or ``>`` (no markup);
* names and e-mail addresses: each word (each part of an address) is written
  in one script, so a Cyrillic "а" inside a Latin name or domain is refused. A name may still
  have words in different scripts ("Asha आशा").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from wtforms import ValidationError as WTFormsValidationError

from app.core.errors import FieldError

# Scripts whose writing uses the zero-width joiner and non-joiner inside words.
_JOINING_SCRIPTS = frozenset(
    "ARABIC SYRIAC DEVANAGARI BENGALI GURMUKHI GUJARATI ORIYA TAMIL TELUGU KANNADA MALAYALAM "
    "SINHALA MONGOLIAN NKO THAANA TIBETAN MYANMAR KHMER".split()
)
# Scripts written together in one word (Japanese mixes kanji and kana, Korean hangul and hanja).
_SCRIPT_FAMILY = {
    "HIRAGANA": "CJK",
    "KATAKANA": "CJK",
    "KATAKANA-HIRAGANA": "CJK",
    "HANGUL": "CJK",
    "BOPOMOFO": "CJK",
}
_INVISIBLE_NAMES = {
    "\u200b": "a zero-width space (U+200B)",
    "\u200c": "a zero-width non-joiner (U+200C)",
    "\u200d": "a zero-width joiner (U+200D)",
    "\u2060": "a word joiner (U+2060)",
    "\ufeff": "a byte-order mark (U+FEFF)",
    "\u00ad": "a soft hyphen (U+00AD)",
}


def script_of(ch: str) -> str | None:
    """The script of a letter (``LATIN``, ``CYRILLIC``, ``DEVANAGARI``, ``CJK``...), None for
    anything else (digits, punctuation, spaces, combining marks)."""
    if not unicodedata.category(ch).startswith("L"):
        return None
    name = unicodedata.name(ch, "")
    if not name or name.startswith("MODIFIER"):
        return None
    script = name.split()[0]
    return _SCRIPT_FAMILY.get(script, script)


def _joiner_allowed(previous: str | None) -> bool:
    if previous is None:
        return False
    if unicodedata.category(previous) == "So":  # emoji sequences (👩‍💼)
        return True
    name = unicodedata.name(previous, "")
    return bool(name) and name.split()[0] in _JOINING_SCRIPTS


def _refuse_hidden_characters(text: str, field: str) -> None:
    previous = None
    for ch in text:
        category = unicodedata.category(ch)
        if category == "Cc" and ch not in "\t\n\r":
            raise FieldError("contains control characters (such as a NUL byte).", field)
        if category == "Cf" and not (ch in "\u200c\u200d" and _joiner_allowed(previous)):
            what = _INVISIBLE_NAMES.get(ch, f"an invisible formatting character (U+{ord(ch):04X})")
            raise FieldError(f"contains {what}; type the text again without it.", field)
        if category in ("Co", "Cs"):  # private use, lone surrogates (unassigned are allowed:
            # they may be characters newer than this Python's Unicode tables, such as emoji)
            raise FieldError(f"contains a character that is not text (U+{ord(ch):04X}).", field)
        previous = ch


def refuse_mixed_scripts(text: str, field: str, what: str = "word") -> None:
    """Each word of ``text`` in one script: a Latin name with a Cyrillic "а" is refused."""
    for word in _words(text):
        scripts = {s for s in map(script_of, word) if s}
        if len(scripts) > 1:
            raise FieldError(
                f"mixes letters of different scripts in one {what} "
                f"({' and '.join(sorted(s.title() for s in scripts))}: {word!r}); "
                "retype it in one alphabet.",
                field,
            )


def _words(text: str) -> list[str]:
    words, current = [], []
    for ch in text:
        if unicodedata.category(ch)[0] in "LM" or ch in "\u200c\u200d":
            current.append(ch)
        elif current:
            words.append("".join(current))
            current = []
    if current:
        words.append("".join(current))
    return words


def clean_text(value: Any, field: str, max_length: int, required: bool = False) -> str | None:
    """Strip and NFKC-normalise; refuse control characters (NUL and friends), invisible
    formatting characters (see the module's rules) and over-long text."""
    if value is None:
        text = ""
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise FieldError("must be text.", field)
    if len(text) > 4 * max_length:  # refuse before normalising a huge text
        raise FieldError(f"is too long ({len(text)} characters; at most {max_length}).", field)
    _refuse_hidden_characters(text, field)
    text = unicodedata.normalize("NFKC", text).strip()
    if len(text) > max_length:
        raise FieldError(f"is too long ({len(text)} characters; at most {max_length}).", field)
    if not text:
        if required:
            raise FieldError("is required.", field)
        return None
    return text


MARKUP = re.compile(r"[<>]")


def refuse_markup(text: str | None, field: str) -> None:
    """Names go into e-mails, PDFs, exports and other systems: no angle brackets, so no
    markup (``<img src=x onerror=...>``) can ride along, whatever a later consumer escapes."""
    if text and MARKUP.search(text):
        raise FieldError("may not contain < or >: a name is text, not markup.", field)


def clean_name(value: Any, field: str, max_length: int, required: bool = False) -> str | None:
    """A person's or company's name: ``clean_text``, one script per word, no markup."""
    text = clean_text(value, field, max_length, required)
    if text is not None:
        refuse_markup(text, field)
        refuse_mixed_scripts(text, field)
    return text


def normalise_email(value: Any, field: str = "email") -> str | None:
    """Lower-case, syntax-checked e-mail address (no DNS look-up), or None when empty. The
    part before the @ and each label of the domain are each written in one script."""
    text = clean_text(value, field, 254)
    if text is None:
        return None
    local, _, domain = text.rpartition("@")
    for part in [local, *domain.split(".")]:
        scripts = {s for s in map(script_of, part) if s}
        if len(scripts) > 1:
            raise FieldError(
                "is not a valid e-mail address: it mixes letters of different scripts "
                f"({' and '.join(sorted(s.title() for s in scripts))} in {part!r}), "
                "as look-alike addresses do.",
                field,
            )
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


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


MAX_ID = 2**31 - 1
"""The largest id an Integer primary key holds."""


def parse_id(value: Any, field: str) -> int:
    """A record's id: a whole number from 1 to ``MAX_ID`` (a larger one cannot exist, and the
    database would fail on it rather than find nothing)."""
    if isinstance(value, bool) or isinstance(value, float):
        raise FieldError("must be an id (a whole number).", field)
    try:
        number = int(str(value).strip())
    except ValueError:
        raise FieldError(
            f"must be an id (a whole number), not {str(value)[:40]!r}.", field
        ) from None
    if not 1 <= number <= MAX_ID:
        raise FieldError(f"must be an id from 1 to {MAX_ID}.", field)
    return number


def parse_date(value: Any, field: str, required: bool = False) -> date | None:
    """A calendar date from ``YYYY-MM-DD`` text (or a date). Only that form: a number such as
    ``20260215``, a week date or ``0000-00-00`` is refused, as is a day the month lacks."""
    if isinstance(value, date):
        return value
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise FieldError("is required.", field)
        return None
    text = value.strip() if isinstance(value, str) else ""
    try:
        if not _ISO_DATE.fullmatch(text):
            raise ValueError(text)
        return date.fromisoformat(text)
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
