"""A department's webhook receiver trusts a delivery only with the subscription secret's signature."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

from exchange.client import InvalidWebhook, verify_webhook

SECRET = "whsec_" + base64.b64encode(b"a subscription's signing secret!").decode()
EVENT = {"specversion": "1.0", "type": "cn.gov.exchange.record.changed", "data": {"subject_id": "150402…"}}


def _delivery(body: bytes, secret: str = SECRET, sent: float | None = None) -> dict[str, str]:
    at = datetime.fromtimestamp(sent if sent is not None else time.time(), UTC)
    signature = Webhook(secret).sign("evt-1", at, body.decode())
    timestamp = str(int(at.timestamp()))
    return {"Webhook-Id": "evt-1", "Webhook-Timestamp": timestamp, "Webhook-Signature": signature}


def test_a_signed_delivery_gives_its_event_and_anything_else_is_refused() -> None:
    body = json.dumps(EVENT, ensure_ascii=False).encode()
    assert verify_webhook(SECRET, body, _delivery(body)) == EVENT

    other_secret = "whsec_" + base64.b64encode(b"someone else's secret, not ours").decode()
    refused = {
        "tampered body": (body.replace(b"150402", b"150403"), _delivery(body)),
        "another secret": (body, _delivery(body, other_secret)),
        "replayed an hour later": (body, _delivery(body, sent=time.time() - 3600)),
        "unsigned": (body, {}),
        "malformed signature": (body, _delivery(body) | {"Webhook-Signature": "v1"}),
        "not an object": (b"[1]", _delivery(b"[1]")),
    }
    accepted = []
    for case, (received, headers) in refused.items():
        try:
            verify_webhook(SECRET, received, headers)
        except InvalidWebhook:
            continue
        accepted.append(case)
    assert accepted == []
