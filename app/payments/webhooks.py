"""``POST /webhooks/payments/<provider>``: no sign-in and no CSRF token (the provider's
signature is the credential), rate limited per address like the public enquiry form."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from app.payments.services import receive_webhook

payment_webhooks = Blueprint("payment_webhooks", __name__, url_prefix="/webhooks/payments")


@payment_webhooks.route("/<string:provider>", methods=["POST"])
def payment_event(provider: str):
    answer = receive_webhook(provider, request.get_data(cache=False), request.headers)
    return jsonify(answer.body), answer.status
