"""Points in time as the API accepts them: with a UTC offset, and between the first and the last instant of
the years 1 to 9999 in UTC. Python has no UTC form for ``0001-01-01T00:00+01:00``, and asyncpg stores the
first and last instants themselves as PostgreSQL's -infinity and infinity, which come back without a time
zone; such input is refused, instead of failing where it is first compared, stored or read back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime
from pydantic_core import PydanticCustomError

FIRST = datetime.min.replace(tzinfo=UTC)
LAST = datetime.max.replace(tzinfo=UTC)
OUT_OF_RANGE = f"is out of range: after {FIRST.isoformat()} and before {LAST.isoformat()}"


def in_utc(moment: datetime) -> datetime:
    """An aware ``moment`` in UTC; ``ValueError`` if it falls outside the first and the last instant."""
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(OUT_OF_RANGE) from None
    if not FIRST < utc < LAST:
        raise ValueError(OUT_OF_RANGE)
    return utc


def _between_first_and_last(value: datetime) -> datetime:
    try:
        in_utc(value)
    except ValueError:
        raise PydanticCustomError("datetime_range", OUT_OF_RANGE) from None
    return value


Timestamp = Annotated[AwareDatetime, AfterValidator(_between_first_and_last)]
