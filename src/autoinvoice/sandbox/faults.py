"""Fault injection for the platform stand-ins: scripted errors and lost responses.

    sandbox.faults.inject("/v1/invoices", status=429, retry_after=7, times=1)
    sandbox.faults.lose_response("/v1/invoices", times=1)

An injected status is answered *before* the request is processed (as a load balancer or a rate
limiter would: nothing happens on the platform). A lost response is the opposite: the request
IS processed, then the response never reaches the client -- the case idempotency exists for.
Rules match on method and path prefix and are used up in the order they were added. A rule
added without ``method=`` gets the stand-in's ``default_method`` (``"POST"`` unless the
stand-in says otherwise; ``None`` matches every method).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from enum import Enum, StrEnum


class FaultKind(StrEnum):
    STATUS = "status"
    LOSE_RESPONSE = "lose_response"


@dataclass(slots=True)
class Fault:
    kind: FaultKind
    path_prefix: str
    method: str | None
    remaining: int
    status: int = 0
    retry_after: float | None = None

    def matches(self, method: str, path: str) -> bool:
        return (self.remaining > 0 and path.startswith(self.path_prefix)
                and (self.method is None or self.method == method))


class ResponseLost(Exception):
    """The request was processed; its response must not reach the client. ``response`` is the
    answer that was lost, when the stand-in hands it over."""

    def __init__(self, message: str = "response lost (injected fault)",
                 response: tuple[int, dict[str, str], bytes] | None = None) -> None:
        super().__init__(message)
        self.response = response


class _Default(Enum):
    METHOD = "the stand-in's default method"


class Faults:
    """Thread-safe list of pending faults. ``method=None`` matches every method; an omitted
    ``method`` means ``default_method``."""

    def __init__(self, *, default_method: str | None = "POST") -> None:
        self.default_method = default_method
        self._rules: list[Fault] = []
        self._lock = threading.Lock()

    def inject(self, path_prefix: str, status: int = 500, *, retry_after: float | None = None,
               times: int = 1, method: str | None | _Default = _Default.METHOD) -> None:
        """Answer the next ``times`` matching requests with ``status`` (and ``Retry-After``)."""
        if not 400 <= status <= 599:
            raise ValueError(f"inject an error status, not {status}")
        self._add(Fault(FaultKind.STATUS, path_prefix, self._method(method), times, status,
                        retry_after))

    def lose_response(self, path_prefix: str, *, times: int = 1,
                      method: str | None | _Default = _Default.METHOD) -> None:
        """Process the next ``times`` matching requests, then drop their responses."""
        self._add(Fault(FaultKind.LOSE_RESPONSE, path_prefix, self._method(method), times))

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def take(self, method: str, path: str, kind: FaultKind | None = None) -> Fault | None:
        """The first pending rule matching this request (and ``kind``, if given), used up by
        one."""
        if not self._rules:  # fast path: no lock when nothing is scripted
            return None
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path) and kind in (None, rule.kind):
                    rule.remaining -= 1
                    self._rules = [r for r in self._rules if r.remaining > 0]
                    return rule
        return None

    @property
    def pending(self) -> int:
        with self._lock:
            return sum(rule.remaining for rule in self._rules)

    def _method(self, method: str | None | _Default) -> str | None:
        chosen = self.default_method if method is _Default.METHOD else method
        return chosen.upper() if chosen else None

    def _add(self, rule: Fault) -> None:
        if rule.remaining < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._rules.append(rule)
