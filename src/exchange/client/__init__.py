"""The Python client for department systems: publish, read, verify, share, cross-check and follow changes::

    from exchange.client import ExchangeClient

    with ExchangeClient("https://exchange.example.gov.cn", "cl_…", "cs_…") as hub:
        hub.query("population.person", ["150402…"], ["name"], purpose="social-assistance-eligibility")

:class:`AsyncExchangeClient` offers the same methods for asyncio. Both build their requests with
:mod:`exchange.client.api`; only the sending differs.
"""

from exchange.client.aio import AsyncExchangeClient
from exchange.client.auth import load_private_key
from exchange.client.errors import (
    BadRequest,
    Conflict,
    ExchangeError,
    Forbidden,
    InvalidParam,
    NotFound,
    PreconditionFailed,
    RateLimited,
    ServerError,
    Unauthorized,
    ValidationFailed,
)
from exchange.client.sync import ExchangeClient
from exchange.client.webhooks import InvalidWebhook, verify_webhook

__all__ = [
    "AsyncExchangeClient",
    "BadRequest",
    "Conflict",
    "ExchangeClient",
    "ExchangeError",
    "Forbidden",
    "InvalidParam",
    "InvalidWebhook",
    "NotFound",
    "PreconditionFailed",
    "RateLimited",
    "ServerError",
    "Unauthorized",
    "ValidationFailed",
    "load_private_key",
    "verify_webhook",
]
