"""Queries and writes the pipeline needs, each small and named."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from autoinvoice.connectors import journal
from autoinvoice.domain.invoice import Invoice
from autoinvoice.store import audit
from autoinvoice.store.codec import from_jsonable, to_jsonable
from autoinvoice.store.db import dialect_insert
from autoinvoice.store.models import (
    ConfigVersionRow,
    CustomerMapRow,
    EventRow,
    HistoryRow,
    InvoiceRow,
    LineRow,
    NumberSeriesRow,
    PlatformExchangeRow,
)


def find_event(session: Session, tenant: str, event_id: str) -> EventRow | None:
    return session.scalar(
        select(EventRow).where(EventRow.tenant == tenant, EventRow.event_id == event_id))


def job_events(session: Session, tenant: str, job_id: str) -> Sequence[EventRow]:
    return session.scalars(
        select(EventRow).where(EventRow.tenant == tenant, EventRow.job_id == job_id)
        .order_by(EventRow.occurred_at, EventRow.id)).all()


def latest_invoice(session: Session, tenant: str, job_id: str, *, lock: bool = False
                   ) -> InvoiceRow | None:
    """The newest invoice revision of a job (credit notes aside); ``lock`` takes its row lock
    (PostgreSQL), so intake and a worker's build do not interleave on it."""
    query = (select(InvoiceRow).where(InvoiceRow.tenant == tenant, InvoiceRow.job_id == job_id,
                                      InvoiceRow.kind == "invoice")
             .order_by(InvoiceRow.revision.desc()).limit(1))
    return session.scalar(query.with_for_update() if lock else query)


def credit_note_of(session: Session, invoice_id: int) -> InvoiceRow | None:
    return session.scalar(select(InvoiceRow).where(InvoiceRow.corrects_id == invoice_id,
                                                   InvoiceRow.kind == "credit_note"))


def job_documents(session: Session, tenant: str, job_id: str) -> Sequence[InvoiceRow]:
    """Every invoice revision and credit note of a job, oldest first."""
    return session.scalars(
        select(InvoiceRow).where(InvoiceRow.tenant == tenant, InvoiceRow.job_id == job_id)
        .order_by(InvoiceRow.revision, InvoiceRow.kind.desc())).all()


def invoice_by_remote(session: Session, tenant: str, platform: str, remote_id: str
                      ) -> InvoiceRow | None:
    return session.scalar(select(InvoiceRow).where(
        InvoiceRow.tenant == tenant, InvoiceRow.platform == platform,
        InvoiceRow.remote_id == remote_id, InvoiceRow.kind == "invoice"))


def record(session: Session, row: InvoiceRow, now: datetime, action: str, *,
           actor: str = "worker", to_state: str | None = None, request_id: str | None = None,
           **detail: Any) -> None:
    """Append a history entry, chained onto the tenant's audit log (``store/audit.py``);
    move the document state when ``to_state`` is given. The platform requests and responses
    journaled since the last entry are stored with it, their hash and request ids in it."""
    before = row.doc_state
    if to_state is not None:
        row.doc_state = to_state
    row.updated_at = now
    if row.id is None:
        session.flush()
    exchanges = journal.drain()  # the platform calls that led to this outcome
    if exchanges:
        session.add(PlatformExchangeRow(invoice_id=row.id, step=action, at=now,
                                        exchanges=exchanges))
        detail = {**detail, **audit.exchanges_detail(exchanges)}
    audit.append(session, HistoryRow(
        tenant=row.tenant, invoice_id=row.id, at=now, actor=actor, action=action,
        from_state=before if to_state else None, to_state=to_state,
        detail=to_jsonable(detail), request_id=request_id), row)


def remember_config(session: Session, tenant: str, version: tuple[str, str],
                    now: datetime) -> bool:
    """Keep the configuration snapshot ``version`` = (sha256, text) once; True when it was
    stored already."""
    sha, snapshot = version
    if session.get(ConfigVersionRow, sha) is not None:
        return True
    session.execute(dialect_insert(session)(ConfigVersionRow).values(  # another worker may race us
        sha256=sha, tenant=tenant, snapshot=snapshot, first_used_at=now,
    ).on_conflict_do_nothing(index_elements=["sha256"]))
    return False


def history(session: Session, invoice_id: int) -> Sequence[HistoryRow]:
    return session.scalars(
        select(HistoryRow).where(HistoryRow.invoice_id == invoice_id).order_by(HistoryRow.id)
    ).all()


def series_key(template: str, issue: date) -> str:
    """The series an invoice number belongs to: the template with its date parts filled."""
    return re.sub(r"\{seq[^}]*\}", "#", template).format(year=issue.year, month=issue.month)


def next_number(session: Session, tenant: str, template: str, issue: date) -> str:
    """The next number of the series, gap-free: the counter row is incremented in the
    caller's transaction, so a rollback gives the number back and nothing skips."""
    key = series_key(template, issue)
    _ensure_series(session, tenant, key)
    seq = session.execute(
        update(NumberSeriesRow)
        .where(NumberSeriesRow.tenant == tenant, NumberSeriesRow.series == key)
        .values(last_seq=NumberSeriesRow.last_seq + 1)
        .returning(NumberSeriesRow.last_seq)).scalar_one()
    return template.format(year=issue.year, month=issue.month, seq=seq)


def _ensure_series(session: Session, tenant: str, key: str) -> None:
    """Create the counter row if missing, without racing another worker doing the same."""
    session.execute(dialect_insert(session)(NumberSeriesRow)
                    .values(tenant=tenant, series=key, last_seq=0).on_conflict_do_nothing())


def store_invoice(session: Session, row: InvoiceRow, invoice: Invoice) -> None:
    """Snapshot and lines of a built invoice onto its row (lines are the source of truth)."""
    row.currency = invoice.currency
    row.subtotal_minor = invoice.subtotal.minor
    row.tax_minor = invoice.tax_total.minor
    row.total_minor = invoice.total.minor
    row.issue_date = invoice.issue_date.isoformat()
    row.due_date = invoice.due_date.isoformat()
    row.customer_id, row.customer_name = invoice.customer.id, invoice.customer.name
    row.flags = sorted(invoice.flags)
    row.invoice_json = json.dumps(to_jsonable(invoice), ensure_ascii=False)
    # A revision is built once, so its lines are only ever added (no load of the collection).
    session.add_all([
        LineRow(invoice_id=row.id, line_no=i, kind=line.kind.value,
                description=line.description, sku=line.sku, quantity=str(line.quantity),
                unit=line.unit, unit_price=str(line.unit_price), amount_minor=line.amount.minor,
                tax_rate=str(line.tax_rate), tax_minor=line.tax.minor)
        for i, line in enumerate(invoice.lines, start=1)
    ])


def load_invoice(row: InvoiceRow) -> Invoice:
    if row.invoice_json is None:
        raise LookupError(f"invoice for job {row.job_id} has not been built yet")
    invoice = _decode_invoice(row.invoice_json)
    return invoice.with_number(row.number) if row.number else invoice


@lru_cache(maxsize=512)
def _decode_invoice(snapshot: str) -> Invoice:
    # Each step of one invoice reads the same snapshot; Invoice is frozen, so sharing is safe.
    invoice: Invoice = from_jsonable(Invoice, json.loads(snapshot))
    return invoice


def remote_customer(session: Session, tenant: str, platform: str, customer_id: str
                    ) -> str | None:
    return session.scalar(select(CustomerMapRow.remote_id).where(
        CustomerMapRow.tenant == tenant, CustomerMapRow.platform == platform,
        CustomerMapRow.customer_id == customer_id))


def remember_customer(session: Session, tenant: str, platform: str, customer_id: str,
                      remote_id: str) -> None:
    if remote_customer(session, tenant, platform, customer_id) is None:
        session.add(CustomerMapRow(tenant=tenant, platform=platform, customer_id=customer_id,
                                   remote_id=remote_id))


def claim_due(session: Session, states: Sequence[str], due_by: datetime,
              lease_until: datetime, limit: int) -> list[tuple[int, str, str, str | None]]:
    """(id, document state, kind, pending correction) of rows due by ``due_by``, leased to this
    worker: ``next_attempt_at`` moves to the lease's end, so a crashed worker's rows come back
    by themselves. SKIP LOCKED on PostgreSQL."""
    rows = [(row_id, state, kind, correction)
            for row_id, state, kind, correction in session.execute(
        select(InvoiceRow.id, InvoiceRow.doc_state, InvoiceRow.kind, InvoiceRow.correction)
        .where(InvoiceRow.doc_state.in_(states), InvoiceRow.next_attempt_at <= due_by)
        .order_by(InvoiceRow.next_attempt_at).limit(limit)
        .with_for_update(skip_locked=True))]
    if rows:
        session.execute(update(InvoiceRow).where(InvoiceRow.id.in_([r[0] for r in rows]))
                        .values(next_attempt_at=lease_until))
    return rows


def count_by_state(session: Session) -> dict[str, int]:
    rows = session.execute(select(InvoiceRow.doc_state, func.count()).group_by(
        InvoiceRow.doc_state))
    return {state: n for state, n in rows}
