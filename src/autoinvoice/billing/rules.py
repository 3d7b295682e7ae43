"""A tenant's billing rules as plain frozen data (built from the config by the composition root).

Nothing here reads files or knows a platform: the engine gets these and a job, nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, time
from decimal import Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo

from autoinvoice.domain.invoice import Seller, TaxRounding
from autoinvoice.domain.job import Address


class PriceKind(StrEnum):
    PART = "part"
    SERVICE = "service"  # flat-rate service: replaces labor and the parts it includes
    KIT = "kit"  # sold as one line at its own price; its components shown at zero


@dataclass(frozen=True, slots=True)
class PriceEntry:
    price: Decimal
    description: str
    unit: str = "ea"
    kind: PriceKind = PriceKind.PART
    tax_rate: Decimal | None = None  # VAT: a rate for this item other than the standard one
    includes: tuple[str, ...] = ()  # service: SKUs whose parts it includes
    replaces_labor: bool = True  # service: on-site labor is part of the flat price
    includes_travel: bool = False  # service: travel is part of the flat price too
    components: tuple[tuple[str, Decimal], ...] = ()  # kit: (sku, quantity per kit)


class TimeRounding(StrEnum):
    NONE = "none"
    UP = "up"
    NEAREST = "nearest"


@dataclass(frozen=True, slots=True)
class Taxability:
    """Which kinds of line carry tax in one place."""

    labor: bool = False
    parts: bool = True
    travel: bool = False
    fees: bool = False  # call-out fee and mileage


@dataclass(frozen=True, slots=True)
class Jurisdiction:
    """A sales-tax rate for service addresses matching ``country``/``region``/postal prefix;
    the most specific match wins."""

    name: str
    country: str
    rate: Decimal
    taxable: Taxability
    region: str = ""
    postal_prefix: str = ""

    def matches(self, address: Address) -> bool:
        return (address.country == self.country
                and (not self.region or address.region == self.region)
                and (not self.postal_prefix or address.postal_code.startswith(self.postal_prefix)))

    @property
    def specificity(self) -> int:
        return (1 if self.region else 0) + (2 if self.postal_prefix else 0)


class TaxRegime(StrEnum):
    SALES_TAX = "sales_tax"  # US style: rate by the service address, per kind of line
    VAT = "vat"  # EU/UK style: the seller's rates, reverse charge across borders


@dataclass(frozen=True, slots=True)
class TaxRules:
    regime: TaxRegime = TaxRegime.SALES_TAX
    rate: Decimal = Decimal(0)  # the default rate (sales tax) or the standard VAT rate
    taxable: Taxability = Taxability()
    jurisdictions: tuple[Jurisdiction, ...] = ()
    rounding: TaxRounding = TaxRounding.LINE
    language: str = "en"  # of the notes the tax plan writes (billing.phrases)
    reverse_charge_note: str = (
        "Reverse charge: VAT to be accounted for by the recipient "
        "(Article 196, Council Directive 2006/112/EC)")

    # The single-rate shape of the first version, still read by older callers.
    @property
    def labor_taxable(self) -> bool:
        return self.taxable.labor

    @property
    def parts_taxable(self) -> bool:
        return self.taxable.parts

    @property
    def travel_taxable(self) -> bool:
        return self.taxable.travel

    @property
    def fees_taxable(self) -> bool:
        return self.taxable.fees


@dataclass(frozen=True, slots=True)
class ExemptionCertificate:
    number: str
    regions: tuple[str, ...]  # e.g. US states; empty: everywhere
    expires: date | None = None


@dataclass(frozen=True, slots=True)
class PriceList:
    """Prices agreed with particular customers, optionally in another currency."""

    name: str
    currency: str | None = None
    prices: dict[str, Decimal] = field(default_factory=dict)
    grade_rates: dict[str, Decimal] = field(default_factory=dict)
    parts_discount: Decimal = Decimal(0)  # fraction off catalogue parts not listed


@dataclass(frozen=True, slots=True)
class CustomerTerms:
    """What the tenant knows about a customer beyond what the job event says."""

    id: str
    po_required: bool = False
    price_list: str | None = None
    currency: str | None = None
    not_to_exceed: Decimal | None = None
    exemption_certificates: tuple[ExemptionCertificate, ...] = ()
    # Only needed for a bill-to party that never appears on a job (a manufacturer).
    name: str | None = None
    email: str | None = None
    address: Address | None = None
    vat_id: str | None = None
    buyer_reference: str | None = None  # EN 16931 BT-10, e.g. a Leitweg-ID
    peppol_id: str | None = None  # EN 16931 BT-49, "<EAS scheme>:<id>"


class ContractKind(StrEnum):
    MAINTENANCE = "maintenance"
    WARRANTY = "warranty"


@dataclass(frozen=True, slots=True)
class Contract:
    id: str
    customer: str
    kind: ContractKind
    start: date
    end: date
    covered_service_types: tuple[str, ...] = ("preventive_maintenance",)
    covers_travel: bool = True
    parts_discount: Decimal = Decimal(0)  # fraction off parts (maintenance)
    waive_callout: bool = True
    not_to_exceed: Decimal | None = None
    bill_to: str | None = None  # warranty: the customer id billed instead (a manufacturer)

    def active_on(self, day: date) -> bool:
        return self.start <= day <= self.end


@dataclass(frozen=True, slots=True)
class BillingRules:
    seller: Seller
    currency: str
    payment_terms_days: int
    grade_rates: dict[str, Decimal]
    travel_factor: Decimal = Decimal(1)
    overtime_factor: Decimal = Decimal(1)
    weekend_factor: Decimal = Decimal(1)
    holiday_factor: Decimal | None = None  # None: as weekend
    holidays: frozenset[date] = frozenset()
    travel_billed: bool = True
    travel_overtime: bool = True  # overtime, weekend and holiday factors apply to travel
    time_increment_minutes: int = 0  # 0: exact to the 0.01 h
    time_rounding: TimeRounding = TimeRounding.UP
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
    noncatalogue_markup: Decimal | None = None  # cost plus this fraction; None: hold
    customers: dict[str, CustomerTerms] = field(default_factory=dict)
    price_lists: dict[str, PriceList] = field(default_factory=dict)
    contracts: dict[str, Contract] = field(default_factory=dict)
    require_known_customers: bool = False
    fx_rates: dict[str, Decimal] = field(default_factory=dict)  # units per 1 tenant currency
    language: str = "en"  # of line descriptions and coverage reasons (billing.phrases)

    @property
    def holiday_rate_factor(self) -> Decimal:
        return self.weekend_factor if self.holiday_factor is None else self.holiday_factor
