"""Decision deadlines in working days (pure)."""

from __future__ import annotations

from datetime import datetime, timedelta


def add_working_days(start: datetime, days: int) -> datetime:
    """``start`` moved ``days`` working days ahead, Saturdays and Sundays skipped.

    Public holidays and the make-up working weekends of the Chinese calendar are not modelled: the
    deadline can fall a day or two early around them, never late.
    """
    moment = start
    remaining = days
    while remaining > 0:
        moment += timedelta(days=1)
        if moment.weekday() < 5:
            remaining -= 1
    return moment
