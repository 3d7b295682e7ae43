"""Reading request bodies: typed fields or a 400 ``ApiError`` naming the offending field."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from autoinvoice.domain.money import CurrencyError, exponent, quantize

Json = dict[str, Any]


class ApiError(Exception):
    """An error answer: HTTP status plus the ``{"error": {code, message, field}}`` body."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field

    def body(self) -> Json:
        return {"error": {"code": self.code, "message": self.message, "field": self.field}}


def _path(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def bad(code: str, message: str, field: str | None = None) -> ApiError:
    return ApiError(400, code, message, field)


def only_fields(obj: Json, allowed: frozenset[str], where: str = "") -> None:
    for name in obj:
        if name not in allowed:
            raise bad("unknown_field", f"unknown field {name!r}", _path(where, name))


def opt_text_field(obj: Json, name: str, where: str = "") -> str | None:
    value = obj.get(name)
    if value is not None and not isinstance(value, str):
        raise bad("invalid_request", f"{name} must be a string", _path(where, name))
    return value


def text_field(obj: Json, name: str, where: str = "") -> str:
    value = opt_text_field(obj, name, where)
    if not value:
        raise bad("missing_field", f"{name} is required", _path(where, name))
    return value


def decimal_field(obj: Json, name: str, where: str = "") -> Decimal:
    raw = text_field(obj, name, where)
    try:
        value = Decimal(raw)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite():
        raise bad("invalid_amount", f"{name} must be a decimal string", _path(where, name))
    return value


def amount_field(obj: Json, name: str, currency: str, where: str = "") -> Decimal:
    value = decimal_field(obj, name, where)
    if value != quantize(value, currency):
        raise bad("invalid_amount", f"{name} has more decimals than {currency} allows",
                  _path(where, name))
    return value


def date_field(obj: Json, name: str) -> date:
    try:
        return date.fromisoformat(text_field(obj, name))
    except ValueError:
        raise bad("invalid_request", f"{name} must be an ISO date", name) from None


def moment_field(obj: Json, name: str, default: datetime) -> datetime:
    raw = opt_text_field(obj, name)
    if raw is None:
        return default
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise bad("invalid_request", f"{name} must be ISO 8601 with an offset", name)
    return value


def revision_field(obj: Json) -> int:
    value = obj.get("revision")
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise bad("invalid_request", "revision must be a non-negative integer", "revision")
    return value


def currency_field(obj: Json) -> str:
    code = text_field(obj, "currency")
    try:
        exponent(code)
    except CurrencyError:
        raise bad("invalid_currency", f"unknown currency {code!r}", "currency") from None
    return code


def address_field(obj: Json) -> Json | None:
    value = obj.get("address")
    ok = value is None or (
        isinstance(value, dict) and all(isinstance(v, str | None) for v in value.values())
    )
    if not ok:
        raise bad("invalid_request", "address must be an object of strings", "address")
    return value
