"""The stored invoice snapshot decodes to exactly the invoice that was encoded."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal

import pytest

from autoinvoice.domain.invoice import Invoice, TaxCategory
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
