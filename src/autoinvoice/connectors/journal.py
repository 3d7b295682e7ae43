"""The platform conversation of one unit of work, for the audit pack: every HTTP attempt a
connector makes while ``collecting()`` is active in the current thread (or task), with its
request and response, secrets masked by the client that made it.

Connectors stay unaware of it: ``HttpClient`` calls ``note()`` after each attempt, which
does nothing unless the pipeline opened a journal around the step. The store takes what was
collected (``drain``) into the transaction that records the step's outcome, so the exchanges
and their hash in the audit log cost no transaction of their own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

__all__ = ["BODY_LIMIT", "collecting", "drain", "mask_fields", "note"]

#: Longer bodies are cut (with a marker): the pack documents, it doesn't mirror the platform.
BODY_LIMIT = 64_000
MASK = "***"
_JOURNAL: ContextVar[list[dict[str, Any]] | None] = ContextVar("platform_journal", default=None)

# Values of credential-like fields in JSON ("key": "value") and forms (key=value); the
# client's masker already removes the secrets it knows, this also catches ones it cannot
# (a token a platform hands back).
_SECRET_NAMES = (r"(?:access_token|refresh_token|id_token|client_secret|password|api_key|"
                 r"apikey|secret|token|authorization)")
_JSON_FIELD = re.compile(rf'("{_SECRET_NAMES}"\s*:\s*)"(?:[^"\\]|\\.)*"', re.IGNORECASE)
_FORM_FIELD = re.compile(rf"(?<![\w-])({_SECRET_NAMES}=)[^&\s]*", re.IGNORECASE)


# What a field the patterns mask must contain (lower-cased): a cheap test that lets most
# bodies skip the regular expressions.
_HINTS = tuple(f"{q}{name}{end}" for name in ("access_token", "refresh_token", "id_token",
                                              "client_secret", "password", "api_key",
                                              "apikey", "secret", "token", "authorization")
               for q, end in (('"', '"'), ("", "=")))


def mask_fields(text: str) -> str:
    """``text`` with the values of credential-named JSON and form fields replaced."""
    lowered = text.lower()
    if not any(hint in lowered for hint in _HINTS):  # most bodies: no regex pass at all
        return text
    return _FORM_FIELD.sub(rf"\1{MASK}", _JSON_FIELD.sub(rf'\1"{MASK}"', text))


@contextmanager
def collecting() -> Iterator[list[dict[str, Any]]]:
    """Collect the exchanges made inside the block into the list it yields."""
    entries: list[dict[str, Any]] = []
    token = _JOURNAL.set(entries)
    try:
        yield entries
    finally:
        _JOURNAL.reset(token)


def active() -> bool:
    return _JOURNAL.get() is not None


def drain() -> list[dict[str, Any]]:
    """The exchanges collected so far (the journal keeps collecting what follows)."""
    entries = _JOURNAL.get()
    if not entries:
        return []
    taken = list(entries)
    entries.clear()
    return taken


def note(*, platform: str, method: str, url: str, request_headers: dict[str, str],
         request_body: str, status: int | str, request_id: str | None,
         response_body: str, elapsed_ms: float) -> None:
    """Add one exchange (already masked by the caller) to the open journal, if any."""
    entries = _JOURNAL.get()
    if entries is None:
        return
    entries.append({
        "at": datetime.now(UTC).isoformat(), "platform": platform, "method": method,
        "url": mask_fields(url), "request_headers": request_headers,
        "request_body": _cut(mask_fields(request_body)), "status": status,
        "request_id": request_id, "response_body": _cut(mask_fields(response_body)),
        "elapsed_ms": round(elapsed_ms, 1)})


def _cut(text: str) -> str:
    return text if len(text) <= BODY_LIMIT else text[:BODY_LIMIT] + f"... [{len(text)} chars]"
