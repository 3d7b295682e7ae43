"""One step per document state. Each reads what it needs in a short transaction, makes its
external call outside any transaction, and records the outcome in another, so a crash at any
point leaves a row that is simply claimed again and repeats the step with the same keys."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from autoinvoice.bootstrap import App
from autoinvoice.connectors.base import IdempotencyKeys, RemoteCustomer, RemoteInvoice
from autoinvoice.documents.email import Attachment, SmtpSettings, deliver_invoice
from autoinvoice.documents.templates import load_templates
from autoinvoice.domain.invoice import Invoice
from autoinvoice.domain.money import Money
from autoinvoice.pipeline import documents
from autoinvoice.pipeline.compliance import cleared_for_sending
from autoinvoice.pipeline.holds import hold
from autoinvoice.pipeline.states import LEASE, REVISE, DocState, pay_state_for
from autoinvoice.store import repo
from autoinvoice.store.models import InvoiceRow, PaymentRow

#: Platforms keep idempotency keys about 24 h (Stripe): past this, search before creating.
KEY_TRUST = timedelta(hours=23)


@dataclass(frozen=True, slots=True)
class _CreateInput:
    tenant: str
    invoice: Invoice
    keys: IdempotencyKeys
    known_customer: str | None
    search_first: bool


def _prepare_create(app: App, row_id: int) -> _CreateInput | None:
    """In one transaction: the gap-free number (given when the invoice leaves ``ready``) and
    the pre-flight check of the numbered invoice (None: held), the idempotency base, the start
    of the create, and what the create needs to know."""
    now = app.clock()
    with app.sessions.begin() as session:
        row = session.get_one(InvoiceRow, row_id)
        if row.number is None:
            tenant = app.config.tenant(row.tenant)
            issue = repo.load_invoice(row).issue_date
            row.number = repo.next_number(session, row.tenant, tenant.invoice_series, issue)
            repo.record(session, row, now, "numbered", number=row.number)
            if not cleared_for_sending(session, row, repo.load_invoice(row), tenant, now):
                return None
        if row.idempotency_base is None:
            row.idempotency_base = IdempotencyKeys.derive(row.tenant, row.job_id, row.revision).base
        row.create_started_at = row.create_started_at or now
        return _CreateInput(
            tenant=row.tenant, invoice=repo.load_invoice(row),
            keys=IdempotencyKeys(row.idempotency_base),
            known_customer=repo.remote_customer(session, row.tenant, row.platform,
                                                row.customer_id or ""),
            search_first=now - row.create_started_at > KEY_TRUST)


def create_step(app: App, row_id: int) -> str | None:
    job = _prepare_create(app, row_id)
    if job is None:
        return None
    connector = app.connector(job.tenant)
    remote = connector.find_by_reference(job.invoice) if job.search_first else None
    customer = RemoteCustomer(job.known_customer) if job.known_customer else None
    new_customer = False
    if remote is None:
        if customer is None:
            customer, new_customer = connector.ensure_customer(job.invoice.customer, job.keys), True
        remote = connector.create_invoice(job.invoice, customer, job.keys)
    return _record_created(app, row_id, job.invoice, remote, customer, new_customer)


def _record_created(app: App, row_id: int, invoice: Invoice, remote: RemoteInvoice,
                    customer: RemoteCustomer | None, new_customer: bool) -> str | None:
    now = app.clock()
    with app.sessions.begin() as session:
        row = session.get_one(InvoiceRow, row_id)
        if customer is not None:
            if new_customer:
                repo.remember_customer(session, row.tenant, row.platform, invoice.customer.id,
                                       customer.id)
            row.remote_customer_id = customer.id
        row.remote_id, row.remote_number = remote.id, remote.number
        row.remote_url, row.remote_total_minor = remote.url, remote.total.minor
        row.attempts, row.last_error = 0, None
        repo.record(session, row, now, "created_on_platform", to_state=DocState.CREATED,
                    remote_id=remote.id, remote_total=str(remote.total))
        if row.correction:  # the job changed while it was being created
            row.next_attempt_at = now + LEASE
            return REVISE
        if remote.total != invoice.total:
            hold(session, row, now, [("total_mismatch", f"the platform computed {remote.total}, "
                                      f"we computed {invoice.total}; not sent")])
            return None
        row.next_attempt_at = now + LEASE  # still ours: this worker goes on to send it
        return DocState.CREATED


def send_step(app: App, row_id: int) -> str | None:  # sent: the next step is due later
    with app.sessions() as session:
        row = session.get_one(InvoiceRow, row_id)
        invoice, keys = repo.load_invoice(row), IdempotencyKeys(row.idempotency_base or "")
        remote = RemoteInvoice(row.remote_id or "", Money.from_minor(row.remote_total_minor or 0,
                               invoice.currency), "created", row.remote_number, row.remote_url)
        platform_done = row.platform_sent_at is not None
    connector = app.connector(row.tenant)
    # A customer who receives e-invoices gets ours by e-mail even where the platform sends
    # its own e-mail: no platform carries our EN 16931 file.
    platform_only = connector.delivers_itself and documents.einvoice_format(
        app.config.tenant(row.tenant), invoice) is None
    if not platform_done:
        remote = connector.send_invoice(remote, keys)
        if platform_only:  # one transaction records both
            return _record_sent(app, row_id, Delivery("platform"), remote=remote)
        _record_platform_sent(app, row_id, remote)
    if platform_only:
        return _record_sent(app, row_id, Delivery("platform"))
    delivery = email_document(app, row_id, invoice, remote.url)
    if connector.delivers_itself:
        delivery = dataclasses.replace(delivery, via="platform+email")
    return _record_sent(app, row_id, delivery)


def _record_platform_sent(app: App, row_id: int, remote: RemoteInvoice) -> None:
    with app.sessions.begin() as session:
        _mark_platform_sent(session, session.get_one(InvoiceRow, row_id), remote, app.clock())


def _mark_platform_sent(session: Session, row: InvoiceRow, remote: RemoteInvoice,
                        now: datetime) -> None:
    row.platform_sent_at = now
    row.remote_number, row.remote_url = remote.number, remote.url or row.remote_url
    repo.record(session, row, now, "sent_on_platform", remote_number=remote.number)


@dataclass(frozen=True, slots=True)
class Delivery:
    """How a document reached the client: by the platform, or our files by e-mail."""

    via: str
    message_id: str | None = None
    pdf_path: Path | None = None
    files: tuple[documents.Made, ...] = ()


def email_document(app: App, row_id: int, document: Invoice, pay_url: str | None) -> Delivery:
    """Our PDF of an invoice or credit note, and the customer's e-invoice (checked when it
    was numbered), kept in the documents folder and e-mailed."""
    tenant = app.config.tenant(document.tenant)
    pdf = documents.make_pdf(tenant, document, pay_url)
    extras: list[Attachment] = []
    files = [pdf]
    fmt = documents.einvoice_format(tenant, document)
    kept: dict[str, documents.Made] = {}
    if fmt is not None:  # the e-invoice checked when it was numbered
        with app.sessions() as session:
            kept = documents.stored(session, row_id)
    if fmt == "facturx":
        pdf = documents.make_facturx(document, pdf, kept["cii"])
        files = [pdf]
    elif fmt is not None:
        xml = kept[fmt]
        extras.append(Attachment(xml.filename, xml.content, xml.media_type, fmt))
    folder = app.documents_dir(document.tenant)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / pdf.filename
    path.write_bytes(pdf.content)
    for extra in extras:
        (folder / extra.filename).write_bytes(extra.content)
    smtp = app.smtp(document.tenant)
    settings = SmtpSettings(
        host=smtp.host, port=smtp.port,
        username=smtp.username.reveal() if smtp.username else None,
        password=smtp.password.reveal() if smtp.password else None,
        starttls=smtp.starttls, ssl=smtp.ssl, timeout=float(smtp.timeout_seconds))
    receipt = deliver_invoice(settings, document, sender=tenant.email or "invoices@localhost",
                              pay_url=pay_url, pdf=pdf.content, extras=extras,
                              templates=load_templates(tenant.documents.template_dir,
                                                       tenant.documents.language))
    return Delivery("email", receipt.message_id, path, tuple(files))


def mark_delivered(session: Session, row: InvoiceRow, delivery: Delivery, now: datetime
                   ) -> None:
    row.delivered_via, row.message_id, row.sent_at = delivery.via, delivery.message_id, now
    row.pdf_path = str(delivery.pdf_path) if delivery.pdf_path else None
    row.attempts, row.last_error = 0, None
    hashes = documents.store(session, row, delivery.files, now)
    repo.record(session, row, now, "delivered", to_state=DocState.SENT, via=delivery.via,
                message_id=delivery.message_id, document_hashes=hashes)


def _record_sent(app: App, row_id: int, delivery: Delivery, *,
                 remote: RemoteInvoice | None = None) -> str | None:
    now = app.clock()
    with app.sessions.begin() as session:
        row = session.get_one(InvoiceRow, row_id)
        if remote is not None:
            _mark_platform_sent(session, row, remote, now)
        mark_delivered(session, row, delivery, now)
        row.payment_checked_at = now
        if row.correction:  # the job changed while it was being sent: credit it now
            row.next_attempt_at = now + LEASE
            return REVISE
        row.next_attempt_at = now + _poll_interval(app)
        return None


def _poll_interval(app: App) -> timedelta:
    return timedelta(seconds=int(app.config.worker.payment_poll_minutes * 60))


def poll_payment_step(app: App, row_id: int) -> None:  # the next check is due later
    """The sweep that catches payments whose webhook never arrived."""
    with app.sessions() as session:
        row = session.get_one(InvoiceRow, row_id)
        tenant, remote_id = row.tenant, row.remote_id or ""
    status = app.connector(tenant).fetch_status(remote_id)
    apply_payment(app, row_id, status.amount_paid, status.paid_at, source="poll",
                  external_id=f"{remote_id}:{status.amount_paid.minor}")


def apply_payment(app: App, row_id: int, amount_paid: Money, paid_at: datetime | None, *,
                  source: str, external_id: str, actor: str = "worker") -> bool:
    """Record the platform's cumulative paid amount; returns True when something changed."""
    now = app.clock()
    with app.sessions.begin() as session:
        row = session.get_one(InvoiceRow, row_id)
        row.payment_checked_at = now
        changed = amount_paid.minor != row.amount_paid_minor
        if changed:
            before = row.pay_state
            row.amount_paid_minor = amount_paid.minor
            row.pay_state = pay_state_for(amount_paid.minor, row.total_minor or 0)
            row.paid_at = paid_at if row.pay_state in ("paid", "overpaid") else None
            session.add(PaymentRow(invoice_id=row.id, source=source, external_id=external_id,
                                   amount_paid_minor=amount_paid.minor,
                                   currency=amount_paid.currency, observed_at=now,
                                   paid_at=paid_at))
            repo.record(session, row, now, "payment", actor=actor, source=source,
                        amount_paid=str(amount_paid), pay_state=row.pay_state,
                        previous=before)
        done = row.pay_state in ("paid", "overpaid", "refunded")
        row.next_attempt_at = None if done else now + _poll_interval(app)
        if row.correction and row.doc_state == DocState.SENT:  # a change came in meanwhile
            row.next_attempt_at = now
        return changed
