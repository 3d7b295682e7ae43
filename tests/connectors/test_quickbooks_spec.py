"""Every JSON body the QuickBooks connector sends conforms to Intuit's XSD (IPP v3 data model,
``shared/vendor-specs/quickbooks/xsd``): element names, nesting, repetition, simple types and
required elements. JSON carries the XSD's element names; a simple-content type (e.g.
``ReferenceType``) is ``{"value": text, attribute: …}``. Intuit publishes no OpenAPI, so the
REST paths are checked against the documented list instead (see the connector's docstring).
JSON types follow the XSD's: an ``xs:decimal`` (or integer) element is a JSON number, an
``xs:boolean`` a JSON boolean, everything else a string. The flow runs on both kinds of US
company: one on automated sales tax and one from before it."""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from autoinvoice.connectors.base import IdempotencyKeys, RecordedRequest, StaticTokens
from autoinvoice.connectors.http import clear_limiters
from autoinvoice.connectors.quickbooks import QuickBooksConnector
from autoinvoice.domain.invoice import DocumentKind
from autoinvoice.sandbox.quickbooks import QuickBooksSandbox
from tests.connectors.test_quickbooks import (
    LINES,
    REVERSE_CHARGE,
    keys_for,
    make_line,
    qb_invoice,
    settings_for,
)
from tests.helpers import VirtualTimer

pytestmark = pytest.mark.needs_shared
XSD = Path("vendor-specs") / "quickbooks" / "xsd"
#: POST path (after /v3/company/{realm}) -> the XSD type of its body
BODY_TYPES = [
    (re.compile(r"/customer"), "Customer", "Finance.xsd"),
    (re.compile(r"/item"), "Item", "Finance.xsd"),
    (re.compile(r"/invoice"), "Invoice", "Finance.xsd"),
    (re.compile(r"/creditmemo"), "CreditMemo", "Finance.xsd"),
    (re.compile(r"/payment"), "Payment", "Finance.xsd"),
    (re.compile(r"/taxservice/taxcode"), "TaxService", "SalesTax.xsd"),
]
#: documented operations (developer.intuit.com REST quick reference and entity pages)
OPERATIONS = [re.compile(p) for p in (
    r"GET /v3/company/\d+/(query|preferences|companyinfo/\d+|invoice/\w+|payment/\w+)",
    r"POST /v3/company/\d+/(customer|item|invoice|creditmemo|payment|taxservice/taxcode)",
    r"POST /v3/company/\d+/(invoice|creditmemo)/\w+/send",
)]


@functools.cache
def schema(path: Path) -> Any:
    import xmlschema

    return xmlschema.XMLSchema(str(path))


def problems(xsd_type: Any, value: Any, where: str) -> list[str]:
    if xsd_type.is_simple():
        return _simple(xsd_type, value, where)
    if xsd_type.has_simple_content():
        if not isinstance(value, dict) or "value" not in value:
            return [f"{where}: expected {{'value': …}} for {xsd_type.local_name}"]
        found = _simple(xsd_type.content, value["value"], f"{where}.value")
        extra = set(value) - {"value"} - set(xsd_type.attributes)
        return found + [f"{where}.{name}: no such attribute" for name in sorted(extra)]
    if not isinstance(value, dict):
        return [f"{where}: expected an object for {xsd_type.local_name}"]
    children = {e.local_name: e for e in xsd_type.content.iter_elements()}
    found = []
    for name, item in value.items():
        if name not in children:
            if name not in xsd_type.attributes:
                found.append(f"{where}.{name}: no such element in {xsd_type.local_name}")
            continue
        element = children[name]
        items = item if isinstance(item, list) else [item]
        if isinstance(item, list) and element.max_occurs == 1:
            found.append(f"{where}.{name}: repeated, but maxOccurs=1")
        for n, one in enumerate(items):
            found += problems(element.type, one, f"{where}.{name}[{n}]")
    found += [f"{where}.{name}: required element missing" for name, e in children.items()
              if e.min_occurs > 0 and name not in value and _not_in_choice(xsd_type, e)]
    return found


def _not_in_choice(xsd_type: Any, element: Any) -> bool:
    return element.parent is None or element.parent.model != "choice"


NUMERIC = {"decimal", "float", "double"}


def _simple(xsd_type: Any, value: Any, where: str) -> list[str]:
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    if isinstance(value, dict | list):
        return [f"{where}: expected a simple value ({xsd_type.local_name})"]
    wrong = _json_type_problem(xsd_type, value)
    if wrong:
        return [f"{where}: {wrong}"]
    return [] if xsd_type.is_valid(text) else [
        f"{where}: {text!r} is not a valid {xsd_type.local_name or xsd_type}"]


def _json_type_problem(xsd_type: Any, value: Any) -> str | None:
    primitive = getattr(getattr(xsd_type, "primitive_type", None), "local_name", None)
    if primitive in NUMERIC:
        number = isinstance(value, int | Decimal) and not isinstance(value, bool)
        return None if number else f"{value!r} must be a JSON number ({primitive})"
    if primitive == "boolean":
        return None if isinstance(value, bool) else f"{value!r} must be a JSON boolean"
    return None if isinstance(value, str) else f"{value!r} must be a JSON string ({primitive})"


@pytest.fixture(scope="session")
def xsd_dir(shared_dir: Path) -> Path:
    return shared_dir / XSD


@pytest.fixture(params=["automated_sales_tax", "manual_us_sales_tax"])
def recorded(request: pytest.FixtureRequest) -> list[RecordedRequest]:
    clear_limiters()
    core = QuickBooksSandbox(automated_sales_tax=request.param == "automated_sales_tax")
    core.add_employee("Acme Plastics Inc.")  # the disambiguated create is sent too
    records: list[RecordedRequest] = []
    tokens = StaticTokens(core.issue()["access_token"], core.token_values())
    connector = QuickBooksConnector(settings_for(core, tokens, records, VirtualTimer()))
    covered = dataclasses.replace(make_line("Oil filter", "1", "0", "0.085"),
                                  coverage="covered by contract SC-12")
    invoice = dataclasses.replace(qb_invoice(*LINES, covered), notes=(REVERSE_CHARGE,))
    keys = keys_for(invoice)
    customer = connector.ensure_customer(invoice.customer, keys)
    remote = connector.create_invoice(invoice, customer, keys)
    connector.send_invoice(remote, keys)
    connector.fetch_status(remote.id)
    connector.find_by_reference(invoice)
    credit = dataclasses.replace(invoice, kind=DocumentKind.CREDIT_NOTE, number="CN-1",
                                 corrects=invoice.number)
    connector.credit_invoice(remote.id, credit,
                             IdempotencyKeys.derive("northwind", "WO-T-1", 1, "credit_note"))
    other = qb_invoice(job_id="WO-T-2", number="NW-2026-0002")
    made = connector.create_invoice(other, customer, keys_for(other))
    connector.void_invoice(made.id, keys_for(other))
    connector.check_auth()
    return records


def test_every_body_conforms_to_the_xsd(xsd_dir, recorded) -> None:
    found = []
    checked = 0
    for request in recorded:
        path = urlsplit(request.url).path
        if request.method != "POST" or not request.body:
            continue
        tail = path.split("/", 4)[4] if path.count("/") >= 4 else path
        for pattern, type_name, filename in BODY_TYPES:
            if pattern.fullmatch("/" + tail):
                body = json.loads(request.body, parse_float=Decimal)
                xsd_type = schema(xsd_dir / filename).types[type_name]
                found += problems(xsd_type, body, f"{request.method} /{tail}")
                checked += 1
                break
    assert found == []
    assert checked >= 7


def test_the_flow_covers_every_body_type(recorded, request) -> None:
    posted = {urlsplit(r.url).path.split("/", 4)[4] for r in recorded if r.method == "POST"}
    assert {"customer", "item", "invoice", "creditmemo", "payment"} <= posted
    # a tax code is created only on the manual model (AST replaces any code we send)
    manual = "manual" in request.node.callspec.id
    assert ("taxservice/taxcode" in posted) is manual


def test_every_request_is_a_documented_operation_with_minorversion(recorded) -> None:
    for request in recorded:
        parts = urlsplit(request.url)
        assert any(p.fullmatch(f"{request.method} {parts.path}") for p in OPERATIONS), \
            request.url
        assert "minorversion=75" in parts.query
        if request.method == "POST":
            assert "requestid=" in parts.query


def test_the_validator_catches_unknown_and_mistyped_elements(xsd_dir) -> None:
    invoice = schema(xsd_dir / "Finance.xsd").types["Invoice"]
    assert problems(invoice, {"CustomerRef": {"value": "1"}, "DueDate": "2026-12-21"}, "x") == []
    bad = problems(invoice, {"CustomerRef": "1", "DueDate": "soon", "Memo": "x",
                             "Line": [{"Amount": "ten"}]}, "x")
    assert len(bad) == 4


def test_the_validator_wants_json_numbers_and_booleans_where_the_xsd_types_them(xsd_dir):
    invoice = schema(xsd_dir / "Finance.xsd").types["Invoice"]
    good = {"Line": [{"Amount": Decimal("10.00"), "LineNum": 1}],
            "TxnTaxDetail": {"TotalTax": Decimal("0.85"), "UseAutomatedSalesTax": False}}
    assert problems(invoice, good, "x") == []
    bad = problems(invoice, {"Line": [{"Amount": "10.00", "LineNum": "1"}],
                             "TxnTaxDetail": {"TotalTax": "0.85",
                                              "UseAutomatedSalesTax": "false"},
                             "DocNumber": 1001}, "x")
    assert len(bad) == 5
    assert any("'10.00' must be a JSON number" in b for b in bad)
