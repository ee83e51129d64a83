"""The pure parts of delivery: filter matching, cursors, and which targets are refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from exchange.errors import InvalidInput
from exchange.subscriptions.feed import Position, matches
from exchange.subscriptions.targets import PinnedResolver, TargetRefused, check, parse_networks

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def test_filters_match_after_or_before_the_change() -> None:
    moved = [{"element": "household_division", "prefix": "150402"}]
    assert matches(moved, {"household_division": "150402001"}, {})
    assert matches(moved, {"household_division": "150403001"}, {"household_division": "150402001"})
    assert not matches(moved, {"household_division": "150403001"}, {})
    both = [*moved, {"element": "sex", "equals": "2"}]
    assert not matches(both, {"household_division": "150402001", "sex": "1"}, {})
    assert not matches(moved, {"household_division": None}, {})


def test_cursors_round_trip_and_order() -> None:
    first, second = Position(10, 5), Position(11, 1)
    assert Position.parse(first.cursor()) == first
    assert first < second
    with pytest.raises(InvalidInput):
        Position.parse("not-a-cursor")


async def test_private_targets_are_refused_unless_allowed() -> None:
    for url in (
        "http://127.0.0.1:8080/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest",
        "http://10.1.2.3/",
    ):
        with pytest.raises(TargetRefused):
            await check(url, [])
    await check("http://127.0.0.1:8080/hook", parse_networks("127.0.0.0/8"))
    for url in ("ftp://example.org/", "http://user:pw@example.org/", "http:///nohost"):
        with pytest.raises(TargetRefused):
            await check(url, [])


async def test_the_deliverers_resolver_refuses_names_that_resolve_to_refused_addresses() -> None:
    with pytest.raises(OSError, match="refused target localhost"):
        await PinnedResolver([]).resolve("localhost", 80)
    allowed = PinnedResolver(parse_networks("127.0.0.0/8, ::1/128"))
    assert {result["host"] for result in await allowed.resolve("localhost", 80)} <= {"127.0.0.1", "::1"}
