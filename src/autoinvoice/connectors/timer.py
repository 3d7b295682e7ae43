"""Where connectors read the time and wait: one source for both.

A rate limiter computes how long to wait from a clock and then sleeps; the HTTP layer sleeps
for ``Retry-After`` and backoff. If the clock were the real one and the sleep a test's fake,
waits would depend on how busy the machine is. So both come from one ``Timer``: production
uses ``SYSTEM_TIMER``; a test passes a timer whose clock moves only when it sleeps.
"""

from __future__ import annotations

import time
from typing import Protocol


class Timer(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (only differences are meaningful)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``; afterwards ``monotonic()`` has moved on by at least as much."""
        ...


class SystemTimer:
    """The process's monotonic clock and ``time.sleep``."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def __repr__(self) -> str:
        return "SYSTEM_TIMER"


SYSTEM_TIMER: Timer = SystemTimer()
