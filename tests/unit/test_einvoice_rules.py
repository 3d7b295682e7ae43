"""Every e-invoice format of every shared example and hand-priced billing case (invoices and
credit notes) passes every rule set that applies to it (``en16931.FORMAT_RULES``: CEN; Peppol
BIS 3 for UBL; KoSIT's XRechnung rules for XRechnung), with amounts exactly ours. The
Factur-X CII is ``cii`` byte for byte (``test_facturx``), held to the same rules."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from lxml import etree

from autoinvoice.documents.cii import to_cii
from autoinvoice.documents.en16931 import FORMAT_RULES, Syntax
from autoinvoice.documents.ubl import to_ubl
from autoinvoice.documents.xrechnung import to_xrechnung
from autoinvoice.domain.invoice import Invoice
from autoinvoice.pipeline.documents import EINVOICE_FORMATS
from tests.unit.einvoice_cases import (
    CASES,
    cii_amounts,
    complete_office,
    fatal_all,
    needs_all_rules,
    ours,
    peppol_ready,
    ubl_amounts,
)

#: format -> (how its tenant issues the case, writer, amounts reader)
WRITERS: dict[str, tuple[Callable[[Invoice], Invoice], Callable[[Invoice], bytes],
                         Callable[[etree._Element], dict[str, object]]]] = {
    "ubl": (peppol_ready, to_ubl, ubl_amounts),
    "cii": (peppol_ready, to_cii, cii_amounts),
    "xrechnung": (complete_office, to_xrechnung, cii_amounts),
    "xrechnung-ubl": (complete_office, lambda i: to_xrechnung(i, Syntax.UBL), ubl_amounts),
}


def test_every_einvoice_format_has_its_rules_and_a_writer_here() -> None:
    assert set(FORMAT_RULES) == set(EINVOICE_FORMATS)
    assert set(WRITERS) == set(EINVOICE_FORMATS) - {"facturx"}


@needs_all_rules
@pytest.mark.parametrize("fmt", WRITERS)
@pytest.mark.parametrize("case", CASES)
def test_every_case_passes_every_rule_that_applies_with_amounts_exactly_ours(
        case: str, fmt: str) -> None:
    # given the case as a tenant issuing this format configures it
    issue, write, amounts = WRITERS[fmt]
    invoice = issue(CASES[case]())
    # when written
    xml = write(invoice)
    # then no rule of any rule set that applies fails, and every amount is ours
    assert fatal_all(xml, fmt) == []
    assert amounts(etree.fromstring(xml)) == ours(invoice)
