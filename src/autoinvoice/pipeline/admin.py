"""Operator actions on invoices."""

from __future__ import annotations

from autoinvoice.bootstrap import App
from autoinvoice.pipeline import views
from autoinvoice.pipeline.states import DocState
from autoinvoice.store import repo
from autoinvoice.store.models import InvoiceRow
from autoinvoice.validation import InputError


def retry(app: App, job_id: str, tenant: str | None = None, actor: str = "cli") -> str:
    """Put a failed invoice back where it failed, due now, with a fresh attempt budget."""
    now = app.clock()
    with app.sessions.begin() as session:
        rows = views.find_job(session, job_id, tenant)
        if not rows:
            raise InputError([f"job_id: no invoice for job {job_id!r}"])
        documents = repo.job_documents(session, rows[0].tenant, job_id)
        failed = [d for d in documents if d.doc_state == DocState.FAILED]
        if not failed:
            raise InputError([f"job_id: invoice for {job_id} is {rows[0].doc_state}, "
                              "not failed"])
        row = failed[-1]  # the newest failed document: an invoice revision or a credit note
        back = _state_before_failure(row)
        row.attempts, row.next_attempt_at = 0, now
        repo.record(session, row, now, "retry_requested", actor=actor, to_state=back)
        what = "credit note" if row.kind == "credit_note" else "invoice"
        return f"{row.tenant}/{job_id}: {what} rev {row.revision} back to {back}, due now"


def _state_before_failure(row: InvoiceRow) -> str:
    if row.remote_id:
        return DocState.CREATED
    if row.invoice_json:
        return DocState.READY
    return DocState.PENDING_TRIGGERS
