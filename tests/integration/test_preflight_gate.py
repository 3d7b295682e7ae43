"""The pre-flight check stands between numbering and the platform: an error holds the invoice
before anything is sent; a warning is kept in its history and the invoice goes out."""

from __future__ import annotations

from typing import Any

from tests.helpers import completed, signed


def _seller(harness: Any, **changes: Any) -> None:
    config = harness.app.config
    tenant = config.tenants["mail"].model_copy(update=changes)
    harness.app.config = config.model_copy(update={"tenants": {**config.tenants, "mail": tenant}})


def test_eu_seller_without_a_vat_id_is_held_before_anything_is_created(harness, smtp_sink):
    address = harness.app.config.tenants["mail"].address.model_copy(
        update={"country": "DE", "region": "", "city": "Nuernberg", "postal_code": "90431"})
    _seller(harness, tax_id=None, address=address)
    harness.ingest(completed("WO-P1", tenant="mail"))
    harness.ingest(signed("WO-P1", tenant="mail"))
    harness.run()
    shown = harness.show("WO-P1", tenant="mail")
    assert shown["state"] == "on_hold"
    row = harness.row("WO-P1", tenant="mail")
    assert row.hold_code == "preflight_failed"
    assert "seller.tax_id" in row.hold_message
    assert row.number is not None  # numbered (the number stays used), never created
    assert row.remote_id is None
    assert smtp_sink.messages == []


def test_warnings_are_recorded_and_the_invoice_still_goes_out(harness, smtp_sink):
    _seller(harness, tax_id=None)  # a US seller without its EIN: a warning, not an error
    harness.ingest(completed("WO-P2", tenant="mail"))
    harness.ingest(signed("WO-P2", tenant="mail"))
    harness.run()
    shown = harness.show("WO-P2", tenant="mail")
    assert shown["state"] == "sent"
    actions = {entry["action"]: entry for entry in shown["history"]}
    codes = [f["code"] for f in actions["preflight_warnings"]["detail"]["findings"]]
    assert "seller_tax_id_missing" in codes
    assert len(smtp_sink.messages) == 1


def test_a_credit_note_failing_the_check_is_refused_with_the_field_named(harness):
    import dataclasses

    import pytest

    from autoinvoice.connectors.errors import PermanentError
    from autoinvoice.domain.invoice import DocumentKind
    from autoinvoice.pipeline.compliance import check_credit_note
    from autoinvoice.store import repo
    from autoinvoice.store.models import InvoiceRow

    harness.ingest(completed("WO-P3", tenant="mail"))
    harness.ingest(signed("WO-P3", tenant="mail"))
    harness.run()
    with harness.app.sessions.begin() as session:
        row = session.get(InvoiceRow, harness.row("WO-P3", tenant="mail").id)
        note = dataclasses.replace(repo.load_invoice(row), kind=DocumentKind.CREDIT_NOTE,
                                   number="CN-NW-2026-00001", corrects=None)
        with pytest.raises(PermanentError) as caught:
            check_credit_note(session, row, note, harness.app.config.tenant("mail"),
                              harness.clock())
    assert caught.value.code == "preflight_failed"
    assert "corrects" in str(caught.value)
