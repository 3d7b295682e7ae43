"""Splitting worked time into rate windows: normal, overtime (weekday outside the working
window) and weekend. A span is cut at midnight and at the window edges, in the tenant's
time zone (or the entry's own UTC offset when the tenant names none)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo


class Window(StrEnum):
    NORMAL = "normal"
    OVERTIME = "overtime"
    WEEKEND = "weekend"


def _window_of(moment: datetime, day_start: time, day_end: time) -> Window:
    if moment.weekday() >= 5:
        return Window.WEEKEND
    return Window.NORMAL if day_start <= moment.time() < day_end else Window.OVERTIME


def _next_cut(moment: datetime, day_start: time, day_end: time) -> datetime:
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    cuts = [
        day.replace(hour=day_start.hour, minute=day_start.minute),
        day.replace(hour=day_end.hour, minute=day_end.minute),
        day + timedelta(days=1),
    ]
    return min(c for c in cuts if c > moment)


def split_seconds(
    start: datetime, end: datetime, day_start: time, day_end: time, zone: ZoneInfo | None
) -> Iterator[tuple[Window, int]]:
    """(window, seconds) for each stretch of [start, end)."""
    tz = zone or start.tzinfo
    moment, stop = start.astimezone(tz), end.astimezone(tz)
    while moment < stop:
        # Wall-clock cut points; compare in UTC so a DST change cannot loop.
        cut = min(_next_cut(moment.replace(tzinfo=None), day_start, day_end).replace(
            tzinfo=tz), stop, key=lambda x: x.timestamp())
        if cut.timestamp() <= moment.timestamp():
            cut = stop
        seconds = int(cut.timestamp() - moment.timestamp())
        if seconds:
            yield _window_of(moment, day_start, day_end), seconds
        moment = cut
