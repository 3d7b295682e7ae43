"""Frozen domain dataclasses <-> JSON-safe dicts, for the invoice snapshot we store.

Decimals travel as strings, datetimes and dates as ISO 8601, enums as their values; the
reverse direction is driven by the dataclasses' own type hints, so no field list is repeated.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from functools import cache
from typing import Any

from autoinvoice.domain.money import Money


def to_jsonable(value: Any) -> Any:
    if isinstance(value, Money):
        return {"amount": str(value.amount), "currency": value.currency}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, frozenset | set):
        return sorted(to_jsonable(v) for v in value)
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    return value


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_jsonable(tp: Any, data: Any) -> Any:  # one branch per kind of type
    if data is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(inner) != 1:  # JSON does not say which: never guess (the value would be misread)
            raise TypeError(f"cannot decode {data!r} as {tp}: a union of several types")
        return from_jsonable(inner[0], data)
    if tp is Money:
        return Money(Decimal(data["amount"]), data["currency"])
    if dataclasses.is_dataclass(tp):
        hints = _hints(tp)  # type: ignore[arg-type]
        return tp(**{k: from_jsonable(hints[k], v) for k, v in data.items() if k in hints})  # type: ignore[operator]
    if origin is tuple and Ellipsis not in typing.get_args(tp):  # a fixed shape: (A, B, ...)
        args = typing.get_args(tp)
        if len(args) != len(data):
            raise ValueError(f"expected {len(args)} items for {tp}, got {len(data)}")
        return tuple(from_jsonable(a, v) for a, v in zip(args, data, strict=True))
    if origin in (tuple, list, frozenset, set):
        args = typing.get_args(tp)
        return origin(from_jsonable(args[0], v) for v in data)
    if origin is dict:
        kt, vt = typing.get_args(tp)
        return {from_jsonable(kt, k): from_jsonable(vt, v) for k, v in data.items()}
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp(data)
    if tp is Decimal:
        return Decimal(data)
    if tp is datetime:
        return datetime.fromisoformat(data)
    if tp is date:
        return date.fromisoformat(data)
    return data
