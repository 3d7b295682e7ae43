"""Voiding and crediting on Stripe (stand-in, requests validated against Stripe's spec) and on
the generic sandbox."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from autoinvoice.connectors.base import IdempotencyKeys, RecordedRequest
from autoinvoice.connectors.errors import PermanentError
from autoinvoice.connectors.http import clear_limiters
from autoinvoice.connectors.sandbox import SandboxConnector
from autoinvoice.connectors.stripe import StripeConnector
from autoinvoice.domain.invoice import DocumentKind, Invoice
from autoinvoice.sandbox.generic import GenericSandbox
from autoinvoice.sandbox.generic import mock_transport as generic_transport
from autoinvoice.sandbox.stripe import StripeSandbox
from tests.connectors.stripe_spec import SPEC_PATH, SpecValidator, load_spec
from tests.connectors.test_sandbox_connector import MULTI_RATE_LINES, Wire
from tests.connectors.test_sandbox_connector import make_invoice as make_sbx_invoice
from tests.connectors.test_sandbox_connector import settings_for as sbx_settings
from tests.connectors.test_stripe import API_KEY, keys_for, make_invoice, make_line, settings_for

API = "https://api.stripe.test"


def credit_for(invoice: Invoice, number: str = "CN-NW-2026-00001") -> Invoice:
    return replace(invoice, kind=DocumentKind.CREDIT_NOTE, corrects=invoice.number,
                   number=number)


def credit_keys(invoice: Invoice) -> IdempotencyKeys:
    return IdempotencyKeys.derive(invoice.tenant, invoice.job_id, invoice.revision,
                                  "credit_note")


@pytest.fixture(autouse=True)
def _fresh_limiters():
    clear_limiters()
    yield
    clear_limiters()


@pytest.fixture
def sandbox() -> StripeSandbox:
    return StripeSandbox(api_key=API_KEY)


@pytest.fixture
def records() -> list[RecordedRequest]:
    return []


@pytest.fixture
def stripe(sandbox, records):
    connector = StripeConnector(settings_for(sandbox, records))
    yield connector
    connector.close()


def created(stripe: StripeConnector, invoice: Invoice, send: bool = True):
    keys = keys_for(invoice)
    remote = stripe.create_invoice(invoice, stripe.ensure_customer(invoice.customer, keys), keys)
    return stripe.send_invoice(remote, keys) if send else remote


# -- Stripe: credit notes ---------------------------------------------------------------------


def test_a_sent_open_invoice_is_credited_in_full_with_one_line_per_invoice_line(
        stripe, sandbox) -> None:
    invoice = make_invoice()
    remote = created(stripe, invoice)
    # when
    note = stripe.credit_invoice(remote.id, credit_for(invoice), credit_keys(invoice))
    # then
    stored = sandbox.credit_notes(remote.id)
    assert len(stored) == 1
    assert note.id == stored[0]["id"]
    assert note.total == remote.total
    assert stored[0]["type"] == "pre_payment"
    assert stored[0]["metadata"]["credit_note_number"] == "CN-NW-2026-00001"
    assert stored[0]["metadata"]["credits_invoice_number"] == "NW-2026-0001"
    assert {line["type"] for line in stored[0]["lines"]["data"]} == {"invoice_line_item"}
    assert sandbox.get_invoice(remote.id)["amount_remaining"] == 0


def test_a_paid_invoice_is_credited_post_payment_out_of_band(stripe, sandbox, records) -> None:
    invoice = make_invoice()
    remote = created(stripe, invoice)
    sandbox.record_payment(remote.id, remote.total.minor)
    note = stripe.credit_invoice(remote.id, credit_for(invoice), credit_keys(invoice))
    stored = sandbox.credit_notes(remote.id)[0]
    assert (stored["type"], stored["out_of_band_amount"]) == ("post_payment", note.total.minor)
    assert note.total == remote.total


def test_crediting_again_finds_the_credit_note_instead_of_issuing_another(
        stripe, sandbox) -> None:
    invoice = make_invoice()
    remote = created(stripe, invoice)
    first = stripe.credit_invoice(remote.id, credit_for(invoice), credit_keys(invoice))
    second = stripe.credit_invoice(remote.id, credit_for(invoice), credit_keys(invoice))
    assert first == second
    assert len(sandbox.credit_notes(remote.id)) == 1


def test_a_lost_credit_note_response_is_retried_into_one_credit_note(stripe, sandbox) -> None:
    invoice = make_invoice()
    remote = created(stripe, invoice)
    sandbox.faults.lose_response("/v1/credit_notes", method="POST")
    stripe.credit_invoice(remote.id, credit_for(invoice), credit_keys(invoice))
    assert len(sandbox.credit_notes(remote.id)) == 1


def test_an_invoice_with_a_negative_line_is_credited_with_one_custom_line(
        stripe, sandbox) -> None:
    invoice = make_invoice(*make_invoice().lines, make_line("Goodwill", "1", "-10.00"))
    remote = created(stripe, invoice)
    note = stripe.credit_invoice(remote.id, credit_for(invoice), credit_keys(invoice))
    stored = sandbox.credit_notes(remote.id)[0]
    assert [line["type"] for line in stored["lines"]["data"]] == ["custom_line_item"]
    assert note.total == remote.total


def test_a_partly_paid_open_invoice_cannot_be_credited_in_full(stripe, sandbox) -> None:
    invoice = make_invoice()
    remote = created(stripe, invoice)
    sandbox.record_payment(remote.id, 100)
    with pytest.raises(PermanentError, match="partly paid"):
        stripe.credit_invoice(remote.id, credit_for(invoice), credit_keys(invoice))
    assert sandbox.credit_notes(remote.id) == []


# -- Stripe: void and delete ------------------------------------------------------------------


def test_a_draft_is_deleted_and_a_finalized_invoice_voided(stripe, sandbox) -> None:
    draft = created(stripe, make_invoice(job_id="WO-D"), send=False)
    assert stripe.void_invoice(draft.id, keys_for(make_invoice(job_id="WO-D"))) == "deleted"
    assert sandbox.find_invoices(job_id="WO-D") == []
    assert stripe.void_invoice(draft.id, keys_for(make_invoice(job_id="WO-D"))) == \
        "already_void"
    sent = created(stripe, make_invoice(job_id="WO-V"))
    assert stripe.void_invoice(sent.id, keys_for(make_invoice(job_id="WO-V"))) == "voided"
    assert sandbox.get_invoice(sent.id)["status"] == "void"
    assert stripe.void_invoice(sent.id, keys_for(make_invoice(job_id="WO-V"))) == \
        "already_void"


def test_a_paid_invoice_cannot_be_voided(stripe, sandbox) -> None:
    invoice = make_invoice()
    remote = created(stripe, invoice)
    sandbox.record_payment(remote.id, remote.total.minor)
    with pytest.raises(PermanentError, match="credit it instead"):
        stripe.void_invoice(remote.id, keys_for(invoice))


# -- Stripe: the requests conform to the spec -------------------------------------------------


@pytest.fixture(scope="module")
def spec(shared_dir: Path) -> SpecValidator:
    return SpecValidator(load_spec(shared_dir / SPEC_PATH))


@pytest.mark.needs_shared
def test_void_delete_and_credit_note_requests_conform_to_the_spec(
        spec, stripe, sandbox, records) -> None:
    # given: a draft, an open invoice, a paid one and one with a negative line
    draft = created(stripe, make_invoice(job_id="WO-1"), send=False)
    opened = created(stripe, make_invoice(job_id="WO-2"))
    paid_invoice = make_invoice(job_id="WO-3")
    paid = created(stripe, paid_invoice)
    sandbox.record_payment(paid.id, paid.total.minor)
    odd = make_invoice(*make_invoice().lines, make_line("Goodwill", "1", "-10.00"),
                       job_id="WO-4")
    negative = created(stripe, odd)
    records.clear()
    # when
    stripe.void_invoice(draft.id, keys_for(make_invoice(job_id="WO-1")))
    stripe.void_invoice(opened.id, keys_for(make_invoice(job_id="WO-2")))
    stripe.credit_invoice(paid.id, credit_for(paid_invoice), credit_keys(paid_invoice))
    stripe.credit_invoice(negative.id, credit_for(odd), credit_keys(odd))
    # then
    problems = [p for r in records for p in spec.problems(r.method, r.url, r.body)]
    assert problems == []
    operations = {(r.method, spec.operation(r.method, r.url.removeprefix(API).split("?")[0])
                   .template) for r in records}  # type: ignore[union-attr]
    assert {("DELETE", "/v1/invoices/{invoice}"), ("POST", "/v1/invoices/{invoice}/void"),
            ("POST", "/v1/credit_notes"), ("GET", "/v1/credit_notes"),
            ("GET", "/v1/invoices/{invoice}/lines")} <= operations


@pytest.mark.needs_shared
def test_the_validator_rejects_a_credit_note_line_without_a_type(spec) -> None:
    body = "invoice=in_1&lines[0][invoice_line_item]=il_1&lines[0][amount]=100"
    assert any("'type' is a required property" in p
               for p in spec.problems("POST", f"{API}/v1/credit_notes", body))


# -- the generic sandbox ----------------------------------------------------------------------


@pytest.fixture
def generic() -> GenericSandbox:
    return GenericSandbox()


@pytest.fixture
def sbx(generic):
    return SandboxConnector(sbx_settings(generic_transport(generic), Wire(), api_key=None))


def sbx_created(sbx: SandboxConnector, invoice: Invoice, issue: bool = True):
    keys = IdempotencyKeys.derive(invoice.tenant, invoice.job_id, invoice.revision)
    remote = sbx.create_invoice(invoice, sbx.ensure_customer(invoice.customer, keys), keys)
    return sbx.send_invoice(remote, keys) if issue else remote


def test_generic_sandbox_credit_note_carries_our_number_and_is_issued_once(
        sbx, generic) -> None:
    invoice = replace(make_sbx_invoice(lines=MULTI_RATE_LINES), number="2026-00007")
    remote = sbx_created(sbx, invoice)
    credit = credit_for(invoice, "CN-2026-00001")
    first = sbx.credit_invoice(remote.id, credit, credit_keys(invoice))
    generic.faults.lose_response("/api/v1/credit_notes", method="POST")
    second = sbx.credit_invoice(remote.id, credit, credit_keys(invoice))
    assert first == second
    assert (first.number, first.total) == ("CN-2026-00001", remote.total)
    listed = generic.handle("GET", "/api/v1/credit_notes", {}, {}, b"")
    assert len(httpx.Response(200, content=listed[2]).json()["data"]) == 1
    assert sbx.fetch_status(remote.id).balance.amount == 0


def test_generic_sandbox_voids_an_issued_invoice_once(sbx) -> None:
    invoice = make_sbx_invoice()
    remote = sbx_created(sbx, invoice)
    keys = IdempotencyKeys.derive(invoice.tenant, invoice.job_id, invoice.revision)
    assert sbx.void_invoice(remote.id, keys) == "voided"
    assert sbx.void_invoice(remote.id, keys) == "already_void"
    assert sbx.fetch_status(remote.id).status == "void"
