"""Our tax outcomes as keys a tenant maps to its ledger's own tax codes.

A ledger computes tax from its own setup (Business Central's tax groups and tax areas, Sage's
tax rate ids), so the tenant says which of its codes stands for each outcome our billing engine
can reach. A key is an EN 16931 / UNCL 5305 category (``S``, ``Z``, ``E``, ``AE``, ``K``, ``G``,
``O``), optionally with the percentage (``"S:19"``, ``"S:8.5"``): the most specific key wins.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import Decimal

CATEGORIES = ("S", "Z", "E", "AE", "K", "G", "O")
#: which line decides a document's outcome (e.g. a customer's tax area): the first present
DOCUMENT_PRECEDENCE = ("AE", "K", "G", "O", "S", "Z", "E")
_KEY = re.compile(r"^(?P<category>[A-Z]{1,2})(?::(?P<percent>\d+(?:\.\d+)?))?$")


def key_problem(key: str) -> str | None:
    """Why ``key`` is not an outcome key, or None when it is one."""
    match = _KEY.match(key)
    if match is None or match.group("category") not in CATEGORIES:
        return (f"{key!r} is not a tax outcome: use a category ({', '.join(CATEGORIES)}), "
                "optionally with its percentage, e.g. \"S:19\"")
    return None


def percent_text(rate: Decimal) -> str:
    """A fractional rate (0.19) as the percentage of a key ("19")."""
    return format((rate * 100).normalize(), "f")


def keys_for(category: str, rate: Decimal) -> tuple[str, str]:
    """The keys that may map a line of ``category`` at ``rate``, most specific first."""
    return f"{category}:{percent_text(rate)}", category


def matching_key(mapping: Mapping[str, str], category: str, rate: Decimal) -> str | None:
    """The key of ``mapping`` that maps ``category`` at ``rate``: ``"S:19"`` before ``"S"``;
    a key's percentage is compared as a number (``"S:19.0"`` is ``"S:19"``)."""
    exact = Decimal(keys_for(category, rate)[0].split(":")[1])
    for key in mapping:
        match = _KEY.match(key)
        if match and match.group("category") == category and match.group("percent") and \
                Decimal(match.group("percent")) == exact:
            return key
    return category if category in mapping else None


def lookup(mapping: Mapping[str, str], category: str, rate: Decimal) -> str | None:
    """The code mapped to ``category`` at ``rate`` (see ``matching_key``), or None."""
    key = matching_key(mapping, category, rate)
    return mapping[key] if key is not None else None


def document_outcome(lines: Iterable[tuple[str, Decimal]]) -> tuple[str, Decimal] | None:
    """The (category, rate) that speaks for a whole document: reverse charge, intra-community,
    export and not-subject lines first, then standard, zero, exempt."""
    seen = list(lines)
    for category in DOCUMENT_PRECEDENCE:
        rates = [rate for cat, rate in seen if cat == category]
        if rates:
            return category, max(rates)
    return None
