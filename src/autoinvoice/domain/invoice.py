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


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    """One billed item. ``amount`` is ``quantity * unit_price`` rounded once (half-up);
    ``tax`` is ``amount * tax_rate`` rounded once, per line."""

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

    @property
    def taxable(self) -> bool:
        return self.tax_rate > 0


@dataclass(frozen=True, slots=True)
class Seller:
    legal_name: str
    address: Address
    tax_id: str | None = None
    email: str | None = None


@dataclass(frozen=True, slots=True)
class TaxSubtotal:
    rate: Decimal
    taxable_amount: Money
    tax: Money


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

    @property
    def po_number(self) -> str | None:
        return self.job.po_number

    @property
    def subtotal(self) -> Money:
        return money_sum([line.amount for line in self.lines], self.currency)

    @property
    def tax_total(self) -> Money:
        return money_sum([line.tax for line in self.lines], self.currency)

    @property
    def total(self) -> Money:
        return self.subtotal + self.tax_total

    def tax_breakdown(self) -> tuple[TaxSubtotal, ...]:
        """One entry per tax rate (0 included), ordered by rate."""
        rates = sorted({line.tax_rate for line in self.lines})
        return tuple(
            TaxSubtotal(
                rate,
                money_sum([x.amount for x in self.lines if x.tax_rate == rate], self.currency),
                money_sum([x.tax for x in self.lines if x.tax_rate == rate], self.currency),
            )
            for rate in rates
        )

    def with_number(self, number: str) -> Invoice:
        return replace(self, number=number)

    @property
    def reference(self) -> str:
        """Our reference on the platform: the job id (unique per tenant)."""
        return self.job_id
