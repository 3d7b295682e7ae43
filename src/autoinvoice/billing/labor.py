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


def _next_cut(moment: datetime, edges: tuple[time, ...]) -> datetime:
    """The next wall-clock edge after ``moment`` (naive): a window edge, else midnight."""
    now, day = moment.time(), moment.date()
    for edge in edges:
        if now < edge:
            return datetime.combine(day, edge)
    return datetime.combine(day + timedelta(days=1), time(0))


def split_seconds(
    start: datetime, end: datetime, day_start: time, day_end: time, zone: ZoneInfo | None,
    holidays: Collection[date] = (),
) -> Iterator[tuple[Window, int]]:
    """(window, seconds) for each stretch of [start, end)."""
    tz = zone or start.tzinfo
    edges = tuple(sorted((day_start, day_end)))
    moment, stop = start.astimezone(tz), end.astimezone(tz)
    if moment.utcoffset() == stop.utcoffset():
        # No clock change inside (an entry is at most a day): wall-clock arithmetic is exact.
        yield from _split_wall_clock(moment.replace(tzinfo=None), stop.replace(tzinfo=None),
                                     edges, day_start, day_end, holidays)
        return
    at, stop_at = moment.timestamp(), stop.timestamp()
    while at < stop_at:
        # Wall-clock cut points; compare in UTC so a DST change cannot loop.
        cut = _next_cut(moment.replace(tzinfo=None), edges).replace(tzinfo=tz)
        cut_at = cut.timestamp()
        if cut_at > stop_at or cut_at <= at:
            cut, cut_at = stop, stop_at
        seconds = int(cut_at - at)
        if seconds:
            yield _window_of(moment, day_start, day_end, holidays), seconds
        moment, at = cut, cut_at


def _split_wall_clock(moment: datetime, stop: datetime, edges: tuple[time, ...], day_start: time,
                      day_end: time, holidays: Collection[date]) -> Iterator[tuple[Window, int]]:
    while moment < stop:
        cut = min(_next_cut(moment, edges), stop)
        yield _window_of(moment, day_start, day_end, holidays), int((cut - moment).total_seconds())
        moment = cut
