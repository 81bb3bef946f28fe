"""FinCRM's local payment gateway, the ``test`` provider's other side: a small WSGI service
that creates payment links and, when told to, sends signed webhook events to the app.

    POST /intents                  {"amount", "currency", "description", "metadata"} -> {"id", "url"}
    GET  /pay/<id>                 the link's page
    POST /intents/<id>/events      {"type": "payment.succeeded" | "payment.failed" |
                                    "payment.refunded", "amount"?, "event_id"?, "timestamp"?,
                                    "secret"?} -> {"event_id", "status", "body"}

Run it with ``start_gateway(webhook_url, secret)`` (a thread on a free port); events are
signed ``Test-Signature: t=...,v1=...`` with ``secret`` (another ``secret`` forges one).
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

import requests
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from app.payments.providers import signature_header


@dataclass
class Gateway:
    webhook_url: str
    secret: str
    base_url: str = ""
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    deliveries: list[dict[str, Any]] = field(default_factory=list)

    def send(self, intent_id: str, body: dict[str, Any]) -> dict[str, Any]:
        intent = self.intents[intent_id]
        event_id = body.get("event_id") or f"evt_{uuid.uuid4().hex[:16]}"
        event = {
            "id": event_id,
            "type": body.get("type", "payment.succeeded"),
            "data": {
                "reference": intent_id,
                "amount": body.get("amount", intent["amount"]),
                "currency": intent["currency"],
                "metadata": intent["metadata"],
            },
        }
        payload = json.dumps(event).encode()
        header = signature_header(body.get("secret") or self.secret, payload, body.get("timestamp"))
        response = requests.post(
            self.webhook_url,
            data=payload,
            headers={"Content-Type": "application/json", "Test-Signature": header},
            timeout=30,
        )
        delivery = {"event_id": event_id, "status": response.status_code, "body": response.text}
        self.deliveries.append(delivery)
        return delivery

    def __call__(self, environ, start_response):
        request = Request(environ)
        parts = [p for p in request.path.split("/") if p]
        if request.method == "POST" and parts == ["intents"]:
            data = request.get_json(force=True)
            intent_id = f"tp_{uuid.uuid4().hex[:16]}"
            self.intents[intent_id] = {
                "amount": data["amount"],
                "currency": data["currency"],
                "description": data.get("description", ""),
                "metadata": data.get("metadata") or {},
            }
            answer = {"id": intent_id, "url": f"{self.base_url}/pay/{intent_id}"}
            response = Response(json.dumps(answer), 201, mimetype="application/json")
        elif request.method == "GET" and len(parts) == 2 and parts[0] == "pay":
            intent = self.intents.get(parts[1])
            if intent is None:
                response = Response("no such link", 404)
            else:
                text = f"Pay {intent['amount']} {intent['currency']}: {intent['description']}"
                response = Response(text, 200, mimetype="text/plain")
        elif request.method == "POST" and len(parts) == 3 and parts[::2] == ["intents", "events"]:
            if parts[1] not in self.intents:
                response = Response("no such intent", 404)
            else:
                delivery = self.send(parts[1], request.get_json(force=True) or {})
                response = Response(json.dumps(delivery), 200, mimetype="application/json")
        else:
            response = Response("not found", 404)
        return response(environ, start_response)


@dataclass
class RunningGateway:
    gateway: Gateway
    server: Any
    thread: threading.Thread

    @property
    def url(self) -> str:
        return self.gateway.base_url

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(5)


def serve_in_thread(wsgi_app: Any) -> tuple[Any, threading.Thread, str]:
    """Serve a WSGI app on a free local port in a daemon thread; returns (server, thread, url)."""
    server = make_server("127.0.0.1", 0, wsgi_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread, f"http://127.0.0.1:{server.server_port}"


def start_gateway(webhook_url: str, secret: str) -> RunningGateway:
    gateway = Gateway(webhook_url=webhook_url, secret=secret)
    server, thread, url = serve_in_thread(gateway)
    gateway.base_url = url
    return RunningGateway(gateway, server, thread)
