"""The TOML configuration: database, SMTP, worker policy and one section per tenant.

Found at ``--config``, ``$AUTOINVOICE_CONFIG`` or ``./autoinvoice.toml``; with none of them,
the embedded demo default (SQLite and the sandbox platform). Decimals are parsed as
``Decimal`` straight from the TOML text, so no rate or price is ever a float. Secrets are
written as ``"env:NAME"`` references and resolved only when used; ``repr`` never shows them.
"""

from __future__ import annotations

import json
import os
import tomllib
from datetime import time
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from autoinvoice.billing.phrases import phrase
from autoinvoice.billing.rules import (
    BillingRules,
    Contract,
    CustomerTerms,
    ExemptionCertificate,
    Jurisdiction,
    PriceList,
    TaxRules,
)
from autoinvoice.config_billing import (  # noqa: F401  (re-exported: the config's public names)
    AddressConfig,
    BillingPolicyConfig,
    CertificateConfig,
    ContractConfig,
    Currency,
    CustomerConfig,
    Dec,
    Fraction,
    JurisdictionConfig,
    MileageRate,
    PartsConfig,
    PeppolId,
    Positive,
    PricebookEntry,
    PriceListConfig,
    RatesConfig,
    TaxConfig,
    _Model,
)
from autoinvoice.domain.invoice import PaymentInstructions, Seller
from autoinvoice.validation import InputError, problems_from

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


#: the platforms whose scope set ``platform.scopes`` chooses (``connectors.oauth.scope_sets``)
_SCOPE_SETS = {"xero": ("granular", "legacy")}


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
    #: which scope set ``connect`` asks for where a platform has several (Xero: ``granular``
    #: for apps made since 2 March 2026, the default; ``legacy`` for older apps)
    scopes: str | None = None
    #: Business Central: each tax outcome ("S:19", "AE", ...) -> the company's tax group code
    #: (a line's ``taxCode``: a VAT product posting group, or a US tax group)
    tax_groups: dict[str, str] = Field(default_factory=dict)
    #: Business Central: each tax outcome -> the tax area its customer is put in (a VAT
    #: business posting group such as DOMESTIC/EU/EXPORT, or a US tax area)
    tax_areas: dict[str, str] = Field(default_factory=dict)
    #: Sage: each tax outcome -> one of the business's ``tax_rates`` ids (else found by kind);
    #: Zoho Books: each tax outcome -> one of the organisation's taxes (its id or name)
    tax_rates: dict[str, str] = Field(default_factory=dict)
    #: Xero: each tax outcome -> one of the organisation's tax types (``TaxType``, e.g.
    #: "ECZROUTPUTSERVICES"); unmapped outcomes follow Xero's report types
    tax_types: dict[str, str] = Field(default_factory=dict)
    #: Zoho Books (UK and EU editions): each tax outcome -> the VAT treatment its invoices
    #: carry (``vat_treatment`` / ``tax_treatment``, e.g. "AE" = "eu_vat_registered")
    tax_treatments: dict[str, str] = Field(default_factory=dict)
    #: which of the listed companies (Business Central) / businesses (Sage) to connect: id
    #: or name; BC refuses to guess among several, Sage takes the lead business
    company: str | None = None
    business: str | None = None

    @model_validator(mode="after")
    def _scope_set(self) -> PlatformConfig:
        choices = _SCOPE_SETS.get(self.name, ())
        if self.scopes is not None and self.scopes not in choices:
            known = (f"not one of {', '.join(repr(c) for c in choices)}" if choices
                     else f"not used by platform {self.name!r}")
            raise ValueError(f"platform.scopes: {self.scopes!r} is {known}")
        return self

    @model_validator(mode="after")
    def _tax_types_on_xero(self) -> PlatformConfig:
        if self.tax_types and self.name != "xero":
            raise ValueError(f"platform.tax_types: Xero's tax types, not used by platform "
                             f"{self.name!r}")
        return self

    @model_validator(mode="after")
    def _treatments(self) -> PlatformConfig:
        from autoinvoice.connectors.zoho_books.vat import TREATMENTS

        if self.tax_treatments and self.name != "zoho_books":
            raise ValueError(f"platform.tax_treatments: not used by platform {self.name!r} "
                             "(Zoho Books only)")
        unknown = [f"{key!r} = {value!r}" for key, value in self.tax_treatments.items()
                   if value not in TREATMENTS]
        if unknown:
            raise ValueError(f"platform.tax_treatments: {', '.join(unknown)} is not a Zoho "
                             f"Books VAT treatment (one of {', '.join(TREATMENTS)})")
        return self

    @field_validator("tax_groups", "tax_areas", "tax_rates", "tax_types", "tax_treatments")
    @classmethod
    def _outcome_keys(cls, value: dict[str, str]) -> dict[str, str]:
        from autoinvoice.domain.tax_outcome import key_problem

        problems = [p for key in value if (p := key_problem(key)) is not None]
        problems += [f"{key!r} maps to an empty code" for key, code in value.items()
                     if not code.strip()]
        if problems:
            raise ValueError("; ".join(problems))
        return value


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


class SmtpConfig(_Model):
    host: str = "localhost"
    port: int = 25
    username: SecretRef | None = None
    password: SecretRef | None = None
    starttls: bool = False
    ssl: bool = False
    timeout_seconds: Dec = Decimal(10)


class PaymentConfig(_Model):
    """Bank-transfer details printed on documents and written into e-invoices (BG-16/17)."""

    iban: str | None = None
    bic: str | None = Field(default=None, pattern=r"^[A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?$")
    bank_name: str | None = None
    account_holder: str | None = None
    note: str | None = None

    @field_validator("iban")
    @classmethod
    def _iban(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from stdnum import iban
        from stdnum.exceptions import ValidationError

        try:
            return iban.validate(value)
        except ValidationError as exc:
            raise ValueError(f"not a valid IBAN ({exc})") from None

    def to_domain(self) -> PaymentInstructions:
        return PaymentInstructions(**self.model_dump())


class DocumentsConfig(_Model):
    """How the tenant's documents look: language, its own templates, its logo."""

    language: Literal["en", "de"] = "en"
    template_dir: Path | None = None  # files here override the built-in templates by name
    logo: Path | None = None  # a PNG or JPEG printed at the top left


class TenantConfig(_Model):
    legal_name: str
    address: AddressConfig
    tax_id: str | None = None
    email: str | None = None
    phone: str | None = None
    contact_name: str | None = None
    peppol_id: PeppolId | None = None
    payment: PaymentConfig | None = None
    documents: DocumentsConfig = DocumentsConfig()
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
    fx: dict[Currency, Positive] = Field(default_factory=dict)
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
        problems += self._seller_address_problems()
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _seller_address_problems(self) -> list[str]:
        """Peppol BIS and XRechnung require the seller's electronic address (BT-34,
        PEPPOL-EN16931-R020): known at start, so a gap refuses the start instead of holding
        every invoice."""
        from autoinvoice.domain.endpoint import from_vat_id

        needing = sorted(cid for cid, c in self.customers.items()
                         if c.einvoice_format in ("ubl", "xrechnung", "xrechnung-ubl"))
        if not needing or self.peppol_id or from_vat_id(self.tax_id):
            return []
        return [f"peppol_id: customers {', '.join(needing)} receive Peppol or XRechnung "
                "e-invoices, which need the seller's electronic address (BT-34); tax_id "
                f"{self.tax_id!r} gives none: set peppol_id (e.g. \"0088:<GLN>\")"]

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


def tenant_snapshot(tenant: TenantConfig) -> str:
    """The tenant's configuration as canonical JSON (secrets appear only as their
    ``SecretRef`` text, never revealed): what its version hash is computed over."""
    return json.dumps(tenant.model_dump(), default=str, sort_keys=True, ensure_ascii=False,
                      separators=(",", ":"))


def billing_rules(tenant: TenantConfig) -> BillingRules:
    """The pure billing rules of one tenant (what ``billing.engine`` needs, nothing else)."""
    r, t = tenant.rates, tenant.tax
    start, end = (time.fromisoformat(x) for x in r.overtime_window)
    return BillingRules(
        seller=Seller(tenant.legal_name, tenant.address.to_domain(), tenant.tax_id, tenant.email,
                      phone=tenant.phone, contact_name=tenant.contact_name,
                      payment=tenant.payment.to_domain() if tenant.payment else None,
                      peppol_id=tenant.peppol_id),
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
            language=tenant.documents.language,
            reverse_charge_note=t.reverse_charge_note or phrase(tenant.documents.language,
                                                                "reverse_charge"),
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
        language=tenant.documents.language,
    )


def _customer_terms(cid: str, c: CustomerConfig) -> CustomerTerms:
    return CustomerTerms(
        id=cid, po_required=c.po_required, price_list=c.price_list, currency=c.currency,
        not_to_exceed=c.not_to_exceed,
        exemption_certificates=tuple(ExemptionCertificate(x.number, x.regions, x.expires)
                                     for x in c.exemption_certificates),
        name=c.name, email=c.email, address=c.address.to_domain() if c.address else None,
        vat_id=c.vat_id, buyer_reference=c.buyer_reference, peppol_id=c.peppol_id)
