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
from datetime import time
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from autoinvoice.billing.rules import BillingRules, PriceEntry, TaxRules
from autoinvoice.domain.invoice import Seller
from autoinvoice.domain.job import Address
from autoinvoice.validation import InputError, problems_from, reject_float

Dec = Annotated[Decimal, BeforeValidator(reject_float)]
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
    name: str = "sandbox"
    base_url: str | None = None
    credentials: dict[str, SecretRef] = Field(default_factory=dict)
    webhook_secret: SecretRef | None = None
    rate_limit_per_second: Dec | None = Field(default=None, gt=0)


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
    "minimum_onsite_hours", "mileage_rate", "overtime_window",
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


class TaxConfig(_Model):
    rate: Dec = Decimal(0)
    labor_taxable: bool = False
    parts_taxable: bool = True
    travel_taxable: bool | None = None  # default: as labor
    fees_taxable: bool | None = None  # call-out fee and mileage; default: as labor


class PricebookEntry(_Model):
    price: Dec
    description: str = ""
    unit: str = "ea"


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
    currency: str = "USD"
    payment_terms_days: int = Field(default=30, ge=0)
    invoice_series: str = "{year}-{seq:05d}"
    timezone: str | None = None
    api_keys: tuple[SecretRef, ...] = ()
    platform: PlatformConfig = PlatformConfig()
    triggers: TriggerConfig = TriggerConfig()
    rates: RatesConfig = RatesConfig(grades={})
    tax: TaxConfig = TaxConfig()
    pricebook: dict[str, PricebookEntry] = Field(default_factory=dict)
    smtp: SmtpConfig | None = None

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        from autoinvoice.domain.money import KNOWN_CURRENCIES

        if value not in KNOWN_CURRENCIES:
            raise ValueError(f"unknown ISO 4217 currency {value!r}")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value

    @field_validator("invoice_series")
    @classmethod
    def _series(cls, value: str) -> str:
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
        emergency_callout_fee=r.emergency_callout_fee,
        minimum_onsite_hours=r.minimum_onsite_hours,
        mileage_price=r.mileage_rate.price if r.mileage_rate else None,
        mileage_unit=r.mileage_rate.per if r.mileage_rate else "mi",
        day_start=start,
        day_end=end,
        timezone=ZoneInfo(tenant.timezone) if tenant.timezone else None,
        tax=TaxRules(
            rate=t.rate, labor_taxable=t.labor_taxable, parts_taxable=t.parts_taxable,
            travel_taxable=t.labor_taxable if t.travel_taxable is None else t.travel_taxable,
            fees_taxable=t.labor_taxable if t.fees_taxable is None else t.fees_taxable,
        ),
        pricebook={k: PriceEntry(v.price, v.description, v.unit)
                   for k, v in tenant.pricebook.items()},
    )
