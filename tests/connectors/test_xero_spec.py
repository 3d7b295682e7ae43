"""Every request the Xero connector sends conforms to Xero's published OpenAPI 3 spec
(``XeroAPI/Xero-OpenAPI`` ``xero_accounting.yaml``, in ``shared/vendor-specs/xero``).

The validator finds the operation by method and path template, checks the query parameters and
the headers the operation declares (``xero-tenant-id`` is required everywhere;
``Idempotency-Key`` only where declared), and validates the JSON body with jsonschema against
the operation's ``requestBody`` schema, ``$ref`` resolved within the spec. Xero's schemas do not
set ``additionalProperties: false``, so the validator also walks the body and reports any
property the schema does not declare and any ``readOnly`` property we send.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import yaml
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from autoinvoice.connectors.base import IdempotencyKeys, RecordedRequest
from autoinvoice.connectors.http import clear_limiters
from autoinvoice.connectors.xero import API, XeroConnector
from autoinvoice.domain.invoice import TaxCategory
from autoinvoice.sandbox.xero import Limits, XeroSandbox
from tests.connectors.test_stripe import keys_for, make_invoice
from tests.connectors.test_xero import rich_invoice, settings_for
from tests.connectors.test_xero_tax_types import connector_for, uk_invoice, uk_line

pytestmark = pytest.mark.needs_shared

SPEC_PATH = Path("vendor-specs") / "xero" / "xero_accounting.yaml"
SPEC_URI = "urn:xero:accounting"
JSON = "application/json"
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.cache
def load_spec(path: Path) -> dict[str, Any]:
    with path.open("rb") as handle:
        spec: dict[str, Any] = yaml.load(handle, Loader=Loader)  # a safe loader
    return spec


class XeroSpec:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.registry: Registry[Any] = Registry().with_resource(
            SPEC_URI, Resource.from_contents(spec, default_specification=DRAFT4))
        self.routes = sorted(
            ((method, template, re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+",
                                                  re.escape(template))))
             for template, item in spec["paths"].items() for method in item
             if method in ("get", "put", "post", "delete")),
            key=lambda route: route[1].count("{"))

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any]] | None:
        for route_method, template, regex in self.routes:
            if route_method == method.lower() and regex.fullmatch(path):
                return template, self.spec["paths"][template]
        return None

    def problems(self, request: RecordedRequest) -> list[str]:
        parts = urlsplit(request.url)
        path = parts.path.removeprefix(API)
        found = self.operation(request.method, path)
        if found is None:
            return [f"{request.method} {path}: no such operation in the spec"]
        template, item = found
        operation = item[request.method.lower()]
        params = [self.resolve(p) for p in item.get("parameters", []) +
                  operation.get("parameters", [])]
        out = list(self._query(params, parts.query))
        out += list(self._headers(params, request.headers))
        if request.body:
            out += list(self._body(operation, request.body))
        return [f"{request.method} {template}: {p}" for p in out]

    def _query(self, params: list[dict[str, Any]], query: str) -> Iterator[str]:
        declared = {p["name"]: p for p in params if p["in"] == "query"}
        for name, value in parse_qsl(query, keep_blank_values=True):
            if name not in declared:
                yield f"undocumented query parameter {name!r}"
                continue
            schema = declared[name]["schema"]
            coerced: Any = int(value) if schema.get("type") == "integer" else value
            if schema.get("type") == "array":
                coerced = value.split(",")
            yield from self._errors(coerced, schema, f"query {name}")

    @staticmethod
    def _headers(params: list[dict[str, Any]], headers: Any) -> Iterator[str]:
        lowered = {k.lower() for k in headers}
        declared = {p["name"].lower(): p for p in params if p["in"] == "header"}
        for name, parameter in declared.items():
            if parameter.get("required") and name not in lowered:
                yield f"missing required header {parameter['name']!r}"
        if "idempotency-key" in lowered and "idempotency-key" not in declared:
            yield "Idempotency-Key is not declared for this operation"

    def _body(self, operation: dict[str, Any], body: str) -> Iterator[str]:
        content = operation.get("requestBody", {}).get("content", {})
        if JSON not in content:
            yield "the operation takes no JSON body"
            return
        data = json.loads(body, parse_float=Decimal)
        schema = content[JSON]["schema"]
        yield from self._errors(data, {"$ref": SPEC_URI + schema["$ref"]}, "body")
        yield from self._undeclared(data, self.resolve(schema), "body")

    def _undeclared(self, data: Any, schema: dict[str, Any], where: str) -> Iterator[str]:
        schema = self.resolve(schema)
        if isinstance(data, dict):
            properties = schema.get("properties", {})
            for key, value in data.items():
                if key not in properties:
                    yield f"{where}: undocumented property {key!r}"
                    continue
                declared = self.resolve(properties[key])
                if declared.get("readOnly") or properties[key].get("readOnly"):
                    yield f"{where}: read-only property {key!r} sent"
                yield from self._undeclared(value, declared, f"{where}.{key}")
        elif isinstance(data, list) and "items" in schema:
            for index, value in enumerate(data):
                yield from self._undeclared(value, schema["items"], f"{where}[{index}]")

    def _errors(self, data: Any, schema: dict[str, Any], where: str) -> Iterator[str]:
        for error in Draft4Validator(schema, registry=self.registry).iter_errors(data):
            path = "".join(f"[{p}]" for p in error.absolute_path)
            yield f"{where}{path}: {error.message[:300]}"

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            ref = schema["$ref"]
            schema = self.registry.resolver(SPEC_URI).lookup(
                ref if ref.startswith(SPEC_URI) else SPEC_URI + ref).contents
        return schema


@pytest.fixture(scope="session")
def spec(shared_dir: Path) -> XeroSpec:
    return XeroSpec(load_spec(shared_dir / SPEC_PATH))


@pytest.fixture
def recorded() -> list[RecordedRequest]:
    clear_limiters()
    records: list[RecordedRequest] = []
    core = XeroSandbox(limits=Limits(per_minute=None, per_day=None))
    connector = XeroConnector(settings_for(core, records))
    invoice = rich_invoice()
    keys = keys_for(invoice)
    customer = connector.ensure_customer(invoice.customer, keys)
    remote = connector.create_invoice(invoice, customer, keys)
    connector.send_invoice(remote, keys)
    core.record_payment(remote.id, 1000)
    connector.fetch_status(remote.id)
    connector.find_by_reference(invoice)
    credit = dataclasses.replace(invoice, number="CN-1", corrects=invoice.number)
    connector.credit_invoice(remote.id, credit,
                             IdempotencyKeys.derive("northwind", invoice.job_id, 1, "credit"))
    other = make_invoice(job_id="WO-T-9", number="NW-2026-0009")
    other_remote = connector.create_invoice(other, customer, keys_for(other))
    connector.void_invoice(other_remote.id, keys_for(other))
    connector.check_auth()
    connector.close()
    clear_limiters()
    return records


def test_every_request_conforms_to_xeros_spec(spec, recorded) -> None:
    problems = [p for r in recorded for p in spec.problems(r)]
    assert problems == []


def test_the_flow_covers_every_operation_the_connector_uses(spec, recorded) -> None:
    used = {(r.method, spec.operation(r.method, urlsplit(r.url).path.removeprefix(API))[0])
            for r in recorded}
    assert used == {
        ("GET", "/Contacts"), ("PUT", "/Contacts"), ("GET", "/TaxRates"), ("PUT", "/TaxRates"),
        ("PUT", "/Invoices"), ("GET", "/Invoices"), ("GET", "/Invoices/{InvoiceID}"),
        ("POST", "/Invoices/{InvoiceID}"), ("POST", "/Invoices/{InvoiceID}/Email"),
        ("GET", "/CreditNotes"), ("PUT", "/CreditNotes"),
        ("PUT", "/CreditNotes/{CreditNoteID}/Allocations"), ("GET", "/Organisation")}


def test_every_write_carries_a_distinct_idempotency_key_within_128_characters(recorded) -> None:
    writes = [r for r in recorded if r.method in ("PUT", "POST")]
    keys = [r.headers.get("idempotency-key", "") for r in writes]
    assert all(k.startswith("ai-") and len(k) <= 128 for k in keys)
    assert len(set(keys)) == len(keys)


# The validator must be able to fail: otherwise the conformance test above proves nothing.


def _request(method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
             ) -> RecordedRequest:
    return RecordedRequest(method, f"https://api.xero.com{API}{path}",
                           headers if headers is not None else {"xero-tenant-id": "t"},
                           "" if body is None else json.dumps(body))


def test_an_undocumented_property_is_caught(spec) -> None:
    problems = spec.problems(_request("PUT", "/Invoices", {"Invoices": [{"PONumber": "1"}]}))
    assert problems == ["PUT /Invoices: body.Invoices[0]: undocumented property 'PONumber'"]


def test_a_wrong_type_and_a_read_only_property_are_caught(spec) -> None:
    body = {"Invoices": [{"LineItems": [{"Quantity": "two"}], "Total": 5}]}
    problems = spec.problems(_request("PUT", "/Invoices", body))
    assert any("'two' is not of type 'number'" in p for p in problems)
    assert any("read-only property 'Total'" in p for p in problems)


def test_a_missing_tenant_header_and_unknown_query_are_caught(spec) -> None:
    problems = spec.problems(RecordedRequest(
        "GET", f"https://api.xero.com{API}/Invoices?status=PAID", {}, ""))
    assert sorted(problems) == [
        "GET /Invoices: missing required header 'xero-tenant-id'",
        "GET /Invoices: undocumented query parameter 'status'"]


def test_a_uk_invoice_of_every_outcome_conforms_to_xeros_spec(spec) -> None:
    # given a UK organisation and one line of each tax outcome our engine can reach
    clear_limiters()
    records: list[RecordedRequest] = []
    core = XeroSandbox(country="GB", limits=Limits(per_minute=None, per_day=None))
    connector = connector_for(core, records)
    invoice = uk_invoice(*(uk_line(f"Line {c.value}", c, "0.2" if c is TaxCategory.STANDARD
                                   else "0") for c in TaxCategory))
    keys = keys_for(invoice)
    # when
    remote = connector.create_invoice(invoice, connector.ensure_customer(invoice.customer, keys),
                                      keys)
    connector.close()
    clear_limiters()
    # then every request is Xero's, and each line carries a TaxType the organisation has
    assert [p for r in records for p in spec.problems(r)] == []
    sent = {item["TaxType"] for item in core.get_invoice(remote.id)["LineItems"]
            if "TaxType" in item}
    assert sent <= set(core.ledger.tax_rates)
    assert len(sent) == 6  # S, Z/G (zero rated), E, AE, K, O
