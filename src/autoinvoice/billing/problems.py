"""Why an invoice is held for review instead of guessed: a reason code and a plain message."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """``code`` is stable (docs/billing.md lists them all); ``message`` is for a person."""

    code: str
    message: str
