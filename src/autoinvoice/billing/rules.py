"""A tenant's billing rules as plain frozen data (built from the config by the composition root)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time
from decimal import Decimal
from zoneinfo import ZoneInfo

from autoinvoice.domain.invoice import Seller


@dataclass(frozen=True, slots=True)
class PriceEntry:
    price: Decimal
    description: str
    unit: str = "ea"


@dataclass(frozen=True, slots=True)
class TaxRules:
    rate: Decimal = Decimal(0)
    labor_taxable: bool = False
    parts_taxable: bool = True
    travel_taxable: bool = False
    fees_taxable: bool = False


@dataclass(frozen=True, slots=True)
class BillingRules:
    seller: Seller
    currency: str
    payment_terms_days: int
    grade_rates: dict[str, Decimal]
    travel_factor: Decimal = Decimal(1)
    overtime_factor: Decimal = Decimal(1)
    weekend_factor: Decimal = Decimal(1)
    emergency_callout_fee: Decimal = Decimal(0)
    minimum_onsite_hours: Decimal = Decimal(0)
    mileage_price: Decimal | None = None
    mileage_unit: str = "mi"
    day_start: time = time(7, 0)
    day_end: time = time(17, 0)
    timezone: ZoneInfo | None = None
    tax: TaxRules = TaxRules()
    pricebook: dict[str, PriceEntry] = field(default_factory=dict)
    emergency_service_types: frozenset[str] = frozenset({"emergency_repair", "emergency"})
