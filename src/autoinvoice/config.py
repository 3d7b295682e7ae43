"""The TOML configuration: database, SMTP, worker policy and one section per tenant.

Found at ``--config``, ``$AUTOINVOICE_CONFIG`` or ``./autoinvoice.toml``; with none of them,
the embedded demo default (SQLite and the sandbox platform). Decimals are parsed as
``Decimal`` straight from the TOML text, so no rate or price is ever a float. Secrets are
written as ``"env:NAME"`` references and resolved only when used; ``repr`` never shows them.
"""

from __future__ import annotations

import os
import re
import tomllib
from datetime import date, time
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from autoinvoice.billing.rules import (
    BillingRules,
    Contract,
    ContractKind,
    CustomerTerms,
    ExemptionCertificate,
    Jurisdiction,
    PriceEntry,
    PriceKind,
    PriceList,
    Taxability,
    TaxRegime,
    TaxRules,
    TimeRounding,
)
from autoinvoice.domain.invoice import Seller, TaxRounding
from autoinvoice.domain.job import Address
from autoinvoice.validation import InputError, problems_from, reject_float

Dec = Annotated[Decimal, BeforeValidator(reject_float)]
Fraction = Annotated[Decimal, BeforeValidator(reject_float), Field(ge=0, le=1)]


def _known_currency(value: str | None) -> str | None:
    from autoinvoice.domain.money import KNOWN_CURRENCIES

    if value is not None and value not in KNOWN_CURRENCIES:
        raise ValueError(f"unknown ISO 4217 currency {value!r}")
    return value


Currency = Annotated[str, AfterValidator(_known_currency)]
ENV_CONFIG = "AUTOINVOICE_CONFIG"


class SecretRef:
    """A secret given as ``env:NAME`` (resolved at use) or, discouraged, literally."""

    __slots__ = ("_raw",)

    def __init__(self, raw: str) -> None:
        self._raw = raw

    @property
    def env_name(self) -> str | None:
        return self._raw[4:] if self._raw.startswith("env:") else None

    def reveal(self) -> str:
        name = self.env_name
        if name is None:
            return self._raw
        value = os.environ.get(name)
        if not value:
            raise InputError([f"environment variable {name} is not set"], source="secret")
        return value

    def __repr__(self) -> str:
        return f"SecretRef(env:{self.env_name})" if self.env_name else "SecretRef(****)"

    __str__ = __repr__

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema

        return core_schema.union_schema([
            core_schema.is_instance_schema(cls),
            core_schema.no_info_after_validator_function(cls, core_schema.str_schema()),
        ])


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


class PlatformConfig(_Model):
    """One tenant's platform. OAuth2 platforms take ``client_id`` and ``client_secret`` in
    ``credentials``; ``authorize_url`` and ``token_url`` replace the platform's documented
    OAuth endpoints (a stand-in, a regional data centre); ``entra_tenant`` and
    ``environment`` are Business Central's Microsoft Entra tenant and BC environment."""

    name: str = "sandbox"
    base_url: str | None = None
    credentials: dict[str, SecretRef] = Field(default_factory=dict)
    webhook_secret: SecretRef | None = None
    rate_limit_per_second: Dec | None = Field(default=None, gt=0)
    authorize_url: str | None = None
    token_url: str | None = None
    entra_tenant: str | None = None
    environment: str | None = None


class TriggerConfig(_Model):
    require: tuple[str, ...] = ("job.completed",)
    signature_wait_hours: Dec | None = None

    @field_validator("require")
    @classmethod
    def _known_events(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        known = {"job.completed", "job.signed", "work_order.finalized"}
        unknown = [v for v in value if v not in known]
        if unknown:
            raise ValueError(f"unknown event type(s) {unknown}; known: {sorted(known)}")
        if not value:
            raise ValueError("must list at least one event type")
        return value


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
    einvoice_format: Literal["pdf", "ubl", "cii", "facturx", "xrechnung"] | None = None
    name: str | None = None
    email: str | None = None
    address: AddressConfig | None = None
    vat_id: str | None = None


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


class SmtpConfig(_Model):
    host: str = "localhost"
    port: int = 25
    username: SecretRef | None = None
    password: SecretRef | None = None
    starttls: bool = False
    ssl: bool = False
    timeout_seconds: Dec = Decimal(10)


class TenantConfig(_Model):
    legal_name: str
    address: AddressConfig
    tax_id: str | None = None
    email: str | None = None
    currency: Currency = "USD"
    payment_terms_days: int = Field(default=30, ge=0)
    invoice_series: str = "{year}-{seq:05d}"
    timezone: str | None = None
    api_keys: tuple[SecretRef, ...] = ()
    platform: PlatformConfig = PlatformConfig()
    triggers: TriggerConfig = TriggerConfig()
    rates: RatesConfig = RatesConfig(grades={})
    tax: TaxConfig = TaxConfig()
    pricebook: dict[str, PricebookEntry] = Field(default_factory=dict)
    parts: PartsConfig = PartsConfig()
    price_lists: dict[str, PriceListConfig] = Field(default_factory=dict)
    customers: dict[str, CustomerConfig] = Field(default_factory=dict)
    contracts: dict[str, ContractConfig] = Field(default_factory=dict)
    billing: BillingPolicyConfig = BillingPolicyConfig()
    fx: dict[Currency, Annotated[Decimal, BeforeValidator(reject_float), Field(gt=0)]] = Field(
        default_factory=dict)
    credit_note_series: str | None = None
    smtp: SmtpConfig | None = None

    @model_validator(mode="after")
    def _references(self) -> TenantConfig:
        """Names that point elsewhere in the tenant must exist there."""
        problems = []
        for cid, customer in self.customers.items():
            if customer.price_list and customer.price_list not in self.price_lists:
                problems.append(f"customers.{cid}.price_list: no price list "
                                f"{customer.price_list!r}")
        for kid, contract in self.contracts.items():
            payer = self.customers.get(contract.bill_to) if contract.bill_to else None
            if contract.bill_to and payer is None:
                problems.append(f"contracts.{kid}.bill_to: customer {contract.bill_to!r} is "
                                "not under customers")
            elif payer is not None and not (payer.name and payer.email and payer.address):
                problems.append(f"customers.{contract.bill_to}: a bill-to party needs name, "
                                "email and address")
        for sku, entry in self.pricebook.items():
            for part in (*entry.includes, *entry.components):
                if part not in self.pricebook:
                    problems.append(f"pricebook.{sku}: {part!r} is not in the pricebook")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def credit_notes(self) -> str:
        return self.credit_note_series or "CN-" + self.invoice_series

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value

    @field_validator("invoice_series", "credit_note_series")
    @classmethod
    def _series(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            value.format(year=2026, seq=1, month=1)
        except (KeyError, ValueError, IndexError) as exc:
            raise ValueError(f"bad template ({exc}); use {{year}}, {{month}} and {{seq}}") from exc
        if "{seq" not in value:
            raise ValueError("must contain {seq} (e.g. {seq:05d})")
        return value


class DatabaseConfig(_Model):
    url: str = "sqlite:///./autoinvoice.db"


class WorkerConfig(_Model):
    max_attempts: int = Field(default=8, ge=1)
    backoff_base_seconds: Dec = Decimal(2)
    backoff_max_seconds: Dec = Decimal(900)
    poll_interval_seconds: Dec = Decimal(1)
    payment_poll_minutes: Dec = Decimal(60)


class Config(_Model):
    database: DatabaseConfig = DatabaseConfig()
    smtp: SmtpConfig = SmtpConfig()
    worker: WorkerConfig = WorkerConfig()
    documents_dir: str = "./invoices"
    tenants: dict[str, TenantConfig]
    source: str = "embedded default"

    def tenant(self, name: str) -> TenantConfig:
        try:
            return self.tenants[name]
        except KeyError:
            raise InputError([f"tenant: unknown tenant {name!r}"]) from None

    def smtp_for(self, tenant: str) -> SmtpConfig:
        return self.tenants[tenant].smtp or self.smtp


def parse_config(text: str, source: str) -> Config:
    try:
        data = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        raise InputError([f"not valid TOML: {exc}"], source=source) from None
    try:
        return Config.model_validate({**data, "source": source})
    except ValidationError as exc:
        raise InputError(problems_from(exc), source=source) from None


def default_config_text() -> str:
    return resources.files("autoinvoice").joinpath("defaults/demo.toml").read_text("utf-8")


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """``path``, else $AUTOINVOICE_CONFIG, else ./autoinvoice.toml, else the embedded default."""
    chosen = path or os.environ.get(ENV_CONFIG)
    if not chosen and Path("autoinvoice.toml").is_file():
        chosen = "autoinvoice.toml"
    if not chosen:
        return parse_config(default_config_text(), "embedded default")
    file = Path(chosen)
    if not file.is_file():
        raise InputError([f"config file {str(file)!r} does not exist"], source="config")
    return parse_config(file.read_text("utf-8"), str(file))


def billing_rules(tenant: TenantConfig) -> BillingRules:
    """The pure billing rules of one tenant (what ``billing.engine`` needs, nothing else)."""
    r, t = tenant.rates, tenant.tax
    start, end = (time.fromisoformat(x) for x in r.overtime_window)
    return BillingRules(
        seller=Seller(tenant.legal_name, tenant.address.to_domain(), tenant.tax_id, tenant.email),
        currency=tenant.currency,
        payment_terms_days=tenant.payment_terms_days,
        grade_rates=dict(r.grades),
        travel_factor=r.travel_factor,
        overtime_factor=r.overtime_factor,
        weekend_factor=r.weekend_factor,
        holiday_factor=r.holiday_factor,
        holidays=frozenset(r.holidays),
        travel_billed=r.travel_billed,
        travel_overtime=r.travel_overtime,
        time_increment_minutes=r.time_increment_minutes,
        time_rounding=r.time_rounding,
        emergency_callout_fee=r.emergency_callout_fee,
        minimum_onsite_hours=r.minimum_onsite_hours,
        mileage_price=r.mileage_rate.price if r.mileage_rate else None,
        mileage_unit=r.mileage_rate.per if r.mileage_rate else "mi",
        day_start=start,
        day_end=end,
        timezone=ZoneInfo(tenant.timezone) if tenant.timezone else None,
        tax=TaxRules(
            regime=t.regime, rate=t.rate, taxable=t.taxability(t.regime), rounding=t.rounding,
            jurisdictions=tuple(
                Jurisdiction(name=name, country=j.country, region=j.region,
                             postal_prefix=j.postal_prefix, rate=j.rate,
                             taxable=j.taxability())
                for name, j in t.jurisdictions.items()),
            **({"reverse_charge_note": t.reverse_charge_note} if t.reverse_charge_note else {}),
        ),
        pricebook={k: v.to_rules() for k, v in tenant.pricebook.items()},
        noncatalogue_markup=tenant.parts.noncatalogue_markup,
        customers={cid: _customer_terms(cid, c) for cid, c in tenant.customers.items()},
        price_lists={name: PriceList(name=name, currency=p.currency, prices=dict(p.prices),
                                     grade_rates=dict(p.rates), parts_discount=p.parts_discount)
                     for name, p in tenant.price_lists.items()},
        contracts={kid: Contract(id=kid, **c.model_dump()) for kid, c in tenant.contracts.items()},
        require_known_customers=tenant.billing.require_known_customers,
        fx_rates=dict(tenant.fx),
    )


def _customer_terms(cid: str, c: CustomerConfig) -> CustomerTerms:
    return CustomerTerms(
        id=cid, po_required=c.po_required, price_list=c.price_list, currency=c.currency,
        not_to_exceed=c.not_to_exceed,
        exemption_certificates=tuple(ExemptionCertificate(x.number, x.regions, x.expires)
                                     for x in c.exemption_certificates),
        name=c.name, email=c.email, address=c.address.to_domain() if c.address else None,
        vat_id=c.vat_id)
