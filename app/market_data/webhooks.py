"""``POST /webhooks/market/prices`` and ``POST /webhooks/market/fx-rates``: no sign-in and no
CSRF token (the provider's signature is the credential), rate limited per address."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from app.market_data.services import receive_market_webhook

market_webhooks = Blueprint("market_webhooks", __name__, url_prefix="/webhooks/market")


@market_webhooks.route("/prices", methods=["POST"])
def price_event():
    answer = receive_market_webhook("price", request.get_data(cache=False), request.headers)
    return jsonify(answer.body), answer.status


@market_webhooks.route("/fx-rates", methods=["POST"])
def fx_rate_event():
    answer = receive_market_webhook("fx_rate", request.get_data(cache=False), request.headers)
    return jsonify(answer.body), answer.status
