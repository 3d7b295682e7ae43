"""Saved results of idempotent POSTs, as docs.stripe.com/api/idempotent_requests describes.

A result is saved under its ``Idempotency-Key`` once execution began; the same key with the
same parameters replays it (``Idempotent-Replayed: true``, ``Original-Request``), with other
parameters or another endpoint it is a 400 ``idempotency_error``; keys are forgotten after
``KEY_TTL`` seconds of the injectable clock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias

from autoinvoice.sandbox.stripe.errors import StripeError

KEY_TTL = 24 * 3600
Fingerprint: TypeAlias = tuple[str, str, tuple[tuple[str, str], ...]]
Answer: TypeAlias = tuple[int, dict[str, str], bytes]


@dataclass(frozen=True, slots=True)
class _Saved:
    at: float
    fingerprint: Fingerprint
    status: int
    body: bytes
    request_id: str


class SavedResults:
    """Results by idempotency key, oldest first. Not locked itself: the sandbox's lock is held."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._saved: OrderedDict[str, _Saved] = OrderedDict()

    def replay(self, key: str, fingerprint: Fingerprint) -> Answer | None:
        """The saved answer for ``key``, or None when there is none (yet, or any more)."""
        if len(key) > 255:
            raise StripeError(400, "Idempotency key is too long (at most 255 characters)")
        self._expire()
        saved = self._saved.get(key)
        if saved is None:
            return None
        if saved.fingerprint != fingerprint:
            raise StripeError(400, "Keys for idempotent requests can only be used with the same "
                              f"parameters they were first used with. Try using a key other "
                              f"than '{key}' if you meant to execute a different request.",
                              type="idempotency_error")
        return saved.status, {"Idempotency-Key": key, "Idempotent-Replayed": "true",
                              "Original-Request": saved.request_id}, saved.body

    def save(self, key: str, fingerprint: Fingerprint, status: int, body: bytes,
             request_id: str) -> None:
        self._saved[key] = _Saved(self._clock(), fingerprint, status, body, request_id)

    def _expire(self) -> None:
        horizon = self._clock() - KEY_TTL
        while self._saved:
            oldest = next(iter(self._saved.values()))
            if oldest.at > horizon:
                return
            self._saved.popitem(last=False)
