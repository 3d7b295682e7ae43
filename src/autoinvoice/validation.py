"""Turning pydantic validation errors into messages that name every bad field."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError


class InputError(ValueError):
    """Bad input from a user: each problem is "field.path: what is wrong"."""

    def __init__(self, problems: Sequence[str], *, source: str = "") -> None:
        self.problems = list(problems)
        self.source = source
        head = f"{source}: " if source else ""
        super().__init__(head + "; ".join(self.problems))


def _loc(loc: tuple[int | str, ...], prefix: str) -> str:
    parts = [prefix] if prefix else []
    for item in loc:
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1]}[{item}]"] if parts else [f"[{item}]"]
        elif not str(item).startswith(("function-", "union[", "tagged-union[")):
            parts.append(str(item))
    return ".".join(parts) or "(root)"


def problems_from(error: ValidationError, prefix: str = "") -> list[str]:
    out: list[str] = []
    for item in error.errors(include_url=False):
        msg = str(item["msg"]).removeprefix("Value error, ")
        out.append(f"{_loc(tuple(item['loc']), prefix)}: {msg}")
    return out


def reject_float(value: Any) -> Any:
    """Money and quantities never pass through float: JSON and TOML are parsed with Decimal."""
    if isinstance(value, float):
        raise ValueError("must be a decimal number written exactly (got a binary float)")
    return value
