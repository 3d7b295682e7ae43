"""The pre-flight compliance check, run once on each document when it is numbered, before
anything leaves: errors hold an invoice for review (a credit note, which review does not
handle, fails visibly instead), warnings stay in its history."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

from sqlalchemy.orm import Session

from autoinvoice.billing.preflight import Finding, Severity, blocking, preflight
from autoinvoice.connectors.errors import PermanentError
from autoinvoice.domain.invoice import Invoice
from autoinvoice.pipeline.holds import hold
from autoinvoice.store import repo
from autoinvoice.store.models import InvoiceRow


def cleared_for_sending(session: Session, row: InvoiceRow, document: Invoice, template: str,
                        now: datetime) -> bool:
    """True when ``document`` (numbered) may go to the platform; otherwise ``row`` is on hold
    with one ``preflight_failed`` reason per error, naming the field."""
    errors = _checked(session, row, document, template, now)
    if errors:
        hold(session, row, now, [("preflight_failed", _said(f)) for f in errors])
        return False
    return True


def check_credit_note(session: Session, row: InvoiceRow, note: Invoice, template: str,
                      now: datetime) -> None:
    """Raises ``PermanentError`` (the step fails, the number goes back with the rolled-back
    transaction) when the numbered credit note has a blocking finding."""
    errors = _checked(session, row, note, template, now)
    if errors:
        raise PermanentError("pre-flight check failed: " + "; ".join(map(_said, errors)),
                             code="preflight_failed")


def _checked(session: Session, row: InvoiceRow, document: Invoice, template: str,
             now: datetime) -> tuple[Finding, ...]:
    findings = preflight(document, series_template=template)
    warnings = [asdict(f) for f in findings if f.severity is Severity.WARNING]
    if warnings:
        repo.record(session, row, now, "preflight_warnings", findings=warnings)
    return blocking(findings)


def _said(finding: Finding) -> str:
    return f"{finding.field}: {finding.message} ({finding.code})"
