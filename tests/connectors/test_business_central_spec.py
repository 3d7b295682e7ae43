"""What the Business Central connector sends, checked against Microsoft's published OpenAPI file.

Microsoft publishes no v2.0 OpenAPI (vendor-specs README, note B1); ``BCOAS1.0.yaml`` describes
API v1.0, whose entities, paths, bound actions and most fields v2.0 keeps. Every request is
matched to a v1.0 operation (path below ``/api/v2.0`` against the spec's templates, method),
its query parameters against the operation's declared ones, and every JSON body against the
operation's request schema with unknown properties refused -- except the v2.0 fields we rely
on, each listed in ``V2_ONLY`` with what the v2.0 reference says of it.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import re
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
from autoinvoice.connectors.business_central import BusinessCentralConnector
from autoinvoice.connectors.http import clear_limiters
from autoinvoice.sandbox.business_central import BusinessCentralSandbox
from tests.connectors.test_business_central import (
    REVERSE_CHARGE,
    doc_invoice,
    settings_for,
)
from tests.connectors.test_stripe import make_invoice, make_line

pytestmark = pytest.mark.needs_shared

SPEC_PATH = Path("vendor-specs") / "dynamics365-business-central" / "BCOAS1.0.yaml"
URI = "urn:bc:v1"
API_ROOT = re.compile(r"^/v2\.0/(?:[^/]+/)?[^/]+/api/v2\.0")

#: v2.0 fields absent from the v1.0 schemas (v2.0 reference, resources/dynamics_*.md).
V2_ONLY = {
    # salesInvoice / salesCreditMemo: "postingDate | date | The date that the ... is posted."
    "salesInvoice": {"postingDate"},
    "salesCreditMemo": {"postingDate"},
    # salesInvoiceLine: "lineObjectNumber | string | The number of the object (account or
    # item) of the sales invoice line."
    "salesInvoiceLine": {"lineObjectNumber"},
    "salesCreditMemoLine": {"lineObjectNumber"},
    # customer: v2.0 flattens v1.0's ``address`` complex type into addressLine1, addressLine2,
    # city, state, country, postalCode
    "customer": {"addressLine1", "addressLine2", "city", "state", "country", "postalCode"},
}
LINES = {"salesInvoiceLines": "salesInvoiceLine", "salesCreditMemoLines": "salesCreditMemoLine"}


@functools.cache
def load(path: Path) -> dict[str, Any]:
    with path.open("rb") as handle:
        spec: dict[str, Any] = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader",
                                                                  yaml.SafeLoader))
    return spec


class Spec:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = copy.deepcopy(spec)
        self._close_schemas()
        self.registry: Registry[Any] = Registry().with_resource(
            URI, Resource.from_contents(self.spec, default_specification=DRAFT4))
        self.routes = sorted(((m, t, _regex(t)) for t, item in self.spec["paths"].items()
                              for m in item if m != "parameters"),
                             key=lambda r: r[1].count("{"))

    def _close_schemas(self) -> None:
        """Refuse properties the schema does not declare (v1.0 leaves it open)."""
        schemas = self.spec["components"]["schemas"]
        for name, extra in V2_ONLY.items():
            for field in extra:
                schemas[name]["properties"][field] = {"type": "string"}
        for name in ("salesInvoice", "salesCreditMemo"):
            nested = name + "Lines"
            schemas[name]["properties"][nested] = {
                "type": "array", "items": {"$ref": f"#/components/schemas/{name}Line"}}
        for name in ("customer", "salesInvoice", "salesCreditMemo", "salesInvoiceLine",
                     "salesCreditMemoLine"):
            schemas[name]["additionalProperties"] = False

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any]] | None:
        for route_method, template, regex in self.routes:
            if route_method == method.lower() and regex.fullmatch(path):
                return template, self.spec["paths"][template][route_method]
        return None

    def problems(self, request: RecordedRequest) -> list[str]:
        parts = urlsplit(request.url)
        path = API_ROOT.sub("", parts.path)
        found = self.operation(request.method, path)
        if found is None:
            return [f"{request.method} {path}: no such operation in BCOAS1.0"]
        template, operation = found
        out = [f"{template}: undocumented query parameter {name}"
               for name, _ in parse_qsl(parts.query) if name not in self._query_names(operation)]
        if request.body:
            out += [f"{template}: {p}" for p in self._body_problems(operation, request.body)]
        return out

    def _query_names(self, operation: dict[str, Any]) -> set[str]:
        names = set()
        for parameter in operation.get("parameters", []):
            if "$ref" in parameter:
                parameter = self._resolve(parameter["$ref"])
            if parameter.get("in") == "query":
                names.add(parameter["name"])
        return names

    def _body_problems(self, operation: dict[str, Any], body: str) -> list[str]:
        data = json.loads(body, parse_float=Decimal)
        ref = operation["requestBody"]["$ref"].rsplit("/", 1)[-1]
        schema = {"$ref": f"{URI}#/components/schemas/{ref}"}
        validator = Draft4Validator(schema, registry=self.registry)
        return [f"body{''.join(f'[{p}]' for p in e.absolute_path)}: {e.message[:200]}"
                for e in validator.iter_errors(data)]

    def _resolve(self, ref: str) -> dict[str, Any]:
        node: Any = self.spec
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        return dict(node)


def _regex(template: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/()]+", re.escape(template)))


@pytest.fixture(scope="module")
def spec(shared_dir: Path) -> Spec:
    return Spec(load(shared_dir / SPEC_PATH))


@pytest.fixture(scope="module")
def recorded() -> list[RecordedRequest]:
    clear_limiters()
    records: list[RecordedRequest] = []
    core = BusinessCentralSandbox()
    connector = BusinessCentralConnector(settings_for(core, records))
    covered = dataclasses.replace(make_line("Thermostatic valve kit", "1", "0", "0"),
                                  coverage="Service contract WV-2024-017",
                                  list_unit_price=Decimal("412.00"))
    lines = (*make_invoice().lines, covered, make_line("Mileage", "38.5", "0.655", "0"),
             make_line("Credit", "1", "-10.00", "0"))
    invoice = dataclasses.replace(doc_invoice(*lines), notes=(REVERSE_CHARGE,))
    keys = IdempotencyKeys.derive("northwind", invoice.job_id, 1)
    customer = connector.ensure_customer(invoice.customer, keys)
    remote = connector.create_invoice(invoice, customer, keys)
    connector.send_invoice(remote, keys)
    connector.fetch_status(remote.id)
    connector.find_by_reference(invoice)
    credit = dataclasses.replace(invoice, number="CN-2026-0001", corrects=invoice.number)
    connector.credit_invoice(remote.id, credit, keys)
    draft = connector.create_invoice(doc_invoice(job_id="WO-V", number="NW-V"), customer, keys)
    connector.void_invoice(draft.id, keys)
    connector.check_auth()
    assert connector.check_setup() == []  # GET taxGroups and taxAreas
    connector.close()
    clear_limiters()
    return records


def test_every_request_matches_a_documented_operation_and_schema(spec, recorded) -> None:
    problems = [p for r in recorded for p in spec.problems(r)]
    assert problems == []


def test_the_flow_covers_every_write_operation(spec, recorded) -> None:
    writes = {spec.operation(r.method, API_ROOT.sub("", urlsplit(r.url).path))[0]  # type: ignore[index]
              for r in recorded if r.method in ("POST", "DELETE", "PATCH")}
    assert writes == {
        "/companies({company_id})/customers",
        "/companies({company_id})/customers({customer_id})",  # its tax area (issue 10)
        "/companies({company_id})/salesInvoices",
        "/companies({company_id})/salesInvoices({salesInvoice_id})/Microsoft.NAV.postAndSend",
        "/companies({company_id})/salesCreditMemos",
        "/companies({company_id})/salesCreditMemos({salesCreditMemo_id})/Microsoft.NAV.postAndSend",
        "/companies({company_id})/salesInvoices({salesInvoice_id})",
    }


def test_changes_and_actions_carry_an_etag(recorded) -> None:
    guarded = [r for r in recorded if r.method in ("DELETE", "PATCH") or "Microsoft.NAV" in r.url]
    assert guarded
    assert all(r.headers.get("if-match", "").startswith('W/"') for r in guarded)


# The validator must be able to fail: otherwise the conformance test proves nothing.


def test_an_undocumented_field_is_caught(spec) -> None:
    request = RecordedRequest("POST", "https://x/v2.0/t/production/api/v2.0/companies(c)/"
                              "salesInvoices", {}, json.dumps({"customerId": "c",
                                                               "poNumber": "77813"}))
    problems = spec.problems(request)
    assert len(problems) == 1
    assert "'poNumber' was unexpected" in problems[0]


def test_a_decimal_sent_as_a_string_is_caught(spec) -> None:
    body = {"salesInvoiceLines": [{"lineType": "Account", "unitPrice": "0.655"}]}
    request = RecordedRequest("POST", "https://x/v2.0/t/production/api/v2.0/companies(c)/"
                              "salesInvoices", {}, json.dumps(body))
    assert any("is not of type 'number'" in p for p in spec.problems(request))


def test_the_tax_setup_reads_are_documented_operations(spec, recorded) -> None:
    reads = {spec.operation("GET", API_ROOT.sub("", urlsplit(r.url).path))[0]  # type: ignore[index]
             for r in recorded if r.method == "GET"}
    assert {"/companies({company_id})/taxGroups", "/companies({company_id})/taxAreas"} <= reads


def test_the_stand_in_answers_numbers_as_the_spec_types_them(shared_dir: Path) -> None:
    """Every ``number`` of the spec's salesInvoice and salesInvoiceLine comes back from the
    stand-in as a JSON number, and the tax setup reads give the spec's fields."""
    schemas = load(shared_dir / SPEC_PATH)["components"]["schemas"]
    core = BusinessCentralSandbox()
    connector = BusinessCentralConnector(settings_for(core))
    remote = connector.create_invoice(doc_invoice(), connector.ensure_customer(
        doc_invoice().customer, IdempotencyKeys.derive("t", "j", 1)),
        IdempotencyKeys.derive("t", "j", 1))
    raw = json.loads(json.dumps(core.get_invoice(remote.id), default=float))
    checked = 0
    for name, obj in [("salesInvoice", raw), *[("salesInvoiceLine", x) for x in raw["lines"]]]:
        for field, schema in schemas[name]["properties"].items():
            if schema.get("type") == "number" and field in obj:
                assert isinstance(obj[field], int | float), (name, field, obj[field])
                checked += 1
    assert checked >= 10
    group = next(iter(core.store.tax_groups.values()))
    assert set(group) <= set(schemas["taxGroup"]["properties"])
