"""What the FreshBooks connector sends, checked against the unofficial FreshBooks OpenAPI file
(``shared/vendor-specs/freshbooks/unofficial/openapi.yaml``, written by hand by WSO2 for the
Ballerina connector; FreshBooks publishes no spec). It is a guide, so:

- where it describes a field, what we send must conform (jsonschema, ``$ref`` resolved), and
  every field we send must be one it declares, except the ones listed in ``UNDOCUMENTED``;
- where it is wrong, the divergence is pinned here: ``qty`` is typed ``integer``, but FreshBooks
  takes fractional quantities (3.75 hours; its docs' examples and the official SDKs send
  strings/decimals), so we send a decimal string and validate ``qty`` as one;
- where it is silent, that is pinned too: it has no credit-note operations, no identity
  endpoint (``/auth/api/v1/users/me``), no query parameters on list operations (FreshBooks
  documents ``search[…]``, ``page``, ``per_page``), and no ``action_email`` update fields.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import yaml
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from autoinvoice.connectors.base import RecordedRequest
from autoinvoice.connectors.freshbooks import FreshBooksConnector
from autoinvoice.connectors.http import clear_limiters
from autoinvoice.domain.invoice import DocumentKind, LineKind
from autoinvoice.sandbox.freshbooks import FreshBooksSandbox
from tests.connectors.test_freshbooks import (
    API,
    REVERSE_CHARGE,
    StandInTokens,
    settings_for,
)
from tests.connectors.test_stripe import keys_for, make_invoice, make_line

pytestmark = pytest.mark.needs_shared

SPEC_PATH = Path("vendor-specs") / "freshbooks" / "unofficial" / "openapi.yaml"
SPEC_URI = "urn:freshbooks:unofficial"
JSON = "application/json"
DECIMAL_STRING = {"type": "string", "pattern": r"^-?\d+(\.\d+)?$"}
#: Fields FreshBooks documents that the unofficial file does not declare, by operation.
UNDOCUMENTED = {
    ("put", "/accounting/account/{account-ID}/invoices/invoices/{invoice-ID}"):
        {"invoice.action_email", "invoice.email_recipients", "invoice.email_include_pdf"},
}
#: Operations FreshBooks documents that the file lacks.
NOT_IN_SPEC = {("GET", "/auth/api/v1/users/me"),
               ("GET", "/accounting/account/{account-ID}/credit_notes/credit_notes"),
               ("POST", "/accounting/account/{account-ID}/credit_notes/credit_notes")}
QUERY = re.compile(r"^(search\[[a-z_]+\]|page|per_page)$")


@functools.cache
def load_spec(path: Path) -> dict[str, Any]:
    with path.open("rb") as handle:
        spec: dict[str, Any] = yaml.safe_load(handle)
    return spec


class Spec:
    """The file, with its one known-wrong type (``qty``) corrected, as a request validator."""

    def __init__(self, raw: dict[str, Any]) -> None:
        spec = copy.deepcopy(raw)
        for name in ("InvoiceLinesWritable", "InvoiceLines"):
            spec["components"]["schemas"][name]["properties"]["qty"] = DECIMAL_STRING
        self.spec = spec
        self._registry: Registry[Any] = Registry().with_resource(
            SPEC_URI, Resource.from_contents(spec, default_specification=DRAFT4))
        self._routes = sorted(((m, t, re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+",
                                                        re.escape(t))))
                               for t, item in spec["paths"].items() for m in item),
                              key=lambda r: r[1].count("{"))

    def template(self, method: str, path: str) -> str | None:
        for route_method, template, regex in self._routes:
            if route_method == method.lower() and regex.fullmatch(path):
                return template
        return None

    def problems(self, record: RecordedRequest) -> list[str]:
        parts = urlsplit(record.url)
        template = self.template(record.method, parts.path)
        if template is None:
            return [f"{record.method} {parts.path}: not in the spec"]
        found = [f"undocumented query parameter {k}" for k, _ in parse_qsl(parts.query)
                 if not QUERY.match(k)]
        if record.body:
            found += self._body_problems(record.method.lower(), template, json.loads(
                record.body))
        return [f"{record.method} {template}: {p}" for p in found]

    def _body_problems(self, method: str, template: str, body: Any) -> list[str]:
        operation = self.spec["paths"][template][method]
        schema = operation["requestBody"]["content"][JSON]["schema"]
        validator = Draft4Validator({"$ref": SPEC_URI + schema["$ref"]},
                                    registry=self._registry)
        found = [f"body{''.join(f'[{p}]' for p in e.absolute_path)}: {e.message[:200]}"
                 for e in validator.iter_errors(body)]
        allowed = UNDOCUMENTED.get((method, template), set())
        found += [f"field {name} is not in the spec" for name in
                  self.undeclared(body, schema) if name not in allowed]
        return found

    def undeclared(self, value: Any, schema: dict[str, Any], where: str = "") -> list[str]:
        schema = self.resolve(schema)
        if isinstance(value, dict) and "properties" in schema:
            out: list[str] = []
            for key, item in value.items():
                name = f"{where}.{key}" if where else key
                if key not in schema["properties"]:
                    out.append(name)
                else:
                    out += self.undeclared(item, schema["properties"][key], name)
            return out
        if isinstance(value, list) and "items" in schema:
            return [n for item in value for n in self.undeclared(item, schema["items"],
                                                                 f"{where}[]")]
        return []

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self._registry.resolver(SPEC_URI).lookup(
                SPEC_URI + schema["$ref"]).contents
        return schema


@pytest.fixture(scope="module")
def spec(shared_dir: Path) -> Spec:
    return Spec(load_spec(shared_dir / SPEC_PATH))


@pytest.fixture(scope="module")
def recorded() -> list[RecordedRequest]:
    clear_limiters()
    records: list[RecordedRequest] = []
    core = FreshBooksSandbox()
    connector = FreshBooksConnector(settings_for(core, StandInTokens(core, account_id=""),
                                                 records))
    covered = dataclasses.replace(make_line("Cooler fan motor", "1", "0", "0.085"),
                                  coverage="Covered by contract SC-2291")
    lines = (*make_invoice().lines, covered,
             make_line("Mileage", "38.5", "0.655", "0.085", LineKind.MILEAGE))
    invoice = dataclasses.replace(make_invoice(*lines), notes=(REVERSE_CHARGE,))
    keys = keys_for(invoice)
    customer = connector.ensure_customer(invoice.customer, keys)
    remote = connector.create_invoice(invoice, customer, keys)
    connector.send_invoice(remote, keys)
    connector.fetch_status(remote.id)
    connector.find_by_reference(invoice)
    credit = dataclasses.replace(invoice, kind=DocumentKind.CREDIT_NOTE, number="CN-1",
                                 corrects=invoice.number)
    connector.credit_invoice(remote.id, credit, keys_for(credit))
    draft = connector.create_invoice(make_invoice(job_id="WO-X", number="NW-X"), customer,
                                     keys)
    connector.void_invoice(draft.id, keys)
    connector.check_auth()
    clear_limiters()
    return records


def test_every_request_in_the_spec_conforms_to_it(spec, recorded) -> None:
    in_spec = [r for r in recorded if spec.template(r.method, urlsplit(r.url).path)]
    problems = [p for r in in_spec for p in spec.problems(r)]
    assert problems == []
    assert {(r.method, spec.template(r.method, urlsplit(r.url).path)) for r in in_spec
            if r.method != "GET"} == {
        ("POST", "/accounting/account/{account-ID}/users/clients"),
        ("POST", "/accounting/account/{account-ID}/invoices/invoices"),
        ("PUT", "/accounting/account/{account-ID}/invoices/invoices/{invoice-ID}")}


def test_what_the_spec_does_not_describe_is_exactly_what_we_know_it_lacks(spec, recorded):
    missing = {(r.method, re.sub(r"/account/[^/]+/", "/account/{account-ID}/",
                                 urlsplit(r.url).path)) for r in recorded
               if spec.template(r.method, urlsplit(r.url).path) is None}
    assert missing == NOT_IN_SPEC


def test_the_invoice_body_meets_the_spec_required_fields(spec, recorded) -> None:
    [create] = [json.loads(r.body) for r in recorded if r.method == "POST"
                and r.url.endswith("/invoices/invoices")][:1]
    schema = spec.resolve({"$ref": "#/components/schemas/InvoiceCreate"})
    assert set(schema["required"]) <= set(create["invoice"])


# The validator must be able to fail, or the conformance test above proves nothing.


def test_an_undeclared_field_and_a_wrong_type_are_caught(spec) -> None:
    body = {"invoice": {"customerid": "3301", "create_date": "2026-11-21",
                        "reference": "WO-1", "lines": [{"qty": 2}]}}
    record = RecordedRequest("POST", f"{API}/accounting/account/A/invoices/invoices", {},
                             json.dumps(body))
    problems = spec.problems(record)
    assert any("'3301' is not of type 'integer'" in p for p in problems)
    assert any("field invoice.reference is not in the spec" in p for p in problems)
    assert any("[lines][0][qty]" in p for p in problems)  # qty: a decimal string
