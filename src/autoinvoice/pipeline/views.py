"""What users see of an invoice (CLI ``--json`` and the REST API share these shapes).
Amounts are strings with the currency's minor-unit digits; timestamps ISO 8601 UTC."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from autoinvoice.domain.invoice import Invoice
from autoinvoice.domain.money import Money
from autoinvoice.pipeline.holds import reasons_of
from autoinvoice.store import repo
from autoinvoice.store.models import InvoiceRow, PaymentRow


def _money(minor: int | None, currency: str | None) -> str | None:
    if minor is None or currency is None:
        return None
    return str(Money.from_minor(minor, currency).amount)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def summary(row: InvoiceRow) -> dict[str, Any]:
    return {
        "tenant": row.tenant, "job_id": row.job_id, "revision": row.revision,
        "kind": row.kind, "number": row.number, "customer": row.customer_name,
        "currency": row.currency,
        "total": _money(row.total_minor, row.currency), "state": row.doc_state,
        "payment_state": row.pay_state, "platform": row.platform, "remote_id": row.remote_id,
        "flags": list(row.flags or []), "hold": row.hold_code, "last_error": row.last_error,
    }


def detail(session: Session, row: InvoiceRow) -> dict[str, Any]:
    cur = row.currency
    priced = repo.load_invoice(row) if row.invoice_json is not None else None
    payments = session.scalars(select(PaymentRow).where(PaymentRow.invoice_id == row.id)
                               .order_by(PaymentRow.id)).all()
    return {
        **summary(row),
        "issue_date": row.issue_date, "due_date": row.due_date,
        "subtotal": _money(row.subtotal_minor, cur), "tax": _money(row.tax_minor, cur),
        "remote": {"id": row.remote_id, "number": row.remote_number, "url": row.remote_url,
                   "customer_id": row.remote_customer_id,
                   "total": _money(row.remote_total_minor, cur)},
        "delivery": {"via": row.delivered_via, "message_id": row.message_id,
                     "pdf": row.pdf_path, "sent_at": _iso(row.sent_at)},
        "hold": {"code": row.hold_code, "message": row.hold_message, "reasons": reasons_of(row),
                 "since": _iso(row.held_at)} if row.hold_code else None,
        "correction": {"pending": row.correction, "reason": row.correction_reason}
        if row.correction else None,
        "credits_invoice": _credited_number(row),
        "source_event_id": row.source_event_id,
        "attempts": row.attempts, "next_attempt_at": _iso(row.next_attempt_at),
        "lines": _lines(row, priced),
        "notes": list(priced.notes) if priced else [],
        "payment": {"state": row.pay_state, "amount_paid": _money(row.amount_paid_minor, cur),
                    "balance": _money((row.total_minor or 0) - row.amount_paid_minor, cur),
                    "paid_at": _iso(row.paid_at),
                    "records": [{"source": p.source, "amount_paid": _money(p.amount_paid_minor,
                                 p.currency), "observed_at": _iso(p.observed_at)}
                                for p in payments]},
        "history": [
            {"at": _iso(h.at), "actor": h.actor, "action": h.action, "from": h.from_state,
             "to": h.to_state, "detail": h.detail, "request_id": h.request_id}
            for h in repo.history(session, row.id)
        ],
    }


def _lines(row: InvoiceRow, priced: Invoice | None) -> list[dict[str, Any]]:
    """The stored lines, each with its tax category and coverage from the priced invoice
    (why a line carries no tax: Z, E, AE, O; why it is at 0)."""
    cur, built = row.currency, priced.lines if priced else ()
    out = []
    for ln in row.lines:
        line = built[ln.line_no - 1] if len(built) >= ln.line_no else None
        out.append({
            "no": ln.line_no, "kind": ln.kind, "description": ln.description, "sku": ln.sku,
            "quantity": ln.quantity, "unit": ln.unit, "unit_price": ln.unit_price,
            "amount": _money(ln.amount_minor, cur), "tax_rate": ln.tax_rate,
            "tax": _money(ln.tax_minor, cur),
            "tax_category": line.tax_category.value if line else None,
            "coverage": line.coverage if line else None})
    return out


def _credited_number(row: InvoiceRow) -> str | None:
    if row.kind != "credit_note" or row.invoice_json is None:
        return None
    return repo.load_invoice(row).corrects


def job_detail(session: Session, latest: InvoiceRow) -> dict[str, Any]:
    """The newest revision in full, and every document of the job (each invoice revision and
    credit note, oldest first) under ``documents``."""
    documents = repo.job_documents(session, latest.tenant, latest.job_id)
    return {**detail(session, latest), "documents": [detail(session, d) for d in documents]}


def list_rows(session: Session, tenant: str | None = None, state: str | None = None,
              kind: str | None = None) -> Sequence[InvoiceRow]:
    query = select(InvoiceRow).order_by(InvoiceRow.id)
    if tenant:
        query = query.where(InvoiceRow.tenant == tenant)
    if state:
        query = query.where(InvoiceRow.doc_state == state)
    if kind:
        query = query.where(InvoiceRow.kind == kind)
    return session.scalars(query).all()


def find_job(session: Session, job_id: str, tenant: str | None = None) -> list[InvoiceRow]:
    """The job's invoice revisions, newest first (its credit notes are in ``job_detail``)."""
    query = select(InvoiceRow).where(InvoiceRow.job_id == job_id, InvoiceRow.kind == "invoice")
    if tenant:
        query = query.where(InvoiceRow.tenant == tenant)
    return list(session.scalars(query.order_by(InvoiceRow.revision.desc())))
