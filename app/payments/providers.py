"""Payment providers behind one protocol: create a payment link, check a webhook's signature,
read an event into a normalised ``ProviderEvent``.

Two providers ship: ``test`` (FinCRM's own local gateway, ``app.payments.test_gateway``) and
``stripe`` (the Stripe HTTP API shape: Checkout Sessions created with a form-encoded POST,
events signed ``Stripe-Signature: t=...,v1=...``). Both sign the same way (``app.core.signing``):
HMAC-SHA256 with the webhook signing secret over ``"{t}.{payload}"``, refused when the timestamp
is further than the tolerance from now.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

import requests
from flask import current_app

from app.core.errors import DomainError
from app.core.signing import (  # noqa: F401  (the scheme, shared with other webhooks)
    SignatureRefused,
    signature,
    signature_header,
    verify_signature,
)

CENT = Decimal("0.01")


class EventUnreadable(Exception):
    """A correctly signed body that is not an event this provider sends."""


class ProviderUnavailable(DomainError):
    """The provider could not be reached, or refused to create the link."""

    status = 503


@dataclass(frozen=True)
class LinkRequest:
    intent_id: int
    amount: Decimal
    currency: str
    description: str
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CreatedLink:
    reference: str
    url: str


@dataclass(frozen=True)
class ProviderEvent:
    """An event, whatever provider sent it. ``type`` is succeeded, failed or refunded (None:
    a kind of event FinCRM does not act on); ``metadata`` names what it pays."""

    event_id: str
    type: str | None
    reference: str | None
    amount: Decimal | None
    currency: str | None
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def intent_id(self) -> int | None:
        try:
            return int(self.metadata["fincrm_intent"])
        except (KeyError, TypeError, ValueError):
            return None


class PaymentProvider(Protocol):
    name: str
    signature_header: str

    def create_link(self, request: LinkRequest) -> CreatedLink: ...

    def verify(self, payload: bytes, headers: Mapping[str, str], now: float | None = None) -> None:
        """Raise ``SignatureRefused`` unless signed with the webhook secret within tolerance."""

    def parse_event(self, payload: bytes) -> ProviderEvent: ...


def _money(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation as exc:
        raise EventUnreadable(f"the amount {str(value)[:20]!r} is not a number.") from exc
    if not amount.is_finite() or amount != amount.quantize(CENT):
        raise EventUnreadable("the amount is not in whole cents.")
    return amount


def _json(payload: bytes) -> dict[str, Any]:
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EventUnreadable("the body is not JSON.") from exc
    if not isinstance(body, dict) or not isinstance(body.get("id"), str) or not body["id"]:
        raise EventUnreadable("the event has no id.")
    return body


def _metadata(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict):
        return {}
    return {str(k)[:60]: str(v)[:200] for k, v in raw.items()}


def _setting(name: str, default: Any = "") -> Any:
    return current_app.config.get(name) or default


class _SignedProvider:
    name = ""
    signature_header = ""

    def __init__(self) -> None:
        self.secret_key = _setting("CRM_PAYMENT_SECRET_KEY")
        self.webhook_secret = _setting("CRM_PAYMENT_WEBHOOK_SECRET")
        self.base_url = _setting("CRM_PAYMENT_BASE_URL").rstrip("/")
        self.tolerance = int(_setting("CRM_PAYMENT_TOLERANCE_SECONDS", 300))
        self.timeout = float(_setting("CRM_PAYMENT_TIMEOUT", 10))
        self.return_url = _setting("CRM_BASE_URL", "http://127.0.0.1:8080").rstrip("/") + "/"

    def verify(self, payload: bytes, headers: Mapping[str, str], now: float | None = None) -> None:
        verify_signature(
            self.webhook_secret, payload, headers.get(self.signature_header), self.tolerance, now
        )


# ---- the test provider ----------------------------------------------------------------------

TEST_EVENT_TYPES = {
    "payment.succeeded": "succeeded",
    "payment.failed": "failed",
    "payment.refunded": "refunded",
}


class TestProvider(_SignedProvider):
    """FinCRM's local gateway (``app.payments.test_gateway``): JSON in, JSON events out."""

    name = "test"
    signature_header = "Test-Signature"

    def create_link(self, request: LinkRequest) -> CreatedLink:
        body = {
            "amount": str(request.amount),
            "currency": request.currency,
            "description": request.description,
            "metadata": request.metadata,
        }
        try:
            response = requests.post(
                f"{self.base_url}/intents",
                json=body,
                headers={"Authorization": f"Bearer {self.secret_key}"},
                timeout=self.timeout,
            )
            response.raise_for_status()
            data = response.json()
            return CreatedLink(reference=str(data["id"]), url=str(data["url"]))
        except (requests.RequestException, ValueError, KeyError) as exc:
            raise ProviderUnavailable(f"the test gateway did not create the link: {exc}") from exc

    def parse_event(self, payload: bytes) -> ProviderEvent:
        body = _json(payload)
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        currency = data.get("currency")
        return ProviderEvent(
            event_id=body["id"][:120],
            type=TEST_EVENT_TYPES.get(body.get("type")),
            reference=str(data["reference"])[:120] if data.get("reference") else None,
            amount=_money(data.get("amount")),
            currency=str(currency).upper()[:3] if currency else None,
            metadata=_metadata(data.get("metadata")),
        )


# ---- the Stripe shape -----------------------------------------------------------------------

STRIPE_SUCCEEDED = {"checkout.session.completed", "checkout.session.async_payment_succeeded"}
STRIPE_SESSION_FAILED = {"checkout.session.async_payment_failed", "checkout.session.expired"}


def _minor_units(amount: Decimal) -> int:
    return int((amount / CENT).to_integral_value())


def _from_minor_units(value: Any) -> Decimal | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise EventUnreadable("the amount is not a whole number of minor units.")
    return (Decimal(value) * CENT).quantize(CENT)


class StripeProvider(_SignedProvider):
    """Stripe's HTTP API shape, called with ``requests`` (no SDK): a Checkout Session per link,
    events read from ``Stripe-Signature``-signed webhooks. Amounts travel in minor units;
    currencies with two decimals only."""

    name = "stripe"
    signature_header = "Stripe-Signature"

    def create_link(self, request: LinkRequest) -> CreatedLink:
        form: dict[str, str] = {
            "mode": "payment",
            "success_url": self.return_url,
            "cancel_url": self.return_url,
            "client_reference_id": str(request.intent_id),
            "line_items[0][quantity]": "1",
            "line_items[0][price_data][currency]": request.currency.lower(),
            "line_items[0][price_data][unit_amount]": str(_minor_units(request.amount)),
            "line_items[0][price_data][product_data][name]": request.description[:250],
        }
        for key, value in request.metadata.items():
            form[f"metadata[{key}]"] = value
            # the payment (so its charge and refunds) carries the same names
            form[f"payment_intent_data[metadata][{key}]"] = value
        try:
            response = requests.post(
                f"{self.base_url}/v1/checkout/sessions",
                data=form,
                auth=(self.secret_key, ""),
                headers={"Idempotency-Key": f"fincrm-intent-{request.intent_id}"},
                timeout=self.timeout,
            )
            response.raise_for_status()
            data = response.json()
            return CreatedLink(reference=str(data["id"]), url=str(data["url"]))
        except (requests.RequestException, ValueError, KeyError) as exc:
            raise ProviderUnavailable(f"Stripe did not create the checkout session: {exc}") from exc

    def parse_event(self, payload: bytes) -> ProviderEvent:
        body = _json(payload)
        kind = body.get("type")
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        obj = data.get("object") if isinstance(data.get("object"), dict) else {}
        currency = obj.get("currency")
        normal, reference, amount = None, None, None
        if kind in STRIPE_SUCCEEDED or kind in STRIPE_SESSION_FAILED:
            normal = "succeeded" if kind in STRIPE_SUCCEEDED else "failed"
            if normal == "succeeded" and obj.get("payment_status") not in (None, "paid"):
                normal = None  # completed, but the money is still on its way
            amount, reference = _from_minor_units(obj.get("amount_total")), obj.get("id")
        elif kind == "payment_intent.payment_failed":
            normal, amount = "failed", _from_minor_units(obj.get("amount"))
        elif kind == "charge.refunded":
            normal, amount = "refunded", _from_minor_units(obj.get("amount_refunded"))
        return ProviderEvent(
            event_id=body["id"][:120],
            type=normal,
            reference=str(reference)[:120] if reference else None,
            amount=amount,
            currency=str(currency).upper()[:3] if currency else None,
            metadata=_metadata(obj.get("metadata")),
        )


PROVIDERS: dict[str, type[_SignedProvider]] = {"test": TestProvider, "stripe": StripeProvider}


def configured_provider() -> PaymentProvider:
    """The provider ``CRM_PAYMENT_PROVIDER`` names."""
    name = current_app.config.get("CRM_PAYMENT_PROVIDER", "test")
    if name not in PROVIDERS:
        raise ProviderUnavailable(f"CRM_PAYMENT_PROVIDER={name!r} is not a known provider.")
    return PROVIDERS[name]()


def provider_named(name: str) -> PaymentProvider | None:
    """The provider a webhook URL names, if it is the configured one (others are refused)."""
    if name != current_app.config.get("CRM_PAYMENT_PROVIDER", "test") or name not in PROVIDERS:
        return None
    return PROVIDERS[name]()
