"""Every request the Stripe connector sends conforms to Stripe's published OpenAPI spec."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from autoinvoice.connectors.base import RecordedRequest
from autoinvoice.connectors.http import clear_limiters
from autoinvoice.connectors.stripe import StripeConnector
from autoinvoice.sandbox.stripe import StripeSandbox
from tests.connectors.stripe_spec import SPEC_PATH, SpecValidator, load_spec
from tests.connectors.test_stripe import (
    API_KEY,
    keys_for,
    make_invoice,
    make_line,
    settings_for,
)

pytestmark = pytest.mark.needs_shared

API = "https://api.stripe.test"
REVERSE_CHARGE = "Reverse charge: VAT to be accounted for by the recipient"


@pytest.fixture(scope="session")
def spec(shared_dir: Path) -> SpecValidator:
    return SpecValidator(load_spec(shared_dir / SPEC_PATH))


@pytest.fixture
def recorded() -> list[RecordedRequest]:
    clear_limiters()
    records: list[RecordedRequest] = []
    sandbox = StripeSandbox(api_key=API_KEY)
    connector = StripeConnector(settings_for(sandbox, records))
    lines = (*make_invoice().lines, make_line("Mileage", "38.5", "0.655", "0.2"),
             make_line("Credit", "1", "-10.00", "0"))
    invoice = dataclasses.replace(make_invoice(*lines), notes=(REVERSE_CHARGE,))
    keys = keys_for(invoice)
    customer = connector.ensure_customer(invoice.customer, keys)
    remote = connector.create_invoice(invoice, customer, keys)
    connector.send_invoice(remote, keys)
    connector.fetch_status(remote.id)
    connector.find_by_reference(invoice)
    connector.check_auth()
    connector.close()
    return records


def test_every_request_of_create_and_send_conforms_to_the_spec(spec, recorded) -> None:
    problems = [p for r in recorded for p in spec.problems(r.method, r.url, r.body)]
    assert problems == []


def test_the_flow_covers_every_write_operation(spec, recorded) -> None:
    posts = {spec.operation("POST", r.url.removeprefix(API)).template  # type: ignore[union-attr]
             for r in recorded if r.method == "POST"}
    assert posts == {"/v1/customers", "/v1/tax_rates", "/v1/invoices", "/v1/invoiceitems",
                     "/v1/invoices/{invoice}/finalize", "/v1/invoices/{invoice}/send"}


def test_every_post_carries_an_idempotency_key(recorded) -> None:
    posts = [r for r in recorded if r.method == "POST"]
    assert posts
    assert all(r.headers.get("idempotency-key", "").startswith("ai-") for r in posts)
    assert len({r.headers["idempotency-key"] for r in posts}) == len(posts)


# The validator must be able to fail: otherwise the conformance test above proves nothing.


def test_an_undocumented_parameter_is_caught(spec) -> None:
    problems = spec.problems("POST", f"{API}/v1/invoices", "customer=cus_1&po_number=77813")
    assert len(problems) == 1
    assert "'po_number' was unexpected" in problems[0]


def test_an_undocumented_nested_parameter_is_caught(spec) -> None:
    body = "customer=cus_1&custom_fields[0][name]=PO&custom_fields[0][label]=x"
    assert spec.problems("POST", f"{API}/v1/invoices", body)


def test_a_wrongly_typed_value_is_caught(spec) -> None:
    problems = spec.problems("POST", f"{API}/v1/invoiceitems", "customer=cus_1&amount=12.50")
    assert any("is not of type 'integer'" in p for p in problems)


def test_a_too_long_custom_field_is_caught(spec) -> None:
    body = f"customer=cus_1&custom_fields[0][name]=PO&custom_fields[0][value]={'9' * 31}"
    assert spec.problems("POST", f"{API}/v1/invoices", body)


def test_a_missing_required_parameter_is_caught(spec) -> None:
    problems = spec.problems("POST", f"{API}/v1/tax_rates", "display_name=Tax&inclusive=false")
    assert any("'percentage' is a required property" in p for p in problems)


def test_an_undocumented_query_parameter_and_an_unknown_path_are_caught(spec) -> None:
    assert spec.problems("GET", f"{API}/v1/invoices/search?query=x&job_id=1")
    assert spec.problems("GET", f"{API}/v1/invoices/search")  # query is required
    assert spec.problems("POST", f"{API}/v1/invoices/in_1/email", "")


def test_coerced_values_pass(spec) -> None:
    body = ("customer=cus_1&auto_advance=false&days_until_due=30&metadata[job_id]=WO-1"
            "&custom_fields[0][name]=PO&custom_fields[0][value]=1")
    assert spec.problems("POST", f"{API}/v1/invoices", body) == []
    assert spec.problems("GET", f"{API}/v1/tax_rates?active=true&limit=100") == []


def test_legal_notes_go_in_the_invoice_footer(recorded) -> None:
    create = next(r for r in recorded if r.method == "POST" and r.url.endswith("/v1/invoices"))
    assert parse_qs(create.body)["footer"] == [REVERSE_CHARGE]
