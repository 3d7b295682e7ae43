"""The database schema. Money is stored as integer minor units plus currency; decimals that
are not money (quantities, rates) as exact strings; timestamps as UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import DateTime, TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class EventRow(Base):
    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("tenant", "event_id"),
                      Index("ix_events_job", "tenant", "job_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(100))
    event_id: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(50))
    job_id: Mapped[str] = mapped_column(String(200))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    payload: Mapped[str] = mapped_column(Text)


class InvoiceRow(Base):
    """One document of a job: an invoice revision, or the credit note (``kind``
    ``credit_note``, same ``revision``, ``corrects_id`` = the credited invoice row) that
    cancels a sent one. Both go through the worker alike."""

    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("tenant", "job_id", "kind", "revision", name="uq_invoices_document"),
        Index("ix_invoices_due", "doc_state", "next_attempt_at"),
        Index("ix_invoices_remote", "platform", "remote_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(100))
    job_id: Mapped[str] = mapped_column(String(200))
    revision: Mapped[int] = mapped_column(Integer, default=1)
    kind: Mapped[str] = mapped_column(String(20), default="invoice", server_default="invoice")
    corrects_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"))
    #: the completion event this revision was built from
    source_event_id: Mapped[str | None] = mapped_column(String(200))
    #: a correction waiting for the worker: "revise" (the job changed) or "void" (rejected)
    correction: Mapped[str | None] = mapped_column(String(20))
    correction_reason: Mapped[str | None] = mapped_column(Text)
    doc_state: Mapped[str] = mapped_column(String(30))
    pay_state: Mapped[str] = mapped_column(String(30), default="unpaid")
    flags: Mapped[list[str]] = mapped_column(JSON, default=list)
    customer_id: Mapped[str | None] = mapped_column(String(200))
    customer_name: Mapped[str | None] = mapped_column(String(300))
    platform: Mapped[str] = mapped_column(String(50))
    number: Mapped[str | None] = mapped_column(String(100))
    currency: Mapped[str | None] = mapped_column(String(3))
    subtotal_minor: Mapped[int | None] = mapped_column(BigInteger)
    tax_minor: Mapped[int | None] = mapped_column(BigInteger)
    total_minor: Mapped[int | None] = mapped_column(BigInteger)
    amount_paid_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    issue_date: Mapped[str | None] = mapped_column(String(10))
    due_date: Mapped[str | None] = mapped_column(String(10))
    invoice_json: Mapped[str | None] = mapped_column(Text)
    idempotency_base: Mapped[str | None] = mapped_column(String(100))
    remote_customer_id: Mapped[str | None] = mapped_column(String(200))
    remote_id: Mapped[str | None] = mapped_column(String(200))
    remote_number: Mapped[str | None] = mapped_column(String(100))
    remote_url: Mapped[str | None] = mapped_column(Text)
    remote_total_minor: Mapped[int | None] = mapped_column(BigInteger)
    create_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    platform_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_via: Mapped[str | None] = mapped_column(String(30))
    message_id: Mapped[str | None] = mapped_column(String(300))
    pdf_path: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    hold_code: Mapped[str | None] = mapped_column(String(50))
    hold_message: Mapped[str | None] = mapped_column(Text)
    #: every reason it is held: [{"code": …, "message": …}]
    hold_reasons: Mapped[list[dict[str, str]] | None] = mapped_column(JSON)
    held_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    signature_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    payment_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    lines: Mapped[list[LineRow]] = relationship(
        back_populates="invoice", order_by="LineRow.line_no", cascade="all, delete-orphan")


class LineRow(Base):
    __tablename__ = "invoice_lines"
    __table_args__ = (UniqueConstraint("invoice_id", "line_no"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    line_no: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(Text)
    sku: Mapped[str | None] = mapped_column(String(100))
    quantity: Mapped[str] = mapped_column(String(40))
    unit: Mapped[str] = mapped_column(String(20))
    unit_price: Mapped[str] = mapped_column(String(40))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    tax_rate: Mapped[str] = mapped_column(String(20))
    tax_minor: Mapped[int] = mapped_column(BigInteger)

    invoice: Mapped[InvoiceRow] = relationship(back_populates="lines")


class HistoryRow(Base):
    """Append-only record of every state change: who/what, when, from, to, details. Each entry
    is also the tenant's audit entry: ``seq`` (gap-free per tenant), ``prev_hash`` and
    ``hash`` chain it to the tenant's previous entry (see ``store/audit.py``)."""

    __tablename__ = "history"
    __table_args__ = (Index("ix_history_invoice", "invoice_id"),
                      Index("uq_history_tenant_seq", "tenant", "seq", unique=True))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(100))
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(50))
    from_state: Mapped[str | None] = mapped_column(String(30))
    to_state: Mapped[str | None] = mapped_column(String(30))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    request_id: Mapped[str | None] = mapped_column(String(200))
    seq: Mapped[int | None] = mapped_column(Integer)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))


class AuditHeadRow(Base):
    """The head of a tenant's audit chain: its last ``seq`` and ``hash``. Appending locks this
    row (``FOR UPDATE`` on PostgreSQL), so one tenant's entries are chained one at a time; and
    ``verify`` compares it with the last entry, so deleting the newest entries shows too."""

    __tablename__ = "audit_heads"

    tenant: Mapped[str] = mapped_column(String(100), primary_key=True)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))


class NumberSeriesRow(Base):
    __tablename__ = "number_series"
    __table_args__ = (UniqueConstraint("tenant", "series"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(100))
    series: Mapped[str] = mapped_column(String(100))
    last_seq: Mapped[int] = mapped_column(Integer, default=0)


class DocumentRow(Base):
    """A file made for one revision or credit note (its PDF, its e-invoice), kept byte for
    byte as it was sent; ``sha256`` is also written into the audit log when it is stored."""

    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("invoice_id", "format"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"))
    tenant: Mapped[str] = mapped_column(String(100))
    format: Mapped[str] = mapped_column(String(20))  # pdf, ubl, cii, facturx, xrechnung
    filename: Mapped[str] = mapped_column(String(200))
    media_type: Mapped[str] = mapped_column(String(100))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ConfigVersionRow(Base):
    """A tenant's configuration as an invoice was priced with it (secrets only as references),
    kept once per version: the audit pack shows the exact rules behind each invoice."""

    __tablename__ = "config_versions"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(100))
    snapshot: Mapped[str] = mapped_column(Text)
    first_used_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PlatformExchangeRow(Base):
    """The HTTP requests and responses of one worker step on one document, secrets masked:
    what the audit pack shows an auditor of the conversation with the platform."""

    __tablename__ = "platform_exchanges"
    __table_args__ = (Index("ix_platform_exchanges_invoice", "invoice_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"))
    step: Mapped[str] = mapped_column(String(30))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    exchanges: Mapped[list[dict[str, Any]]] = mapped_column(JSON)


class PaymentRow(Base):
    __tablename__ = "payments"
    __table_args__ = (UniqueConstraint("source", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"))
    source: Mapped[str] = mapped_column(String(50))
    external_id: Mapped[str] = mapped_column(String(200))
    amount_paid_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebhookEventRow(Base):
    __tablename__ = "webhook_events"
    __table_args__ = (UniqueConstraint("platform", "tenant", "event_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(50))
    tenant: Mapped[str] = mapped_column(String(100))
    event_id: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(100))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CustomerMapRow(Base):
    __tablename__ = "customer_map"
    __table_args__ = (UniqueConstraint("tenant", "platform", "customer_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(100))
    platform: Mapped[str] = mapped_column(String(50))
    customer_id: Mapped[str] = mapped_column(String(200))
    remote_id: Mapped[str] = mapped_column(String(200))


class OAuthConnectionRow(Base):
    """One tenant's OAuth2 connection to one platform. ``secret`` is the token set encrypted
    with ``AUTOINVOICE_SECRET_KEY`` (never stored in clear); ``values`` are what the
    connection is (realm id, tenant id…), not secret. ``version`` grows with every change of
    the tokens, so a worker can tell that another one refreshed meanwhile."""

    __tablename__ = "oauth_connections"
    __table_args__ = (UniqueConstraint("tenant", "platform", name="uq_oauth_connections"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(100))
    platform: Mapped[str] = mapped_column(String(50))
    secret: Mapped[str] = mapped_column(Text)
    values: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    access_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    refresh_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    consent_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    connected_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_refresh_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    needs_reconnect: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=1)
