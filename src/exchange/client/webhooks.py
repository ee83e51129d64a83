"""Receiving the hub's webhooks: check the Standard Webhooks signature before trusting an event."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


class InvalidWebhook(ValueError):
    """The body was not signed with the subscription's secret, is too old or too new, or is not an event."""


def verify_webhook(secret: str, body: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
    """The CloudEvent of a delivery whose ``webhook-*`` headers prove the hub sent this very body.

    ``secret`` is the subscription's (``whsec_…``, shown once when subscribing); ``body`` the raw bytes
    received, before any JSON parsing; ``headers`` the request's headers, in any case. De-duplicate by
    ``webhook-id``: a retried delivery carries the same one.
    """
    try:
        event = Webhook(secret).verify(body, {name.lower(): value for name, value in headers.items()})
    except (WebhookVerificationError, ValueError) as exc:  # ValueError: malformed headers or body
        raise InvalidWebhook(str(exc) or type(exc).__name__) from None
    if not isinstance(event, dict):
        raise InvalidWebhook("the body is not a JSON object")
    return event
