"""The invoice register for a period (by issue date), as CSV or JSON.

CSV is opened by spreadsheets, which run a cell that starts with ``=``, ``+``, ``-`` or ``@``
(or a tab or carriage return) as a formula. Every text cell (customer, number, ids, states…)
that starts with one of these gets a leading single quote, as the OWASP "CSV Injection" page
advises. Money columns are not text: we write them ourselves from integer minor units
(``-120.00`` for a negative amount), so they stay plain numbers a spreadsheet can add up.
JSON is for programs and carries every value unchanged, amounts as strings.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import date
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from autoinvoice.domain.money import Money
from autoinvoice.store.models import InvoiceRow

COLUMNS = ["number", "kind", "tenant", "job_id", "revision", "customer", "issue_date",
           "due_date", "currency", "subtotal", "tax", "total", "state", "payment_state",
           "amount_paid", "remote_id"]
MONEY_COLUMNS = frozenset({"subtotal", "tax", "total", "amount_paid"})
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def register_rows(session: Session, start: date, end: date, tenant: str | None = None
                  ) -> list[dict[str, Any]]:
    """Every invoice and credit note issued from ``start`` to ``end`` (both included)."""
    query = (select(InvoiceRow)
             .where(InvoiceRow.issue_date >= start.isoformat(),
                    InvoiceRow.issue_date <= end.isoformat())
             .order_by(InvoiceRow.tenant, InvoiceRow.issue_date, InvoiceRow.id))
    if tenant:
        query = query.where(InvoiceRow.tenant == tenant)
    return [register_row(r) for r in session.scalars(query)]


def register_row(row: InvoiceRow) -> dict[str, Any]:
    cur = row.currency
    return {
        "number": row.number, "kind": row.kind, "tenant": row.tenant, "job_id": row.job_id,
        "revision": row.revision, "customer": row.customer_name,
        "issue_date": row.issue_date, "due_date": row.due_date, "currency": cur,
        "subtotal": _money(row.subtotal_minor, cur), "tax": _money(row.tax_minor, cur),
        "total": _money(row.total_minor, cur), "state": row.doc_state,
        "payment_state": row.pay_state, "amount_paid": _money(row.amount_paid_minor, cur),
        "remote_id": row.remote_id,
    }


def _money(minor: int | None, currency: str | None) -> str | None:
    if minor is None or currency is None:
        return None
    return str(Money.from_minor(minor, currency).amount)


def neutralise(value: str) -> str:
    """A text cell a spreadsheet will show as text, never run as a formula."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def csv_cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if column in MONEY_COLUMNS or isinstance(value, int):
        return str(value)  # our own numbers, never user text
    return neutralise(str(value))


def write_csv(rows: Sequence[dict[str, Any]], out: IO[str]) -> None:
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([csv_cell(c, row[c]) for c in COLUMNS])
