"""The stored invoice snapshot decodes to exactly the invoice that was encoded."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import pytest

from autoinvoice.domain.invoice import Invoice, TaxCategory
from autoinvoice.domain.money import Money
from autoinvoice.store.codec import from_jsonable, to_jsonable
from tests.connectors.test_stripe import make_invoice

REVERSE_CHARGE = "Reverse charge: VAT to be accounted for by the recipient (Article 196)"


def test_exemption_reasons_keep_their_category_and_text_through_the_codec() -> None:
    # given a reverse-charge and an out-of-scope reason (a fixed-shape pair per category)
    invoice = dataclasses.replace(
        make_invoice(), exemption_reasons=((TaxCategory.REVERSE_CHARGE, REVERSE_CHARGE),
                                           (TaxCategory.NOT_SUBJECT, "Not subject to VAT")))
    # when it is stored as JSON and read back
    back = from_jsonable(Invoice, json.loads(json.dumps(to_jsonable(invoice))))
    # then it is the same invoice, the category an enum and the reason the text
    assert back == invoice
    assert back.exemption_reasons[0] == (TaxCategory.REVERSE_CHARGE, REVERSE_CHARGE)


def test_a_fixed_shape_tuple_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match="expected 2 items"):
        from_jsonable(tuple[TaxCategory, str], ["AE"])


def test_dict_keys_are_decoded_by_their_type() -> None:
    assert from_jsonable(dict[TaxCategory, Decimal], {"AE": "0"}) == {
        TaxCategory.REVERSE_CHARGE: Decimal("0")}


def test_a_union_of_several_types_is_refused_rather_than_decoded_as_the_first() -> None:
    with pytest.raises(TypeError, match="a union of several types"):
        from_jsonable(int | str, "7")


def _undecodable(tp: Any, path: str, seen: set[type]) -> list[str]:
    """Every place under ``tp`` whose type the codec would not decode by that type."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if len(inner) != 1:  # the codec decodes by the first: the others would be misread
            return [f"{path}: {tp} is a union of several types"]
        return _undecodable(inner[0], path, seen)
    if tp is Money or (isinstance(tp, type) and issubclass(tp, Enum)) or tp in _LEAVES:
        return []
    if dataclasses.is_dataclass(tp):
        if tp in seen:
            return []
        seen.add(tp)  # type: ignore[arg-type]
        return [problem for name, hint in typing.get_type_hints(tp).items()
                for problem in _undecodable(hint, f"{path}.{name}", seen)]
    if origin is tuple:
        inner = args[:1] if Ellipsis in args else args
        return [p for i, a in enumerate(inner) for p in _undecodable(a, f"{path}[{i}]", seen)]
    if origin in (frozenset, list, set, dict):
        return [p for a in args for p in _undecodable(a, f"{path}[]", seen)]
    return [f"{path}: {tp} is not a type the codec decodes"]


_LEAVES = (str, int, bool, Decimal, date, datetime)


def test_every_field_an_invoice_holds_is_decoded_by_its_own_type() -> None:
    # The stored snapshot is read back by the type hints alone: a field typed Any, object, a
    # bare collection or a union of several types would come back as raw JSON (or as the
    # wrong type, like the exemption reasons once did) without any error.
    assert _undecodable(Invoice, "Invoice", set()) == []


def test_the_type_walk_finds_what_the_codec_cannot_decode() -> None:
    @dataclasses.dataclass(frozen=True)
    class Loose:
        either: int | str
        anything: Any
        raw: tuple

    assert _undecodable(Loose, "Loose", set()) == [
        "Loose.either: int | str is a union of several types",
        "Loose.anything: typing.Any is not a type the codec decodes",
        "Loose.raw: <class 'tuple'> is not a type the codec decodes"]


def test_a_platforms_payment_date_is_midnight_utc_and_a_bad_one_names_its_field() -> None:
    from datetime import UTC, datetime

    from autoinvoice.connectors.base import paid_on
    from autoinvoice.connectors.errors import PermanentError

    assert paid_on("2026-11-30T14:02:00", platform="sage", field="last_paid") == datetime(
        2026, 11, 30, tzinfo=UTC)
    assert paid_on(None, platform="sage", field="last_paid") is None
    with pytest.raises(PermanentError, match="myob sent an invalid LastPaymentDate"):
        paid_on("30/11/2026", platform="myob", field="LastPaymentDate")
