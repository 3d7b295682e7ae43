"""The files a document is sent as: our PDF, and the structured e-invoice its customer gets
(``customers.<id>.einvoice_format``: ubl, cii, facturx, xrechnung (CII) or xrechnung-ubl; pdf
or unset: none).

The e-invoice is made when the document is numbered, before anything leaves, and checked
against every official rule set that applies to its format (``en16931.FORMAT_RULES``: CEN
EN 16931; Peppol BIS 3 for UBL; KoSIT's XRechnung rules for XRechnung): a fatal finding
holds the invoice with the rule ids and messages. The PDF is made when the document is
e-mailed (it carries the payment link, known only after the platform create); for facturx
the checked CII is embedded in it as PDF/A-3. Every file is stored byte for byte with its
SHA-256 (``documents`` table) and the hash goes into the audit log.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from autoinvoice.config import TenantConfig
from autoinvoice.documents import en16931
from autoinvoice.documents.cii import to_cii
from autoinvoice.documents.en16931 import Syntax
from autoinvoice.documents.formats import file_stem
from autoinvoice.documents.pdf import render_invoice_pdf
from autoinvoice.documents.ubl import to_ubl
from autoinvoice.domain.invoice import Invoice
from autoinvoice.store.models import DocumentRow, InvoiceRow

__all__ = ["EINVOICE_FORMATS", "FORMATS", "Made", "einvoice_format", "einvoice_problems",
           "make", "make_einvoice", "make_pdf", "store", "stored", "write"]

FORMATS = ("pdf", "ubl", "cii", "facturx", "xrechnung", "xrechnung-ubl")
EINVOICE_FORMATS = FORMATS[1:]
XML = "application/xml"
PDF = "application/pdf"
#: SaxonC's runtime is not known to be safe from several Python threads: one at a time.
_SAXON = threading.Lock()


@dataclass(frozen=True, slots=True)
class Made:
    """One file: what it is, what it is called, its bytes."""

    format: str
    filename: str
    media_type: str
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


_EXTENSIONS = {"pdf": "pdf", "ubl": "ubl.xml", "cii": "cii.xml", "xrechnung": "xrechnung.xml",
               "xrechnung-ubl": "xrechnung-ubl.xml", "facturx": "facturx.pdf"}


def output_name(invoice: Invoice, fmt: str) -> str:
    """``RE-2026-0001.xrechnung.xml``: one distinct name per format, for ``documents``."""
    return f"{file_stem(invoice.number or 'DRAFT-' + invoice.job_id)}.{_EXTENSIONS[fmt]}"


def einvoice_format(tenant: TenantConfig, invoice: Invoice) -> str | None:
    """The e-invoice the invoiced customer needs, or None (the PDF alone)."""
    customer = tenant.customers.get(invoice.customer.id)
    chosen = customer.einvoice_format if customer else None
    return None if chosen in (None, "pdf") else chosen


# --------------------------------------------------------------------------- making
def make_pdf(tenant: TenantConfig, invoice: Invoice, pay_url: str | None) -> Made:
    """The PDF in the tenant's language, templates and logo."""
    style = tenant.documents
    content = render_invoice_pdf(invoice, pay_url=pay_url, logo_png=_logo(style.logo),
                                 language=style.language, template_dir=style.template_dir)
    return Made("pdf", f"{file_stem(invoice.number or invoice.job_id)}.pdf", PDF, content)


@cache
def _logo(path: Path | None) -> bytes | None:
    return path.read_bytes() if path is not None else None


def make_einvoice(invoice: Invoice, fmt: str) -> Made:
    """The XML of ``fmt`` (for facturx: the CII that goes inside the PDF)."""
    name = file_stem(invoice.number or invoice.job_id)
    if fmt == "ubl":
        return Made("ubl", f"{name}.ubl.xml", XML, to_ubl(invoice))
    if fmt in ("cii", "facturx"):
        return Made("cii", f"{name}.cii.xml", XML, to_cii(invoice))
    if fmt in ("xrechnung", "xrechnung-ubl"):
        from autoinvoice.documents.xrechnung import to_xrechnung

        syntax = Syntax.UBL if fmt == "xrechnung-ubl" else Syntax.CII
        return Made(fmt, f"{name}.{_EXTENSIONS[fmt]}", XML, to_xrechnung(invoice, syntax))
    raise ValueError(f"unknown e-invoice format {fmt!r}; known: {', '.join(EINVOICE_FORMATS)}")


def make_facturx(invoice: Invoice, pdf: Made, cii: Made) -> Made:
    """The PDF with ``cii`` embedded, as PDF/A-3 (Factur-X / ZUGFeRD, EN 16931 profile)."""
    from autoinvoice.documents.facturx import to_facturx

    made = Made("facturx", pdf.filename, PDF, to_facturx(invoice, pdf.content))
    if facturx_xml(made.content) != cii.content:  # the one checked is the one embedded
        raise RuntimeError(f"Factur-X of {invoice.number}: embedded XML differs from the "
                           "checked CII")
    return made


def facturx_xml(pdf: bytes) -> bytes | None:
    """The XML embedded in a Factur-X PDF (None: there is none)."""
    from facturx import get_xml_from_pdf  # type: ignore[import-untyped]

    _, xml = get_xml_from_pdf(pdf, check_xsd=False)
    return xml or None


def make(tenant: TenantConfig, invoice: Invoice, fmt: str, pay_url: str | None) -> Made:
    """Any one format, on demand (``autoinvoice documents``)."""
    if fmt == "pdf":
        return make_pdf(tenant, invoice, pay_url)
    if fmt == "facturx":
        made = make_facturx(invoice, make_pdf(tenant, invoice, pay_url),
                            make_einvoice(invoice, "cii"))
        return Made("facturx", made.filename.removesuffix(".pdf") + ".facturx.pdf", PDF,
                    made.content)
    return make_einvoice(invoice, fmt)


@dataclass(frozen=True, slots=True)
class Written:
    """One file ``write`` wrote: where, whether it is the stored copy, what the check said."""

    path: Path
    as_sent: bool
    problems: list[tuple[str, str]]


def write(tenant: TenantConfig, invoice: Invoice, formats: Sequence[str], out: Path, *,
          pay_url: str | None, kept: dict[str, Made] | None = None) -> list[Written]:
    """Each format into ``out`` under ``output_name``: the stored copy (``kept``, as sent)
    where there is one, else made now; each e-invoice checked (``einvoice_problems``)."""
    out.mkdir(parents=True, exist_ok=True)
    kept = kept or {}
    written = []
    for fmt in dict.fromkeys(formats):
        made = kept.get(fmt) or make(tenant, invoice, fmt, pay_url)
        path = out / output_name(invoice, fmt)
        path.write_bytes(made.content)
        written.append(Written(path, fmt in kept, einvoice_problems(invoice, made, fmt)))
    return written


# --------------------------------------------------------------------------- checking
def einvoice_problems(invoice: Invoice, made: Made, fmt: str,
                      rules_dir: Path | None = None) -> list[tuple[str, str]]:
    """``(code, message)`` for each reason not to send ``made``: the fatal findings of every
    rule set its format must pass (message led by the rule id), the data the rules cannot
    judge (``xrechnung_problems``), or the rules being unavailable. A Factur-X PDF is checked
    by the CII inside it; a plain PDF has nothing to check."""
    if fmt == "pdf":
        return []
    from autoinvoice.documents.xrechnung import xrechnung_problems

    problems = [("einvoice_invalid", f"[{rule}] {message}")
                for rule, message in (xrechnung_problems(invoice)
                                      if fmt in ("xrechnung", "xrechnung-ubl") else [])]
    xml = facturx_xml(made.content) if fmt == "facturx" and made.media_type == PDF \
        else made.content
    if xml is None:
        return [*problems, ("einvoice_invalid", "the Factur-X PDF carries no XML")]
    with _SAXON:
        result = en16931.validate_format(xml, fmt, rules_dir)
    if not result.available:
        return [*problems, ("einvoice_unchecked",
                            f"{result.reason}; set {en16931.RULES_DIR_ENV} to the EN 16931 "
                            "validation artefacts so e-invoices can be checked before sending")]
    return problems + [("einvoice_invalid", f"[{f.rule}] {f.message}") for f in result.fatal]


# --------------------------------------------------------------------------- storing
def store(session: Session, row: InvoiceRow, made: Sequence[Made], now: datetime
          ) -> dict[str, str]:
    """Keep ``made`` with the document (replacing an earlier file of the same format);
    returns their hashes by file name, for the caller's audit entry."""
    for item in made:
        existing = session.scalar(select(DocumentRow).where(
            DocumentRow.invoice_id == row.id, DocumentRow.format == item.format))
        if existing is None:
            existing = DocumentRow(invoice_id=row.id, tenant=row.tenant, format=item.format)
            session.add(existing)
        existing.filename, existing.media_type = item.filename, item.media_type
        existing.content, existing.size = item.content, len(item.content)
        existing.sha256, existing.created_at = item.sha256, now
    return {item.filename: item.sha256 for item in made}


def stored(session: Session, invoice_id: int) -> dict[str, Made]:
    """The files kept for a document, by format."""
    rows = session.scalars(select(DocumentRow).where(DocumentRow.invoice_id == invoice_id))
    return {r.format: Made(r.format, r.filename, r.media_type, r.content) for r in rows}
