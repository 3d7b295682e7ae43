"""The invoice we build: lines are the source of truth, every total is derived from them."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from enum import StrEnum

from autoinvoice.domain.job import Address, Customer, Job
from autoinvoice.domain.money import Money, money_sum


class LineKind(StrEnum):
    LABOR = "labor"
    TRAVEL = "travel"
    PART = "part"
    FEE = "fee"
    MILEAGE = "mileage"
    SERVICE = "service"  # a flat-rate service from the pricebook


class TaxCategory(StrEnum):
    """UNCL 5305 duty/tax category codes, as EN 16931 uses them."""

    STANDARD = "S"
    ZERO = "Z"
    EXEMPT = "E"
    REVERSE_CHARGE = "AE"
    INTRA_COMMUNITY = "K"
    EXPORT = "G"
    NOT_SUBJECT = "O"


class TaxRounding(StrEnum):
    """Where tax is rounded: on each line, or once per rate on the whole document."""

    LINE = "line"
    DOCUMENT = "document"


class DocumentKind(StrEnum):
    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    """One billed item. ``amount`` is ``quantity * unit_price`` rounded once (half-up);
    ``tax`` is ``amount * tax_rate`` rounded once, per line. A line covered by a contract,
    a warranty, a kit or a flat-rate service keeps its ``list_unit_price`` (what it would
    have cost) and says why in ``coverage``, so the client sees the value."""

    kind: LineKind
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    amount: Money
    tax_rate: Decimal
    tax: Money
    sku: str | None = None
    technician: str | None = None
    tax_category: TaxCategory = TaxCategory.STANDARD
    list_unit_price: Decimal | None = None
    coverage: str | None = None

    @property
    def taxable(self) -> bool:
        return self.tax_rate > 0


@dataclass(frozen=True, slots=True)
class PaymentInstructions:
    """How the client pays by bank transfer (EN 16931 BG-16/BG-17), printed and in e-invoices."""

    iban: str | None = None
    bic: str | None = None
    bank_name: str | None = None
    account_holder: str | None = None
    note: str | None = None  # free text, e.g. "Please quote the invoice number."


@dataclass(frozen=True, slots=True)
class Seller:
    legal_name: str
    address: Address
    tax_id: str | None = None
    email: str | None = None
    phone: str | None = None
    contact_name: str | None = None  # the office person clients ask (XRechnung BT-41)
    payment: PaymentInstructions | None = None
    #: Peppol participant id "<EAS scheme>:<id>" (BT-34); None: derived from a VAT tax_id.
    peppol_id: str | None = None


@dataclass(frozen=True, slots=True)
class TaxSubtotal:
    rate: Decimal
    taxable_amount: Money
    tax: Money
    category: TaxCategory = TaxCategory.STANDARD
    exemption_reason: str | None = None


class InvoiceFlag(StrEnum):
    UNSIGNED = "unsigned"


@dataclass(frozen=True, slots=True)
class Invoice:
    tenant: str
    job_id: str
    revision: int
    currency: str
    seller: Seller
    customer: Customer
    job: Job
    lines: tuple[InvoiceLine, ...]
    issue_date: date
    due_date: date
    payment_terms_days: int
    number: str | None = None
    flags: frozenset[InvoiceFlag] = field(default_factory=frozenset)
    kind: DocumentKind = DocumentKind.INVOICE
    corrects: str | None = None  # a credit note: the number of the invoice it credits
    notes: tuple[str, ...] = ()  # legal notes printed on the document (e.g. reverse charge)
    tax_rounding: TaxRounding = TaxRounding.LINE
    supply_date: date | None = None  # the day the service was completed
    #: Why a category carries no tax, by category code (EN 16931 BT-120), e.g. reverse charge.
    exemption_reasons: tuple[tuple[TaxCategory, str], ...] = ()
    #: The buyer's routing reference (EN 16931 BT-10), e.g. a German Leitweg-ID; else the PO.
    buyer_reference: str | None = None
    #: The buyer's Peppol participant id (BT-49); None: derived from the buyer's VAT id.
    buyer_peppol_id: str | None = None

    @property
    def po_number(self) -> str | None:
        return self.job.po_number

    @property
    def subtotal(self) -> Money:
        return money_sum([line.amount for line in self.lines], self.currency)

    @property
    def tax_total(self) -> Money:
        if self.tax_rounding is TaxRounding.DOCUMENT:
            return money_sum([t.tax for t in self.tax_breakdown()], self.currency)
        return money_sum([line.tax for line in self.lines], self.currency)

    @property
    def total(self) -> Money:
        return self.subtotal + self.tax_total

    def tax_breakdown(self) -> tuple[TaxSubtotal, ...]:
        """One entry per (category, rate), ordered by rate then category. Its taxes sum to
        ``tax_total``: per line, the lines' rounded taxes add up; per document, the tax of a
        group is its taxable amount times the rate, rounded once."""
        groups = sorted({(line.tax_rate, line.tax_category) for line in self.lines})
        reasons = dict(self.exemption_reasons)
        out = []
        for rate, category in groups:
            members = [x for x in self.lines if (x.tax_rate, x.tax_category) == (rate, category)]
            base = money_sum([x.amount for x in members], self.currency)
            tax = (base.times(rate) if self.tax_rounding is TaxRounding.DOCUMENT
                   else money_sum([x.tax for x in members], self.currency))
            out.append(TaxSubtotal(rate, base, tax, category, reasons.get(category)))
        return tuple(out)

    @property
    def is_credit_note(self) -> bool:
        return self.kind is DocumentKind.CREDIT_NOTE

    def with_number(self, number: str) -> Invoice:
        return replace(self, number=number)

    @property
    def reference(self) -> str:
        """Our reference on the platform: the job id (unique per tenant)."""
        return self.job_id
