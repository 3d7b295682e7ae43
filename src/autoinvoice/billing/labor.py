"""Splitting worked time into rate windows: normal, overtime (weekday outside the working
window), weekend and public holiday. A span is cut at midnight and at the window edges, in the
tenant's time zone (or the entry's own UTC offset when the tenant names none). Worked time is
first rounded to the tenant's increment (per entry: the end moves, the start never does)."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from autoinvoice.billing.rules import TimeRounding


class Window(StrEnum):
    NORMAL = "normal"
    OVERTIME = "overtime"
    WEEKEND = "weekend"
    HOLIDAY = "holiday"


def rounded_seconds(seconds: int, increment_minutes: int, mode: TimeRounding) -> int:
    """``seconds`` rounded to whole increments: up (any started increment counts) or to the
    nearest (half an increment rounds up); unchanged without an increment."""
    step = increment_minutes * 60
    if not step or mode is TimeRounding.NONE:
        return seconds
    whole, rest = divmod(seconds, step)
    if rest and (mode is TimeRounding.UP or rest * 2 >= step):
        whole += 1
    return whole * step


def _window_of(moment: datetime, day_start: time, day_end: time,
               holidays: Collection[date] = ()) -> Window:
    if moment.date() in holidays:
        return Window.HOLIDAY
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
    start: datetime, end: datetime, day_start: time, day_end: time, zone: ZoneInfo | None,
    holidays: Collection[date] = (),
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
            yield _window_of(moment, day_start, day_end, holidays), seconds
        moment = cut
