"""Is a tenant's template folder usable? ``check_templates(template_dir, language)``.

For the app to refuse to start on a broken template rather than fail on the first invoice:
it loads the templates afresh (not from the cache) and renders sample documents that take
every branch the built-in templates have (a full invoice with bank details, PO, buyer reference
and pay link; a bare draft without them; a credit note), so a syntax error, an unknown label
key or placeholder and an unknown template variable are all found. Each problem names its file.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from autoinvoice.documents.pdf import render_with
from autoinvoice.documents.templates import TemplateError, load_templates, stray_files
from autoinvoice.domain.invoice import (
    DocumentKind,
    Invoice,
    InvoiceFlag,
    InvoiceLine,
    LineKind,
    PaymentInstructions,
    Seller,
)
from autoinvoice.domain.job import Address, Asset, Customer, Job, Signature, Site, Technician
from autoinvoice.domain.money import Money

__all__ = ["TemplateError", "check_templates"]


def check_templates(template_dir: Path | None, language: str) -> list[str]:
    """The problems with ``template_dir``'s templates for ``language``; empty when it is fine."""
    problems = stray_files(template_dir)
    try:
        templates = load_templates.__wrapped__(template_dir, language)
        for invoice, pay_url in _samples():
            render_with(templates, invoice, pay_url=pay_url)
    except TemplateError as exc:
        problems.append(str(exc))
    return problems


def _samples() -> list[tuple[Invoice, str | None]]:
    full = _full_invoice()
    bare_seller = Seller("Sample Compressors Ltd", Address("1 High St", "Leeds", "GB"))
    bare_job = replace(full.job, site=None, asset=None, technicians=(), po_number=None,
                       contract_id=None, notes=None, signature=None, summary="")
    bare = replace(full, seller=bare_seller, job=bare_job, number=None, payment_terms_days=0,
                   buyer_reference=None, flags=frozenset({InvoiceFlag.UNSIGNED}))
    credit = replace(full, kind=DocumentKind.CREDIT_NOTE, number="CN-1", corrects="INV-1")
    bank_only = replace(full.seller, payment=PaymentInstructions(iban="DE89370400440532013000"))
    return [(full, "https://pay.example/i/INV-1"), (bare, None), (credit, None),
            (replace(full, seller=bank_only), None)]


def _full_invoice() -> Invoice:
    address = Address("Königstraße 5", "Nürnberg", "DE", "90402")
    customer = Customer("C-1", "Sample Brewery GmbH", "ap@brewery.example", address,
                        vat_id="DE811907980", tax_exempt_certificate="EX-1")
    payment = PaymentInstructions("DE89370400440532013000", "COBADEFFXXX", "Commerzbank",
                                  "Sample Service GmbH", "Please quote the invoice number.")
    seller = Seller("Sample Service GmbH", address, "DE123456789", "billing@sample.example",
                    "+49 911 123456", "A. Schmidt", payment)
    when = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    job = Job("WO-1", "repair", customer, when, "Replaced valve",
              Site("S-1", "Plant 2", address), Asset("rotary_screw", "Make", "Model", "SN-1", 100),
              (Technician("T-1", "R. Tech", "senior"),), po_number="PO-1", contract_id="K-1",
              notes="Checked.", signature=Signature("Client Name", when, "on_device", "Manager"))
    amount = Money(Decimal("100.00"), "EUR")
    line = InvoiceLine(LineKind.LABOR, "Labor", Decimal(1), "h", Decimal(100), amount,
                       Decimal("0.19"), amount.times(Decimal("0.19")), list_unit_price=Decimal(120),
                       coverage="covered by contract K-1")
    return Invoice("sample", job.id, 1, "EUR", seller, customer, job, (line,), date(2026, 11, 21),
                   date(2026, 12, 21), 30, "INV-1", notes=("A legal note.",),
                   buyer_reference="04011000-12345-67")
