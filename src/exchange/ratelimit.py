"""Rate limits: per-minute windows in the database, shared by every hub process (for the cheap-to-abuse
entry points: open data and the token endpoint, per client address), and a token bucket per client system
in each process (for authenticated calls, where a database write per request would cost too much)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.errors import ExchangeError


class TooManyRequests(ExchangeError):
    status = 429
    code = "rate_limited"
    title = "Too many requests"


_COUNT = text(
    """
    INSERT INTO rate_windows (key, window_start, count) VALUES (:key, date_trunc('minute', now()), 1)
    ON CONFLICT (key, window_start) DO UPDATE SET count = rate_windows.count + 1
    RETURNING count
    """
)
_FORGET = text("DELETE FROM rate_windows WHERE window_start < now() - interval '10 minutes'")


async def within_rate(session: AsyncSession, key: str, per_minute: int, what: str) -> None:
    """Count the request in this minute's window, shared by every hub process; refuse past the limit."""
    count = int(await session.scalar(_COUNT, {"key": key}) or 0)
    if count == 1:
        await session.execute(_FORGET)
    if count > per_minute:
        seconds = 60 - datetime.now(UTC).second
        raise TooManyRequests(
            f"At most {per_minute} {what} a minute from one address; try again in {seconds} s.",
            headers={"Retry-After": str(seconds)},
        )


@dataclass
class ClientBuckets:
    """A token bucket per client: ``rate`` requests a second on average, bursts up to ``burst``."""

    rate: float
    burst: float
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)

    def take(self, client_id: str, now: float | None = None) -> float | None:
        """Spend one token; None if there was one, else the seconds until there will be."""
        if self.rate <= 0:
            return None
        now = time.monotonic() if now is None else now
        tokens, then = self._buckets.get(client_id, (self.burst, now))
        tokens = min(self.burst, tokens + (now - then) * self.rate)
        if tokens < 1:
            self._buckets[client_id] = (tokens, now)
            return (1 - tokens) / self.rate
        self._buckets[client_id] = (tokens - 1, now)
        return None


def refuse_client(client_id: str, wait: float, rate: float) -> TooManyRequests:
    seconds = max(1, math.ceil(wait))
    return TooManyRequests(
        f"Client {client_id} is over its limit of {rate:g} requests a second; try again in {seconds} s.",
        headers={"Retry-After": str(seconds)},
    )
