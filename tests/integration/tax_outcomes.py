# ruff: noqa: E501  (the tenant configuration below is TOML, kept as users write it)
"""Generated jobs for four service companies whose rules, between them, make the billing
engine produce every tax outcome it has: sales tax with taxed and untaxed kinds (S, Z), an
exemption certificate (E), VAT with an untaxed kind (E with its reason), reverse charge inside
the EU (AE, the Article 196 note), business customers outside the seller's VAT area (O, the
outside-the-scope note), document and line rounding, reduced rates, contract and warranty
coverage, kits and flat-rate services, sites, POs, signatures, the ``unsigned`` flag and
credit notes.

K (intra-community supply of goods) and G (export of goods) are codes our documents carry
but the engine never chooses (a service company supplies services; parts go with the work):
``with_goods_category`` makes them from an all-AE or all-O invoice, so the store and the
writers are held to every UNCL 5305 code the domain has.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

from hypothesis import strategies as st

from autoinvoice.billing.engine import build_invoice
from autoinvoice.billing.rules import BillingRules
from autoinvoice.config import Config, TenantConfig, billing_rules, parse_config
from autoinvoice.domain.invoice import DocumentKind, Invoice, InvoiceFlag, TaxCategory
from autoinvoice.domain.job import (
    Address,
    Customer,
    Job,
    LaborEntry,
    LaborKind,
    Mileage,
    PartUsage,
    Signature,
    Site,
    Technician,
)

CONFIG = """
[tenants.us]
legal_name = "Prairie Air Compressor Service LLC"
tax_id = "73-7654321"
email = "billing@prairie-air.example"
address = { line1 = "1 Main St", city = "Tulsa", region = "OK", postal_code = "74103", country = "US" }
currency = "USD"
timezone = "America/Chicago"
[tenants.us.rates]
technician = "100.00"
senior = "140.00"
travel_factor = "0.5"
overtime_factor = "1.5"
weekend_factor = "2.0"
emergency_callout_fee = "200.00"
minimum_onsite_hours = "1.0"
mileage_rate = { per = "mi", price = "0.95" }
time_increment_minutes = 15
[tenants.us.tax]
rate = "0"
[tenants.us.tax.jurisdictions.oklahoma]
country = "US"
region = "OK"
rate = "0.085"
labor_taxable = false
parts_taxable = true
[tenants.us.tax.jurisdictions.texas]
country = "US"
region = "TX"
rate = "0.0825"
labor_taxable = true
parts_taxable = true
[tenants.us.pricebook]
"FILTER-A" = { price = "50.00", description = "Air filter element" }
"SEP-1" = { price = "200.00", description = "Separator element" }
"OIL-5L" = { price = "12.35", unit = "l", description = "Compressor oil" }
"VALVE" = { price = "220.00", description = "Inlet valve" }
"GASKET" = { price = "15.00", description = "Gasket" }
"SVC-2000" = { kind = "service", price = "900.00", description = "2000 h service (flat rate)", includes = ["FILTER-A", "SEP-1"] }
"KIT-V" = { kind = "kit", price = "300.00", description = "Inlet valve kit", components = { "VALVE" = "1", "GASKET" = "2" } }
[tenants.us.customers.C-EX]
exemption_certificates = [{ number = "EX-2", regions = ["OK", "TX"], expires = 2027-06-30 }]
[tenants.us.contracts.PM-1]
customer = "C-PM"
start = 2026-01-01
end = 2026-12-31
parts_discount = "0.10"
[tenants.us.contracts.W-1]
customer = "C-W"
kind = "warranty"
start = 2026-01-01
end = 2027-12-31

[tenants.de]
legal_name = "Kompressor-Service Franken GmbH"
tax_id = "DE287654324"
email = "rechnung@kompressor-franken.example"
phone = "+49 911 123456-0"
contact_name = "Petra Vogel"
address = { line1 = "Industriestraße 4", city = "Nürnberg", postal_code = "90431", country = "DE" }
currency = "EUR"
payment_terms_days = 14
timezone = "Europe/Berlin"
payment = { iban = "DE89370400440532013000", bic = "COBADEFFXXX", account_holder = "Kompressor-Service Franken GmbH" }
documents = { language = "de" }
[tenants.de.rates]
technician = "98.00"
senior = "118.00"
mileage_rate = { per = "km", price = "0.60" }
[tenants.de.tax]
regime = "vat"
rate = "0.19"
labor_taxable = true
parts_taxable = true
rounding = "document"
[tenants.de.pricebook]
"6.3465.0" = { price = "41.90", description = "Ölfilter" }
"9.0915.1" = { price = "312.00", description = "Sigma Fluid S-460, 20 l" }
"DOC-1" = { price = "20.00", description = "Betriebsanleitung (Druckschrift)", tax_rate = "0.07" }
[tenants.de.contracts.PM-DE]
customer = "K-PM"
start = 2026-01-01
end = 2026-12-31
covers_travel = true
parts_discount = "0.05"

[tenants.at]
legal_name = "Druckluft Service Wien GmbH"
tax_id = "ATU13585627"
email = "office@dlsw.example"
address = { line1 = "Ringstraße 1", city = "Wien", postal_code = "1010", country = "AT" }
currency = "EUR"
timezone = "Europe/Vienna"
[tenants.at.rates]
technician = "92.00"
[tenants.at.tax]
regime = "vat"
rate = "0.20"
labor_taxable = true
parts_taxable = true
travel_taxable = false
[tenants.at.pricebook]
"6.3465.0" = { price = "43.10", description = "Oil filter" }
"DOC-1" = { price = "18.00", description = "Operating manual (print)", tax_rate = "0.10" }

[tenants.uk]
legal_name = "Midlands Compressed Air Ltd"
tax_id = "GB434031494"
email = "accounts@midlands-air.example"
address = { line1 = "2 Mill Lane", city = "Derby", postal_code = "DE1 1AA", country = "GB" }
currency = "GBP"
timezone = "Europe/London"
[tenants.uk.rates]
technician = "90.00"
senior = "110.00"
travel_billed = false
[tenants.uk.tax]
regime = "vat"
rate = "0.20"
labor_taxable = true
parts_taxable = true
[tenants.uk.pricebook]
"FILTER-A" = { price = "39.99", description = "Air filter element" }
"SEP-1" = { price = "164.50", description = "Separator element" }
"""

TENANTS = parse_config(CONFIG, "tax outcomes").tenants
RULES = {name: billing_rules(t) for name, t in TENANTS.items()}


@dataclass(frozen=True, slots=True)
class Variant:
    """How a tenant's configuration is varied: the documents' language, where tax is rounded,
    and whether labor is taxed (VAT: untaxed labor is exempt, E with its reason; sales tax:
    Oklahoma taxes labor or not, S or Z)."""

    language: str = "en"
    rounding: str = "line"
    labor_taxable: bool = True


variants = st.builds(Variant, st.sampled_from(["en", "de"]),
                     st.sampled_from(["line", "document"]), st.booleans())


@cache
def configured(tenant: str, variant: Variant) -> tuple[TenantConfig, BillingRules]:
    data = tomllib.loads(CONFIG, parse_float=Decimal)
    config = data["tenants"][tenant]
    config.setdefault("documents", {})["language"] = variant.language
    tax = config["tax"]
    tax["rounding"] = variant.rounding
    taxed = tax["jurisdictions"]["oklahoma"] if "jurisdictions" in tax else tax
    taxed["labor_taxable"] = variant.labor_taxable
    tenant_config = Config.model_validate({**data, "source": "variant"}).tenants[tenant]
    return tenant_config, billing_rules(tenant_config)

TULSA = Address("1200 Industrial Pkwy", "Tulsa", "US", "74107", "OK")
HOUSTON = Address("1 Ship Channel", "Houston", "US", "77002", "TX")
BAMBERG = Address("Hopfenweg 12", "Bamberg", "DE", "96047")
VIENNA = Address("Praterstraße 9", "Wien", "AT", "1020")
ZURICH = Address("Bahnhofstrasse 10", "Zürich", "CH", "8001")
LILLE = Address("3 Rue de la Gare", "Lille", "FR", "59000")
DERBY = Address("9 Station Rd", "Derby", "GB", "DE1 2AB")
GRAZ = Address("Murgasse 2", "Graz", "AT", "8010")


def _customer(id_: str, address: Address, vat_id: str | None = None) -> Customer:
    return Customer(id_, f"Client {id_}", f"ap@{id_.lower()}.example", address, vat_id=vat_id)


#: Per tenant, the customers and what the engine makes of them.
CUSTOMERS: dict[str, list[Customer]] = {
    "us": [_customer("C-1", TULSA),  # OK: parts S 8.5 %, labor Z
           _customer("C-TX", HOUSTON),  # TX: everything S 8.25 %
           _customer("C-EX", TULSA),  # a valid certificate on file: every line E
           _customer("C-PM", TULSA),  # maintenance contract: coverage at 0
           _customer("C-W", HOUSTON)],  # warranty: every line covered
    "de": [_customer("K-DE", BAMBERG, "DE811907980"),  # domestic S 19 % / 7 %
           _customer("K-PRIV", BAMBERG),  # a private customer: S
           _customer("K-AT", VIENNA, "ATU12345675"),  # reverse charge AE + Article 196
           _customer("K-CH", ZURICH, "CHE-116.281.710 MWST"),  # outside the scope: O
           _customer("K-PM", BAMBERG, "DE811907980")],  # contract coverage
    "at": [_customer("A-AT", GRAZ, "ATU13585627"),  # domestic S 20 %, travel E + reason
           _customer("A-DE", BAMBERG, "DE811907980"),  # reverse charge AE
           _customer("A-FR", LILLE, "FR44732829320")],  # reverse charge AE
    "uk": [_customer("U-GB", DERBY, "GB980780684"),  # domestic S 20 %
           _customer("U-FR", LILLE, "FR44732829320")],  # outside the UK's scope: O
}
CONTRACTS = {"C-PM": "PM-1", "C-W": "W-1", "K-PM": "PM-DE"}
SITES = {"us": Site("S-9", "Houston plant", HOUSTON), "de": Site("S-4", "Werk 2", BAMBERG)}
BASE = datetime(2026, 11, 16, 6, 0, tzinfo=UTC)  # a Monday
ISSUE = date(2026, 11, 27)

spans = st.tuples(st.integers(0, 6 * 24 * 60), st.integers(15, 10 * 60),
                  st.sampled_from(list(LaborKind)))


#: (tenant, customer id): every customer of every tenant, each a test of its own, so every
#: outcome is reached whatever the generator draws.
SCENARIOS = [(tenant, c.id) for tenant, customers in CUSTOMERS.items() for c in customers]


def customer_of(tenant: str, customer_id: str) -> Customer:
    return next(c for c in CUSTOMERS[tenant] if c.id == customer_id)


@st.composite
def jobs(draw: Any, tenant: str, customer: Customer) -> Job:
    rules = RULES[tenant]
    skus = sorted(rules.pricebook)
    used = draw(st.lists(st.tuples(st.sampled_from(skus), st.integers(1, 4)), min_size=1,
                         max_size=5))
    grades = sorted(rules.grade_rates)
    techs = tuple(Technician(f"T{i}", f"Tech {i}", grades[i % len(grades)]) for i in range(2))
    labor = tuple(LaborEntry(f"T{i % 2}", kind, BASE + timedelta(minutes=s),
                             BASE + timedelta(minutes=s + d))
                  for i, (s, d, kind) in enumerate(draw(st.lists(spans, max_size=3))))
    signed = draw(st.booleans())
    return Job(
        id=f"J-{tenant}", customer=customer, completed_at=BASE + timedelta(days=6),
        service_type=draw(st.sampled_from(["preventive_maintenance", "repair",
                                           "emergency_repair"])),
        summary="Tripped on high temperature", technicians=techs, labor=labor,
        parts=tuple(PartUsage(sku, "", Decimal(q), rules.pricebook[sku].unit)
                    for sku, q in used),
        mileage=Mileage(Decimal(draw(st.integers(0, 90))), rules.mileage_unit)
        if rules.mileage_price and draw(st.booleans()) else None,
        site=SITES.get(tenant) if draw(st.booleans()) else None,
        po_number=draw(st.sampled_from([None, "PO-77813"])),
        contract_id=CONTRACTS.get(customer.id) if draw(st.booleans()) else None,
        completed_by="T0",
        signature=Signature("Dana Reyes", BASE + timedelta(days=6), "on_device",
                            "Maintenance lead") if signed else None)


@st.composite
def documents(draw: Any, tenant: str, customer_id: str) -> tuple[TenantConfig, Invoice]:
    """A tenant's configuration (varied) and a built, numbered invoice of it (unsigned or
    not), or the credit note that credits it."""
    config, rules = configured(tenant, draw(variants))
    job = draw(jobs(tenant, customer_of(tenant, customer_id)))
    flags = frozenset({InvoiceFlag.UNSIGNED}) if job.signature is None and draw(
        st.booleans()) else frozenset()
    invoice = build_invoice(job, rules, tenant=tenant, revision=draw(st.integers(1, 3)),
                            issue_date=ISSUE, flags=flags).invoice
    invoice = invoice.with_number(f"{tenant.upper()}-2026-{draw(st.integers(1, 99999)):05d}")
    if draw(st.booleans()):
        invoice = credit_note(invoice)
    goods = draw(st.sampled_from([None, TaxCategory.INTRA_COMMUNITY, TaxCategory.EXPORT]))
    return config, with_goods_category(invoice, goods) if goods else invoice


def credit_note(invoice: Invoice) -> Invoice:
    """As ``pipeline.credit`` makes it: the credited lines, its own number and dates."""
    assert invoice.number is not None
    issue = ISSUE + timedelta(days=3)
    return dataclasses.replace(invoice, kind=DocumentKind.CREDIT_NOTE, corrects=invoice.number,
                               number="CN-" + invoice.number, issue_date=issue,
                               due_date=issue, flags=frozenset())


_GOODS_REASONS = {TaxCategory.INTRA_COMMUNITY: "Intra-community supply (Article 138)",
                  TaxCategory.EXPORT: "Export outside the EU (Article 146)"}


def with_goods_category(invoice: Invoice, category: TaxCategory) -> Invoice:
    """An all-AE or all-O invoice with every line ``category`` (K or G) instead, and its
    reason; any other invoice unchanged (K and G carry no tax, like AE and O). Goods supplied
    inside the EU say where they went (BR-IC-12): the buyer's address, where there is no
    site."""
    untaxed = {TaxCategory.REVERSE_CHARGE, TaxCategory.NOT_SUBJECT}
    if not invoice.lines or {x.tax_category for x in invoice.lines} - untaxed:
        return invoice
    reason = _GOODS_REASONS[category]
    job = invoice.job
    if category is TaxCategory.INTRA_COMMUNITY and job.site is None:
        job = dataclasses.replace(job, site=Site("DLV", invoice.customer.name,
                                                 invoice.customer.billing_address))
    return dataclasses.replace(
        invoice, job=job, lines=tuple(dataclasses.replace(x, tax_category=category)
                                      for x in invoice.lines),
        exemption_reasons=((category, reason),), notes=(reason,))


def witness(category: TaxCategory) -> Invoice:
    """One fixed invoice whose lines carry ``category`` (whatever the generator draws)."""
    tenant, customer_id, kind = {
        TaxCategory.STANDARD: ("de", "K-DE", LaborKind.ONSITE),
        TaxCategory.ZERO: ("us", "C-1", LaborKind.ONSITE),  # labor untaxed in Oklahoma
        TaxCategory.EXEMPT: ("at", "A-AT", LaborKind.TRAVEL),  # travel untaxed there
        TaxCategory.REVERSE_CHARGE: ("de", "K-AT", LaborKind.ONSITE),
        TaxCategory.NOT_SUBJECT: ("de", "K-CH", LaborKind.ONSITE),
        TaxCategory.INTRA_COMMUNITY: ("at", "A-DE", LaborKind.ONSITE),
        TaxCategory.EXPORT: ("uk", "U-FR", LaborKind.ONSITE),
    }[category]
    rules = RULES[tenant]
    sku = sorted(rules.pricebook)[0]
    job = Job(id=f"J-{category.value}", service_type="repair",
              customer=customer_of(tenant, customer_id), completed_at=BASE + timedelta(hours=6),
              technicians=(Technician("T0", "Tech 0", sorted(rules.grade_rates)[0]),),
              labor=(LaborEntry("T0", kind, BASE + timedelta(hours=2),
                                BASE + timedelta(hours=4)),),
              parts=(PartUsage(sku, "", Decimal(2), rules.pricebook[sku].unit),),
              completed_by="T0", po_number="PO-1")
    invoice = build_invoice(job, rules, tenant=tenant, revision=1, issue_date=ISSUE
                            ).invoice.with_number(f"W-{category.value}")
    if category in _GOODS_REASONS:
        invoice = with_goods_category(invoice, category)
    return invoice
