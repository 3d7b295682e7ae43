"""Per-endpoint OAuth2 scope rules for the stand-ins: which scopes a request needs, as each
vendor documents them (the rule tables live beside each stand-in, with their sources).

A ``Rule`` matches a method (``*`` for any) and a path (a regular expression matched in full);
the request is allowed when the token carries at least one scope of ``any_of``. ``missing``
returns the scopes that would have allowed it (None when the token has one, or when no rule
matches: such paths need only a live token, like the vendors' discovery endpoints).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Rule:
    method: str
    path: str
    any_of: tuple[str, ...]
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_pattern", re.compile(self.path))

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method.upper()) and self._pattern.fullmatch(path) is not None


def missing(rules: Iterable[Rule], method: str, path: str, granted: frozenset[str]
            ) -> tuple[str, ...] | None:
    """The scopes the first matching rule accepts when ``granted`` has none of them."""
    for rule in rules:
        if rule.matches(method, path):
            return None if granted & set(rule.any_of) else rule.any_of
    return None
