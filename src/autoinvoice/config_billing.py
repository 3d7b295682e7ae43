"""The billing sections of a tenant's configuration: rates, tax, pricebook, parts, price
lists, customers, contracts (pydantic models; ``config.billing_rules`` turns them into the pure
``billing.rules``). Decimals are parsed straight from TOML and a float is refused."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from autoinvoice.billing.rules import (
    ContractKind,
    PriceEntry,
    PriceKind,
    Taxability,
    TaxRegime,
    TimeRounding,
)
from autoinvoice.domain.invoice import TaxRounding
from autoinvoice.domain.job import Address
from autoinvoice.validation import reject_float

Dec = Annotated[Decimal, BeforeValidator(reject_float)]
Fraction = Annotated[Decimal, BeforeValidator(reject_float), Field(ge=0, le=1)]
Positive = Annotated[Decimal, BeforeValidator(reject_float), Field(gt=0)]


def _known_currency(value: str | None) -> str | None:
    from autoinvoice.domain.money import KNOWN_CURRENCIES

    if value is not None and value not in KNOWN_CURRENCIES:
        raise ValueError(f"unknown ISO 4217 currency {value!r}")
    return value


Currency = Annotated[str, AfterValidator(_known_currency)]


def _peppol_id(value: str) -> str:
    """Checked against the Peppol EAS code list at start; kept as "<scheme>:<id>"."""
    from autoinvoice.domain.endpoint import parse_peppol_id

    return str(parse_peppol_id(value))


#: A Peppol participant id, e.g. "0088:4012345000009" (GLN) or "9930:DE123456789" (VAT id).
PeppolId = Annotated[str, AfterValidator(_peppol_id)]

class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class AddressConfig(_Model):
    line1: str
    city: str
    country: str = Field(min_length=2, max_length=2)
    postal_code: str = ""
    region: str = ""
    line2: str = ""

    def to_domain(self) -> Address:
        return Address(**self.model_dump())


class MileageRate(_Model):
    per: str = "mi"
    price: Dec


_FACTOR_KEYS = {
    "travel_factor", "overtime_factor", "weekend_factor", "emergency_callout_fee",
    "minimum_onsite_hours", "mileage_rate", "overtime_window", "holiday_factor", "holidays",
    "travel_billed", "travel_overtime", "time_increment_minutes", "time_rounding",
}


class RatesConfig(_Model):
    """Hourly rates by technician grade (any key not listed below) plus the factors."""

    grades: dict[str, Dec]
    travel_factor: Dec = Decimal(1)
    overtime_factor: Dec = Decimal(1)
    weekend_factor: Dec = Decimal(1)
    emergency_callout_fee: Dec = Decimal(0)
    minimum_onsite_hours: Dec = Decimal(0)
    mileage_rate: MileageRate | None = None
    overtime_window: tuple[str, str] = ("07:00", "17:00")
    holiday_factor: Dec | None = None
    holidays: tuple[date, ...] = ()
    travel_billed: bool = True
    travel_overtime: bool = True
    time_increment_minutes: int = Field(default=0, ge=0, le=240)
    time_rounding: TimeRounding = TimeRounding.UP

    @model_validator(mode="before")
    @classmethod
    def _split_grades(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "grades" in data:
            return data
        grades = {k: v for k, v in data.items() if k not in _FACTOR_KEYS}
        return {**{k: v for k, v in data.items() if k in _FACTOR_KEYS}, "grades": grades}

    @field_validator("overtime_window")
    @classmethod
    def _hhmm(cls, value: tuple[str, str]) -> tuple[str, str]:
        for item in value:
            if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", item):
                raise ValueError(f"{item!r} is not HH:MM")
        return value


class _Taxable(_Model):
    labor_taxable: bool | None = None  # default: false for sales tax, true for VAT
    parts_taxable: bool = True
    travel_taxable: bool | None = None  # default: as labor
    fees_taxable: bool | None = None  # call-out fee and mileage; default: as labor

    def taxability(self, regime: TaxRegime = TaxRegime.SALES_TAX) -> Taxability:
        labor = (regime is TaxRegime.VAT) if self.labor_taxable is None else self.labor_taxable
        return Taxability(
            labor=labor, parts=self.parts_taxable,
            travel=labor if self.travel_taxable is None else self.travel_taxable,
            fees=labor if self.fees_taxable is None else self.fees_taxable)


class JurisdictionConfig(_Taxable):
    country: str = Field(pattern=r"^[A-Z]{2}$")
    region: str = ""
    postal_prefix: str = ""
    rate: Fraction


class TaxConfig(_Taxable):
    regime: TaxRegime = TaxRegime.SALES_TAX
    rate: Fraction = Decimal(0)
    rounding: TaxRounding = TaxRounding.LINE
    jurisdictions: dict[str, JurisdictionConfig] = Field(default_factory=dict)
    reverse_charge_note: str | None = None


class PricebookEntry(_Model):
    price: Dec = Field(ge=0)
    description: str = ""
    unit: str = "ea"
    kind: PriceKind = PriceKind.PART
    tax_rate: Fraction | None = None
    includes: tuple[str, ...] = ()
    replaces_labor: bool = True
    includes_travel: bool = False
    components: dict[str, Dec] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _shape(self) -> PricebookEntry:
        if self.components and self.kind is not PriceKind.KIT:
            raise ValueError("components: only a kind = \"kit\" entry has components")
        if self.includes and self.kind is not PriceKind.SERVICE:
            raise ValueError("includes: only a kind = \"service\" entry includes parts")
        return self

    def to_rules(self) -> PriceEntry:
        return PriceEntry(
            price=self.price, description=self.description, unit=self.unit, kind=self.kind,
            tax_rate=self.tax_rate, includes=self.includes, replaces_labor=self.replaces_labor,
            includes_travel=self.includes_travel, components=tuple(self.components.items()))


class PartsConfig(_Model):
    noncatalogue_markup: Dec | None = Field(default=None, ge=0)


class PriceListConfig(_Model):
    currency: Currency | None = None
    prices: dict[str, Dec] = Field(default_factory=dict)
    rates: dict[str, Dec] = Field(default_factory=dict)
    parts_discount: Fraction = Decimal(0)


class CertificateConfig(_Model):
    number: str = Field(min_length=1)
    regions: tuple[str, ...] = ()
    expires: date | None = None


class CustomerConfig(_Model):
    po_required: bool = False
    price_list: str | None = None
    currency: Currency | None = None
    not_to_exceed: Dec | None = Field(default=None, gt=0)
    exemption_certificates: tuple[CertificateConfig, ...] = ()
    einvoice_format: Literal["pdf", "ubl", "cii", "facturx", "xrechnung",
                             "xrechnung-ubl"] | None = None
    name: str | None = None
    email: str | None = None
    address: AddressConfig | None = None
    vat_id: str | None = None
    buyer_reference: str | None = Field(default=None, min_length=1)
    peppol_id: PeppolId | None = None


class ContractConfig(_Model):
    customer: str
    kind: ContractKind = ContractKind.MAINTENANCE
    start: date
    end: date
    covered_service_types: tuple[str, ...] = ("preventive_maintenance",)
    covers_travel: bool = True
    parts_discount: Fraction = Decimal(0)
    waive_callout: bool = True
    not_to_exceed: Dec | None = Field(default=None, gt=0)
    bill_to: str | None = None

    @model_validator(mode="after")
    def _dates(self) -> ContractConfig:
        if self.end < self.start:
            raise ValueError(f"end ({self.end}) is before start ({self.start})")
        return self


class BillingPolicyConfig(_Model):
    require_known_customers: bool = False
