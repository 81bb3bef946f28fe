"""The shared input rules: what staff type and what gets stored."""

from __future__ import annotations

import pytest

from app.core.errors import FieldError
from app.core.validators import clean_text, normalise_email, normalise_phone


@pytest.mark.parametrize(
    "typed, region, stored",
    [
        ("+91 98765 43210", "IN", "+919876543210"),
        ("098765 43210", "IN", "+919876543210"),
        ("(02) 9374 4000", "AU", "+61293744000"),
        ("0412 345 678", "AU", "+61412345678"),
        ("", "IN", None),
    ],
)
def test_phones_are_stored_in_e164(typed, region, stored):
    assert normalise_phone(typed, region) == stored


@pytest.mark.parametrize("typed", ["12", "+91 98765", "not a number", "+999 1234567"])
def test_malformed_phones_are_refused_naming_the_field(typed):
    with pytest.raises(FieldError) as error:
        normalise_phone(typed, "IN", "mobile")
    assert error.value.field == "mobile"


def test_emails_are_stored_lower_case():
    assert normalise_email("  Asha.Verma@Example.COM ") == "asha.verma@example.com"


@pytest.mark.parametrize("typed", ["asha@", "@example.com", "asha verma@example.com", "a@b"])
def test_bad_emails_are_refused(typed):
    with pytest.raises(FieldError, match="not a valid e-mail"):
        normalise_email(typed)


def test_text_refuses_nul_and_overlong_and_strips():
    assert clean_text("  Asha ", "name", 10) == "Asha"
    with pytest.raises(FieldError, match="NUL"):
        clean_text("As\x00ha", "name", 10)
    with pytest.raises(FieldError, match="at most 10"):
        clean_text("x" * 11, "name", 10)
    with pytest.raises(FieldError, match="required"):
        clean_text("   ", "name", 10, required=True)
