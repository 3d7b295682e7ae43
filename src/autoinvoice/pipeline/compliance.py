"""The pre-flight compliance check, run once on each document when it is numbered, before
anything leaves: errors hold it for review, warnings stay in its history."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

from sqlalchemy.orm import Session

from autoinvoice.billing.preflight import Severity, blocking, preflight
from autoinvoice.domain.invoice import Invoice
from autoinvoice.pipeline.holds import hold
from autoinvoice.store import repo
from autoinvoice.store.models import InvoiceRow


def cleared_for_sending(session: Session, row: InvoiceRow, document: Invoice, template: str,
                        now: datetime) -> bool:
    """True when ``document`` (numbered) may go to the platform; otherwise ``row`` is on hold
    with one ``preflight_failed`` reason per error, naming the field."""
    findings = preflight(document, series_template=template)
    warnings = [asdict(f) for f in findings if f.severity is Severity.WARNING]
    if warnings:
        repo.record(session, row, now, "preflight_warnings", findings=warnings)
    errors = blocking(findings)
    if errors:
        hold(session, row, now, [("preflight_failed", f"{f.field}: {f.message} ({f.code})")
                                 for f in errors])
        return False
    return True
