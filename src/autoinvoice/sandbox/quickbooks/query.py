"""The slice of the QuickBooks query language the stand-in understands, and its JSON.

``select * from Entity [where F = 'v' [and F IN ('a', 'b') [and F LIKE '%x%']]]
[orderby F] [startposition n] [maxresults n]`` -- QuickBooks has no ``OR``; literals are
single-quoted with backslash escapes, or numbers, or true/false. Only the documented
filterable properties may be used (others: QueryValidationError 4001).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

Obj = dict[str, Any]

#: Filterable properties per entity (developer.intuit.com entity references, "filterable").
FILTERABLE: dict[str, frozenset[str]] = {
    "Customer": frozenset({"Id", "DisplayName", "GivenName", "MiddleName", "FamilyName",
                           "Suffix", "CompanyName", "PrimaryEmailAddr", "Active", "Balance",
                           "FullyQualifiedName", "MetaData.CreateTime",
                           "MetaData.LastUpdatedTime"}),
    "Invoice": frozenset({"Id", "DocNumber", "TxnDate", "DueDate", "CustomerRef", "Balance",
                          "TotalAmt", "MetaData.CreateTime", "MetaData.LastUpdatedTime"}),
    "CreditMemo": frozenset({"Id", "DocNumber", "TxnDate", "CustomerRef", "TotalAmt",
                             "MetaData.CreateTime"}),
    "Payment": frozenset({"Id", "TxnDate", "CustomerRef", "TotalAmt", "MetaData.CreateTime"}),
    "Item": frozenset({"Id", "Name", "Type", "Active", "Sku", "FullyQualifiedName"}),
    "Account": frozenset({"Id", "Name", "AccountType", "Active", "Classification"}),
    "TaxCode": frozenset({"Id", "Name", "Active", "Taxable"}),
    "TaxRate": frozenset({"Id", "Name", "Active"}),
    "TaxAgency": frozenset({"Id", "DisplayName"}),
    "Vendor": frozenset({"Id", "DisplayName", "Active"}),
    "Employee": frozenset({"Id", "DisplayName", "Active"}),
}

_TOKEN = re.compile(r"\s*('(?:\\.|[^'\\])*'|\(|\)|,|[<>!]?=|<|>|[^\s(),=<>']+)")


class QueryError(ValueError):
    """A query QuickBooks would refuse (``QueryParserError`` / ``QueryValidationError``)."""

    def __init__(self, message: str, detail: str, code: str) -> None:
        super().__init__(detail)
        self.message, self.detail, self.code = message, detail, code


@dataclass(frozen=True)
class Query:
    entity: str
    where: tuple[tuple[str, str, tuple[Any, ...]], ...]
    start: int = 1
    limit: int = 100

    def matches(self, obj: Obj) -> bool:
        return all(_test(field_value(obj, f), op, values) for f, op, values in self.where)


def parse_query(text: str) -> Query:
    tokens = list(_TOKEN.findall(text.strip()))
    low = [t.lower() for t in tokens]
    if len(tokens) < 4 or low[:3] != ["select", "*", "from"]:
        raise QueryError("QueryParserError", f"Encountered an unsupported query: {text}",
                         "4000")
    entity = tokens[3]
    if entity not in FILTERABLE:
        raise QueryError("QueryValidationError", f"Invalid entity name: {entity}", "4001")
    pos, where, start, limit = 4, [], 1, 100
    if pos < len(tokens) and low[pos] == "where":
        pos += 1
        while True:
            prop, op, values, pos = _condition(tokens, pos)
            if prop not in FILTERABLE[entity]:
                raise QueryError("QueryValidationError",
                                 f"property '{prop}' is not queryable", "4001")
            where.append((prop, op, values))
            if pos < len(tokens) and low[pos] == "and":
                pos += 1
                continue
            break
    while pos < len(tokens):
        word = low[pos]
        if word == "orderby":
            pos += 2
        elif word in ("startposition", "maxresults") and pos + 1 < len(tokens):
            number = int(tokens[pos + 1])
            start, limit = (number, limit) if word == "startposition" else (start, number)
            pos += 2
        else:
            raise QueryError("QueryParserError", f"Encountered \"{tokens[pos]}\" at line 1",
                             "4000")
    return Query(entity, tuple(where), start, min(limit, 1000))


def _condition(tokens: list[str], pos: int) -> tuple[str, str, tuple[Any, ...], int]:
    if pos + 2 >= len(tokens):
        raise QueryError("QueryParserError", "Encountered end of query", "4000")
    prop, op = tokens[pos], tokens[pos + 1].upper()
    if op == "IN":
        values, pos = [], pos + 3  # skip "("
        while pos < len(tokens) and tokens[pos] != ")":
            if tokens[pos] != ",":
                values.append(_literal(tokens[pos]))
            pos += 1
        return prop, op, tuple(values), pos + 1
    if op not in ("=", "<", ">", "<=", ">=", "!=", "LIKE"):
        raise QueryError("QueryParserError", f"Encountered \"{tokens[pos + 1]}\"", "4000")
    return prop, op, (_literal(tokens[pos + 2]),), pos + 3


def _literal(token: str) -> Any:
    if token.startswith("'"):
        return re.sub(r"\\(.)", r"\1", token[1:-1])
    if token.lower() in ("true", "false"):
        return token.lower() == "true"
    try:
        return Decimal(token)
    except ArithmeticError:
        raise QueryError("QueryParserError", f"Encountered \"{token}\"", "4000") from None


def field_value(obj: Obj, prop: str) -> Any:
    value: Any = obj
    for part in prop.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, dict):  # PrimaryEmailAddr.Address, CustomerRef.value
        value = value.get("Address", value.get("value"))
    return value


def _test(value: Any, op: str, wanted: tuple[Any, ...]) -> bool:
    if op == "IN":
        return any(_equal(value, w) for w in wanted)
    target = wanted[0]
    if op == "=":
        return _equal(value, target)
    if op == "!=":
        return not _equal(value, target)
    if op == "LIKE":
        pattern = "^" + re.escape(str(target)).replace("%", ".*") + "$"
        return re.match(pattern, str(value or ""), re.IGNORECASE) is not None
    compare: dict[str, Callable[[Any, Any], bool]] = {
        "<": lambda a, b: a < b, ">": lambda a, b: a > b,
        "<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b}
    try:
        return value is not None and compare[op](_comparable(value), _comparable(target))
    except TypeError:
        return False


def _equal(value: Any, target: Any) -> bool:
    if isinstance(target, bool):
        return (value if value is not None else True) is target  # Active defaults to true
    if isinstance(target, Decimal):
        try:
            return Decimal(str(value)) == target
        except ArithmeticError:
            return False
    return str(value if value is not None else "").lower() == str(target).lower()


def _comparable(value: Any) -> Any:
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return str(value)


# -- JSON with exact decimals ----------------------------------------------------------------

_DECIMAL = re.compile(r'"__dec__(-?[0-9]+(?:\.[0-9]+)?)__"')


def dumps(obj: Any) -> bytes:
    """JSON where every ``Decimal`` is a bare number, as QuickBooks writes them."""
    text = json.dumps(obj, default=lambda v: f"__dec__{format(v, 'f')}__"
                      if isinstance(v, Decimal) else str(v), separators=(",", ":"))
    return _DECIMAL.sub(r"\1", text).encode()


def loads(body: bytes) -> Any:
    return json.loads(body, parse_float=Decimal, parse_int=Decimal)
