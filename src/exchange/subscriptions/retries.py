"""What the endpoint's answers to a page of posts do to a subscription: the position, retries on the
configured schedule (Retry-After honoured), dead letters, pausing after dead letters in a row, disabling on
410 Gone. Pure: the deliverer reads the subscription's progress, asks :func:`settle` and writes the result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from exchange.subscriptions.feed import Position
from exchange.subscriptions.repository import Attempt, Progress


def retry_after(value: str | None, now: datetime) -> float | None:
    """A Retry-After header in seconds: given as seconds or as an HTTP date."""
    if value is None:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        return max(0.0, (parsedate_to_datetime(value) - now).total_seconds())
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class Answer:
    """How the endpoint answered the post of one event (``status`` None: no answer, see ``error``)."""

    position: Position
    status: int | None
    error: str | None
    retry_after: float | None
    duration_ms: float
    at: datetime

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def _gone(progress: Progress) -> Progress:
    return replace(progress, status="disabled", status_reason="the endpoint answered 410 Gone")


def settle(
    progress: Progress,
    held: Position,
    answers: Sequence[Answer],
    scanned_to: Position | None,
    *,
    schedule: Sequence[float],
    pause_after: int,
    now: datetime,
    jitter: float = 1.0,
) -> tuple[Progress, list[Attempt]]:
    """The subscription's progress after a page, and the page's rows of the attempts log.

    ``answers`` are the page's posts in order, from the event after ``held``: all delivered but perhaps the
    last (a page stops at the first failure, to keep the order). ``scanned_to``, given when the whole page
    was delivered, is where its scan ended: the position moves past the changes the subscription skips too.
    The first event may have been tried before (``progress.attempts``); the others are on their first try.

    A replay while the page was out moved the position: it stays where the replay put it, and the
    attempts are only logged (a 410 still disables the subscription: it is about the endpoint).
    """
    moved = progress.cursor != held
    settled = progress
    attempts: list[Attempt] = []
    for index, answer in enumerate(answers):
        number = progress.attempts + 1 if index == 0 else 1
        if answer.delivered:
            outcome = "delivered"
            settled = replace(
                settled, cursor=answer.position, attempts=0, dead_in_a_row=0, next_attempt_at=now
            )
        elif answer.status == 410:
            outcome = "failed"
            settled = _gone(settled)
        elif number < len(schedule):
            outcome = "failed"
            delay = max(schedule[number] * jitter, answer.retry_after or 0.0)
            settled = replace(settled, attempts=number, next_attempt_at=now + timedelta(seconds=delay))
        else:
            outcome = "dead"
            dead = settled.dead_in_a_row + 1
            settled = replace(
                settled, cursor=answer.position, attempts=0, dead_in_a_row=dead, next_attempt_at=now
            )
            if dead >= pause_after:
                settled = replace(
                    settled, status="paused", status_reason=f"{dead} events in a row could not be delivered"
                )
        attempts.append(
            Attempt(
                answer.position.seq,
                number,
                outcome,
                answer.status,
                answer.error,
                round(answer.duration_ms, 2),
                answer.at,
            )
        )
    if moved:
        return (_gone(progress) if answers and answers[-1].status == 410 else progress), attempts
    if scanned_to is not None and scanned_to > settled.cursor:
        settled = replace(settled, cursor=scanned_to)
    return settled, attempts
