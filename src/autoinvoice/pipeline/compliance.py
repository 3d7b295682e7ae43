"""The pre-flight compliance check, run once on each document when it is numbered, before
anything leaves: errors hold an invoice for review (a credit note, which review does not
handle, fails visibly instead), warnings stay in its history. A customer who receives
e-invoices gets theirs made and checked here too against every rule set its format must pass
(CEN EN 16931, Peppol BIS 3, KoSIT's XRechnung; ``pipeline.documents``): a fatal finding is
an error like any other, named by its rule id."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

from sqlalchemy.orm import Session

from autoinvoice.billing.preflight import Finding, Severity, blocking, preflight
from autoinvoice.config import TenantConfig
from autoinvoice.connectors.errors import PermanentError
from autoinvoice.domain.invoice import Invoice
from autoinvoice.pipeline import documents
from autoinvoice.pipeline.holds import hold
from autoinvoice.store import repo
from autoinvoice.store.models import InvoiceRow


def cleared_for_sending(session: Session, row: InvoiceRow, document: Invoice,
                        tenant: TenantConfig, now: datetime) -> bool:
    """True when ``document`` (numbered) may go to the platform; otherwise ``row`` is on hold
    with one reason per error: ``preflight_failed`` naming the field, ``einvoice_invalid``
    naming the EN 16931, Peppol or XRechnung rule."""
    errors = _checked(session, row, document, tenant.invoice_series, now)
    reasons = [("preflight_failed", _said(f)) for f in errors]
    if not reasons:
        reasons = _einvoice(session, row, document, tenant, now)
    if reasons:
        hold(session, row, now, reasons)
        return False
    return True


def check_credit_note(session: Session, row: InvoiceRow, note: Invoice, tenant: TenantConfig,
                      now: datetime) -> None:
    """Raises ``PermanentError`` (the step fails, the number goes back with the rolled-back
    transaction) when the numbered credit note has a blocking finding."""
    errors = _checked(session, row, note, tenant.credit_notes, now)
    if errors:
        raise PermanentError("pre-flight check failed: " + "; ".join(map(_said, errors)),
                             code="preflight_failed")
    problems = _einvoice(session, row, note, tenant, now)
    if problems:
        raise PermanentError("e-invoice check failed: " + "; ".join(m for _, m in problems),
                             code=problems[0][0])


def _einvoice(session: Session, row: InvoiceRow, document: Invoice, tenant: TenantConfig,
              now: datetime) -> list[tuple[str, str]]:
    """The customer's e-invoice made, checked and stored; the reasons not to send it."""
    fmt = documents.einvoice_format(tenant, document)
    if fmt is None:
        return []
    made = documents.make_einvoice(document, fmt)
    problems = documents.einvoice_problems(document, made, fmt)
    if not problems:
        hashes = documents.store(session, row, [made], now)
        repo.record(session, row, now, "einvoice_checked", format=fmt,
                    document_hashes=hashes)
    return problems


def _checked(session: Session, row: InvoiceRow, document: Invoice, template: str,
             now: datetime) -> tuple[Finding, ...]:
    findings = preflight(document, series_template=template)
    warnings = [asdict(f) for f in findings if f.severity is Severity.WARNING]
    if warnings:
        repo.record(session, row, now, "preflight_warnings", findings=warnings)
    return blocking(findings)


def _said(finding: Finding) -> str:
    return f"{finding.field}: {finding.message} ({finding.code})"
