"""What a page of answers does to a subscription: position, retries, dead letters, pausing, 410 Gone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from exchange.subscriptions.feed import Position
from exchange.subscriptions.repository import Progress
from exchange.subscriptions.retries import Answer, retry_after, settle

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
SCHEDULE = [0.0, 5.0, 300.0]
HELD = Position(100, 1)
START = Progress(HELD, attempts=0, dead_in_a_row=0, status="active", status_reason=None, next_attempt_at=NOW)


def _answer(seq: int, status: int | None, wait: float | None = None) -> Answer:
    return Answer(Position(101, seq), status, None if status == 204 else "nope", wait, 1.5, NOW)


def _settle(
    progress: Progress, answers: list[Answer], scanned_to: Position | None = None, held: Position = HELD
) -> tuple[Progress, list[tuple[int, int, str]]]:
    settled, attempts = settle(progress, held, answers, scanned_to, schedule=SCHEDULE, pause_after=2, now=NOW)
    return settled, [(a.event_seq, a.attempt, a.outcome) for a in attempts]


def test_a_delivered_page_moves_the_position_past_everything_it_scanned() -> None:
    answers = [_answer(seq, 204) for seq in (1, 2, 3)]
    settled, attempts = _settle(START, answers, scanned_to=Position(101, 9))
    assert settled.cursor == Position(101, 9), "changes the subscription skips are passed too"
    assert attempts == [(1, 1, "delivered"), (2, 1, "delivered"), (3, 1, "delivered")]


def test_a_failure_keeps_the_position_at_the_last_delivered_event_and_schedules_a_retry() -> None:
    settled, attempts = _settle(START, [_answer(1, 204), _answer(2, 204), _answer(3, 503)])
    assert settled.cursor == Position(101, 2)
    assert (settled.attempts, settled.next_attempt_at) == (1, NOW + timedelta(seconds=5))
    assert attempts[-1] == (3, 1, "failed")


def test_retry_after_is_honoured_when_longer_than_the_schedule() -> None:
    settled, _ = _settle(START, [_answer(1, 429, wait=120.0)])
    assert settled.next_attempt_at == NOW + timedelta(seconds=120)


def test_the_event_at_the_head_counts_its_earlier_attempts_until_it_is_a_dead_letter() -> None:
    tried = Progress(HELD, 1, 0, "active", None, NOW)
    settled, attempts = _settle(tried, [_answer(1, 500)])
    assert (settled.attempts, attempts) == (2, [(1, 2, "failed")])
    settled, attempts = _settle(settled, [_answer(1, 500)])
    assert attempts == [(1, 3, "dead")]
    assert (settled.cursor, settled.attempts, settled.dead_in_a_row) == (Position(101, 1), 0, 1)
    assert settled.status == "active"


def test_dead_letters_in_a_row_pause_the_subscription_and_a_delivery_breaks_the_row() -> None:
    one_dead = Progress(HELD, 2, 1, "active", None, NOW)
    settled, _ = _settle(one_dead, [_answer(1, 500)])
    assert (settled.status, settled.status_reason) == ("paused", "2 events in a row could not be delivered")
    settled, _ = _settle(one_dead, [_answer(1, 204)])
    assert (settled.status, settled.dead_in_a_row) == ("active", 0)


def test_410_gone_disables_even_when_a_replay_moved_the_position_meanwhile() -> None:
    settled, _ = _settle(START, [_answer(1, 410)])
    assert (settled.status, settled.cursor) == ("disabled", HELD)
    replayed = Progress(Position(50, 1), 0, 0, "active", None, NOW)
    settled, attempts = _settle(replayed, [_answer(1, 204), _answer(2, 410)])
    assert (settled.status, settled.cursor) == ("disabled", Position(50, 1))
    assert [outcome for _, _, outcome in attempts] == ["delivered", "failed"], "the posts are still logged"


def test_a_replay_while_the_page_was_out_keeps_the_position_the_replay_set() -> None:
    replayed = Progress(Position(50, 1), 0, 0, "active", None, NOW)
    settled, attempts = _settle(replayed, [_answer(1, 204)], scanned_to=Position(101, 9))
    assert settled == replayed
    assert attempts == [(1, 1, "delivered")]


def test_a_page_with_nothing_for_the_subscription_only_moves_the_position() -> None:
    settled, attempts = _settle(START, [], scanned_to=Position(101, 9))
    assert (settled.cursor, attempts) == (Position(101, 9), [])


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("120", 120.0), ("Sun, 22 Nov 2026 08:01:00 GMT", 60.0), ("soon", None), (None, None)],
)
def test_retry_after_in_seconds_or_as_a_date(header: str | None, seconds: float | None) -> None:
    assert retry_after(header, NOW) == seconds
