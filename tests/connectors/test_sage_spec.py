"""Every request the Sage connector sends, validated against Sage's own Swagger 2.0 file
(``shared/vendor-specs/sage/swagger.full.v3.1.json``).

The operation is found by method and path template under ``basePath`` ``/v3.1``; query
parameters must be declared by the operation (and of its type); a body goes through the
operation's ``in: body`` schema with ``#/definitions/...`` resolved inside the spec (Draft 4,
as Swagger 2 uses). ``idempotency_id`` is documented in Sage's idempotency guide, not in the
Swagger; its schemas leave ``additionalProperties`` open, so it passes.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from autoinvoice.connectors.base import IdempotencyKeys, RecordedRequest
from autoinvoice.connectors.sage import SageConnector
from autoinvoice.domain.invoice import DocumentKind
from tests.connectors.test_sage import StandInTokens, settings_for
from tests.connectors.test_stripe import keys_for, make_invoice

pytestmark = pytest.mark.needs_shared

SPEC_PATH = Path("vendor-specs") / "sage" / "swagger.full.v3.1.json"
SPEC_URI = "urn:sage:swagger"


@functools.cache
def load_spec(path: Path) -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(path.read_text())
    return spec


class SwaggerValidator:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.base = spec["basePath"]
        self._registry: Registry[Any] = Registry().with_resource(
            SPEC_URI, Resource.from_contents(spec, default_specification=DRAFT4))
        self._routes = sorted(
            ((method, template, re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+",
                                                  re.escape(template))))
             for template, item in spec["paths"].items() for method in item
             if method in ("get", "post", "put", "delete")),
            key=lambda route: route[1].count("{"))

    def problems(self, method: str, url: str, body: str) -> list[str]:
        parts = urlsplit(url)
        if not parts.path.startswith(self.base + "/"):
            return [f"{parts.path}: not under {self.base}"]
        path = parts.path[len(self.base):]
        for route_method, template, regex in self._routes:
            if route_method == method.lower() and regex.fullmatch(path):
                operation = self.spec["paths"][template][route_method]
                found = list(self._query(operation, parts.query))
                found += list(self._body(operation, body))
                return [f"{method} {template}: {p}" for p in found]
        return [f"{method} {path}: no such operation in the spec"]

    def _query(self, operation: dict[str, Any], query: str) -> Iterator[str]:
        declared = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "query"}
        for name, value in parse_qsl(query, keep_blank_values=True):
            parameter = declared.get(name)
            if parameter is None:
                yield f"undocumented query parameter {name!r}"
            elif parameter.get("type") == "integer" and not value.isdigit():
                yield f"query parameter {name!r} is not an integer: {value!r}"
            elif parameter.get("type") == "boolean" and value not in ("true", "false"):
                yield f"query parameter {name!r} is not a boolean: {value!r}"
        for name, parameter in declared.items():
            if parameter.get("required") and name not in dict(parse_qsl(query)):
                yield f"missing required query parameter {name!r}"

    def _body(self, operation: dict[str, Any], body: str) -> Iterator[str]:
        schemas = [p["schema"] for p in operation.get("parameters", []) if p["in"] == "body"]
        if not body:
            if schemas:
                yield "the operation takes a body and none was sent"
            return
        if not schemas:
            yield "a body was sent to an operation that takes none"
            return
        schema = {"$ref": SPEC_URI + schemas[0]["$ref"]}
        data = json.loads(body, parse_float=Decimal)
        for error in Draft4Validator(schema, registry=self._registry).iter_errors(data):
            where = "".join(f"[{p}]" for p in error.absolute_path)
            yield f"body{where}: {error.message[:300]}"


@pytest.fixture(scope="module")
def spec(shared_dir: Path) -> SwaggerValidator:
    return SwaggerValidator(load_spec(shared_dir / SPEC_PATH))


def run_everything(core: Any) -> list[RecordedRequest]:
    from autoinvoice.sandbox.sage import SageSandbox

    assert isinstance(core, SageSandbox)
    records: list[RecordedRequest] = []
    connector = SageConnector(settings_for(core, StandInTokens(core), records))
    invoice = make_invoice()
    keys = keys_for(invoice)
    connector.check_auth()
    customer = connector.ensure_customer(invoice.customer, keys)
    remote = connector.create_invoice(invoice, customer, keys)
    connector.send_invoice(remote, keys)
    connector.find_by_reference(invoice)
    connector.fetch_status(remote.id)
    credit = type(invoice)(**{**{f: getattr(invoice, f) for f in invoice.__slots__},
                              "kind": DocumentKind.CREDIT_NOTE, "number": "NW-CN-1",
                              "corrects": invoice.number})
    connector.credit_invoice(remote.id, credit,
                             IdempotencyKeys.derive("t", invoice.job_id, 1, "credit_note"))
    second = make_invoice(job_id="WO-T-2", number="NW-2026-0002")
    other = connector.create_invoice(second, customer, keys_for(second))
    connector.void_invoice(other.id, keys_for(second))
    return records


def test_every_request_conforms_to_the_swagger(spec: SwaggerValidator) -> None:
    from autoinvoice.sandbox.sage import SageSandbox

    records = run_everything(SageSandbox(country="US"))  # the shared US invoice
    operations = {(r.method, urlsplit(r.url).path.split("/")[2]) for r in records}
    assert ("POST", "sales_invoices") in operations
    assert ("POST", "contacts") in operations
    assert ("POST", "sales_credit_notes") in operations
    assert ("PUT", "sales_invoices") in operations
    assert ("DELETE", "sales_invoices") in operations
    problems = [p for r in records for p in spec.problems(r.method, r.url, r.body)]
    assert problems == []


def test_the_validator_catches_a_missing_required_line_field(spec: SwaggerValidator) -> None:
    body = {"sales_invoice": {"contact_id": "c", "date": "2026-11-21",
                              "invoice_lines": [{"description": "x", "unit_price": 1}]}}
    problems = spec.problems("POST", "https://x/v3.1/sales_invoices", json.dumps(body))
    assert any("ledger_account_id" in p for p in problems)


def test_the_validator_catches_a_string_amount(spec: SwaggerValidator) -> None:
    body = {"sales_invoice": {"contact_id": "c", "date": "2026-11-21", "invoice_lines": [
        {"description": "x", "ledger_account_id": "l", "unit_price": "1.00"}]}}
    problems = spec.problems("POST", "https://x/v3.1/sales_invoices", json.dumps(body))
    assert any("unit_price" in p and "number" in p for p in problems)


def test_the_validator_catches_an_undocumented_query_parameter(spec: SwaggerValidator) -> None:
    problems = spec.problems("GET", "https://x/v3.1/sales_invoices?reference=A", "")
    assert problems == ["GET /sales_invoices: undocumented query parameter 'reference'"]


def test_stand_in_types_numbers_as_the_swagger_does(shared_dir: Path) -> None:
    """Every ``number`` of the Swagger's SalesInvoice, its lines and TaxRate comes back from
    the stand-in as a JSON number (never a string such as ``"120.00"``)."""
    from autoinvoice.sandbox.sage import SageSandbox

    definitions = load_spec(shared_dir / SPEC_PATH)["definitions"]
    core = SageSandbox(country="US")
    run_everything(core)
    invoice = core.invoices()[0]
    checked = 0
    for name, obj in [("SalesInvoice", invoice), ("TaxRate", {"percentage": Decimal(20)}),
                      *[("SalesInvoiceLineItem", x) for x in invoice["invoice_lines"]]]:
        for field, schema in definitions[name]["properties"].items():
            if schema.get("type") == "number" and obj.get(field) is not None:
                encoded = json.loads(json.dumps(obj[field], default=float))
                assert isinstance(encoded, int | float), (name, field, obj[field])
                checked += 1
    assert checked >= 10
