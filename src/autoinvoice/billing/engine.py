"""Job -> invoice. Pure: the rules and the clock's date come in, an ``Invoice`` and the list
of problems that must hold it for review come out. Every rule and how it rounds is in
docs/billing.md.

Order of lines: labor (per technician, kind and rate window), minimum on-site top-up,
call-out fee, mileage, then the parts in the order the job lists them (a flat-rate service or a
kit where the job lists it, a kit's components right after it).

What a line costs is decided in this order, the first that applies winning: warranty at zero,
contract coverage, flat-rate service inclusion, an agreed price on the job, the customer's
price list, the pricebook (or cost plus markup for a part not in it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from autoinvoice.billing.labor import Window, rounded_seconds, split_seconds
from autoinvoice.billing.phrases import factor_text, phrase
from autoinvoice.billing.problems import Problem
from autoinvoice.billing.rules import (
    BillingRules,
    Contract,
    PriceEntry,
    PriceKind,
)
from autoinvoice.billing.tax import TaxPlan, plan_tax
from autoinvoice.billing.terms import (
    ZERO,
    Coverage,
    Pricing,
    applicable_contract,
    bill_to,
    contract_notes,
    coverage_of,
    customer_problems,
    job_day,
    limit_problems,
    plain,
    pricing_for,
)
from autoinvoice.domain.invoice import Invoice, InvoiceFlag, InvoiceLine, LineKind
from autoinvoice.domain.job import Job, LaborEntry, LaborKind, PartUsage
from autoinvoice.domain.money import Money, quantize

HOURS = Decimal("0.01")
QTY = Decimal("0.001")
KM_PER_MI = Decimal("1.609344")
UNIT_FACTORS: dict[tuple[str, str], Decimal] = {
    ("gal", "l"): Decimal("3.785411784"),
    ("l", "gal"): 1 / Decimal("3.785411784"),
    ("ml", "l"): Decimal("0.001"),
    ("qt", "l"): Decimal("0.946352946"),
}


@dataclass(frozen=True, slots=True)
class BuildResult:
    invoice: Invoice
    problems: tuple[Problem, ...]
    #: What decided the prices and taxes, in plain data (for the audit log): the currency and
    #: price list, the contract and what it covers, and the tax rule with its rate per kind.
    decisions: Mapping[str, Any] = field(default_factory=dict)


def billable_hours(seconds: int) -> Decimal:
    """Worked seconds as hours, rounded half-up to 0.01 h (36 s)."""
    return (Decimal(seconds) / 3600).quantize(HOURS, rounding=ROUND_HALF_UP)


class _Builder:
    def __init__(self, job: Job, rules: BillingRules, pricing: Pricing, tax: TaxPlan,
                 coverage: Coverage) -> None:
        self.job, self.rules, self.pricing, self.tax = job, rules, pricing, tax
        self.coverage = coverage
        self.currency = pricing.currency
        self.lines: list[InvoiceLine] = []
        self.problems: list[Problem] = []
        self.services = self._services()

    def line(self, kind: LineKind, description: str, qty: Decimal, unit: str,
             unit_price: Decimal, *, sku: str | None = None, technician: str | None = None,
             item_rate: Decimal | None = None, list_price: Decimal | None = None,
             coverage: str | None = None, note: str | None = None) -> None:
        """``coverage``: why the line is free (charged 0, ``unit_price`` kept as its list
        price, so the client sees the value); ``note``: why a charged price is below
        ``list_price`` (a discount)."""
        if coverage is not None:
            list_price, unit_price = unit_price, ZERO
        amount = Money(qty * unit_price, self.currency)
        rate, category = self.tax.for_line(kind, item_rate)
        self.lines.append(InvoiceLine(
            kind=kind, description=description, quantity=qty, unit=unit,
            unit_price=plain(unit_price), amount=amount, tax_rate=rate,
            tax=amount.times(rate), sku=sku, technician=technician, tax_category=category,
            list_unit_price=None if list_price is None else plain(list_price),
            coverage=coverage or note))

    def problem(self, code: str, message: str) -> None:
        self.problems.append(Problem(code, message))

    def say(self, key: str, **values: object) -> str:
        """Invoice text in the tenant's language (``billing.phrases``)."""
        return phrase(self.rules.language, key, **values)

    def factor(self, value: Decimal) -> str:
        return factor_text(self.rules.language, value)

    # -- flat-rate services --------------------------------------------------------------
    def _services(self) -> list[tuple[str, PriceEntry]]:
        return [(p.sku, entry) for p in self.job.parts
                if (entry := self.rules.pricebook.get(p.sku)) and entry.kind is PriceKind.SERVICE]

    def _service_covering(self, *, travel: bool = False, sku: str | None = None) -> str | None:
        for service_sku, entry in self.services:
            if ((sku is not None and sku in entry.includes)
                    or (sku is None and (entry.includes_travel if travel
                                         else entry.replaces_labor))):
                return self.say("included_in", service=entry.description or service_sku)
        return None

    # -- labor ---------------------------------------------------------------------------
    def _windows(self, entry: LaborEntry) -> list[tuple[Window, int]]:
        r = self.rules
        if entry.start is None or entry.end is None:
            # Plain hours carry no time of day: billed at the normal rate (docs/billing.md).
            assert entry.hours is not None
            seconds = int(entry.hours * 3600)
            return [(Window.NORMAL, rounded_seconds(seconds, r.time_increment_minutes,
                                                    r.time_rounding))]
        worked = int((entry.end - entry.start).total_seconds())
        end = entry.start + timedelta(
            seconds=rounded_seconds(worked, r.time_increment_minutes, r.time_rounding))
        return list(split_seconds(entry.start, end, r.day_start, r.day_end, r.timezone,
                                  r.holidays))

    def _factor(self, window: Window, travel: bool) -> Decimal:
        if travel and not self.rules.travel_overtime:
            return Decimal(1)
        r = self.rules
        return {Window.NORMAL: Decimal(1), Window.OVERTIME: r.overtime_factor,
                Window.WEEKEND: r.weekend_factor, Window.HOLIDAY: r.holiday_rate_factor}[window]

    def labor(self) -> Decimal:
        """Adds labor lines; returns billed (not covered) on-site hours."""
        seconds: dict[tuple[str, LaborKind, Window], int] = defaultdict(int)
        for entry in self.job.labor:
            if entry.kind is LaborKind.TRAVEL and not self.rules.travel_billed:
                continue
            for window, secs in self._windows(entry):
                seconds[(entry.technician, entry.kind, window)] += secs
        onsite = ZERO
        for (tech_id, kind, window), secs in seconds.items():
            tech = self.job.technician(tech_id)
            rate = self.pricing.grade_rate(self.rules, tech.grade) if tech else None
            if tech is None or rate is None:
                grade = tech.grade if tech else "?"
                self.problem("unknown_grade", f"no hourly rate for technician {tech_id} "
                             f"(grade {grade!r}); add it under [tenants.<t>.rates]")
                continue
            hours = billable_hours(secs)
            if self._labor_line(tech.name, tech.grade, kind, window, hours, rate, tech_id):
                onsite += hours if kind is LaborKind.ONSITE else 0
        return onsite

    def _labor_line(self, name: str, grade: str, kind: LaborKind, window: Window,
                    hours: Decimal, rate: Decimal, tech_id: str) -> bool:
        """Adds one labor line; returns True when it is charged (not covered)."""
        travel = kind is LaborKind.TRAVEL
        factor = self._factor(window, travel)
        price = rate * factor * (self.rules.travel_factor if travel else 1)
        what = self.say("travel" if travel else "onsite")
        extra = "" if factor == 1 else self.say("window", window=self.say(f"window.{window}"),
                                                factor=self.factor(factor))
        if travel and self.rules.travel_factor != 1:
            extra += self.say("travel_factor", factor=self.factor(self.rules.travel_factor))
        coverage = (self.coverage.travel or self._service_covering(travel=True) if travel
                    else self.coverage.labor or self._service_covering())
        self.line(LineKind.TRAVEL if travel else LineKind.LABOR,
                  self.say("labor_line", what=what, name=name, grade=grade, extra=extra),
                  hours, "h", price,
                  technician=tech_id, coverage=coverage)
        return coverage is None

    def minimum_onsite(self, onsite: Decimal) -> None:
        minimum = self.rules.minimum_onsite_hours
        if (onsite >= minimum or not self.job.labor or self.coverage.labor
                or self._service_covering()):
            return
        if not any(e.kind is LaborKind.ONSITE for e in self.job.labor):
            return  # travel only (a wasted trip) is billed as travel, not topped up
        lead = self._lead_rate()
        if lead is None:
            return
        self.line(LineKind.LABOR, self.say("minimum", onsite=self.factor(onsite),
                                           minimum=self.factor(minimum)),
                  minimum - onsite, "h", lead)

    def _lead_rate(self) -> Decimal | None:
        tech = self.job.technician(self.job.completed_by or "") or (
            self.job.technicians[0] if self.job.technicians else None)
        return self.pricing.grade_rate(self.rules, tech.grade) if tech else None

    # -- fees, mileage ---------------------------------------------------------------------
    def callout(self) -> None:
        fee = self.rules.emergency_callout_fee
        if fee and self.job.service_type in self.rules.emergency_service_types:
            self.line(LineKind.FEE, self.say("callout"), Decimal(1), "ea",
                      self.pricing.tenant_price(fee), coverage=self.coverage.callout)

    def mileage(self) -> None:
        m, price = self.job.mileage, self.rules.mileage_price
        if m is None or not m.distance or price is None:
            return
        unit = self.rules.mileage_unit
        distance = m.distance
        if m.unit != unit:
            factor = KM_PER_MI if (m.unit, unit) == ("mi", "km") else 1 / KM_PER_MI
            distance = (distance * factor).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
        self.line(LineKind.MILEAGE, self.say("mileage", distance=self.factor(m.distance),
                                             unit=m.unit), distance, unit,
                  self.pricing.tenant_price(price),
                  coverage=self.coverage.travel or self._service_covering(travel=True))

    # -- parts, services, kits -------------------------------------------------------------
    def parts(self) -> None:
        for part in self.job.parts:
            entry = self.rules.pricebook.get(part.sku)
            if entry is None:
                self._noncatalogue(part)
            elif entry.kind is PriceKind.KIT:
                self._kit(part, entry)
            else:
                self._catalogue(part, entry)

    def _catalogue(self, part: PartUsage, entry: PriceEntry) -> None:
        qty = self._convert(part.quantity, part.unit, entry.unit, part.sku)
        kind = LineKind.SERVICE if entry.kind is PriceKind.SERVICE else LineKind.PART
        description = entry.description or part.description
        if part.unit_price is not None:  # agreed for this job: beats every list
            self.line(kind, description, qty, entry.unit, part.unit_price, sku=part.sku,
                      item_rate=entry.tax_rate)
            return
        price, list_price = self.pricing.part_price(part.sku, entry)
        coverage = self.coverage.parts or (
            None if kind is LineKind.SERVICE else self._service_covering(sku=part.sku))
        note = None
        if coverage is None and kind is LineKind.PART and self.coverage.parts_discount:
            list_price = list_price or price
            price, note = price * (1 - self.coverage.parts_discount), self.coverage.discount_reason
        self.line(kind, description, qty, entry.unit, price, sku=part.sku,
                  item_rate=entry.tax_rate, list_price=list_price, coverage=coverage, note=note)

    def _kit(self, part: PartUsage, kit: PriceEntry) -> None:
        """The kit at its own price, then each component at zero showing its list price."""
        self._catalogue(part, kit)
        for sku, per_kit in kit.components:
            component = self.rules.pricebook[sku]
            self.line(LineKind.PART, component.description or sku, per_kit * part.quantity,
                      component.unit, self.pricing.tenant_price(component.price), sku=sku,
                      item_rate=kit.tax_rate, coverage=self.say("kit_part", sku=part.sku))

    def _noncatalogue(self, part: PartUsage) -> None:
        """Not in the pricebook: an agreed price, or our cost plus the tenant's markup; with
        neither, shown at 0 and held (never guessed)."""
        description = part.description or part.sku
        markup = self.rules.noncatalogue_markup
        if part.unit_price is not None:
            price = part.unit_price
        elif part.unit_cost is not None and markup is not None:
            cost = quantize(part.unit_cost * (1 + markup), self.rules.currency)
            price = self.pricing.tenant_price(cost)
            description = self.say("non_catalogue", description=description)
        else:
            self.problem("unknown_sku", f"part {part.sku} ({part.description}) is not in "
                         "the pricebook and has no agreed price or cost; priced at 0 until "
                         "reviewed")
            price = ZERO
        self.line(LineKind.PART, description, part.quantity, part.unit, price, sku=part.sku,
                  coverage=self.coverage.parts)

    def _convert(self, qty: Decimal, unit: str, priced_in: str, sku: str) -> Decimal:
        if unit == priced_in:
            return qty
        factor = UNIT_FACTORS.get((unit, priced_in))
        if factor is None:
            self.problem("unit_mismatch", f"part {sku} used in {unit!r} but priced per "
                         f"{priced_in!r}; no conversion known")
            return qty
        return (qty * factor).quantize(QTY, rounding=ROUND_HALF_UP)


def build_invoice(job: Job, rules: BillingRules, *, tenant: str, revision: int,
                  issue_date: date, flags: frozenset[InvoiceFlag] = frozenset()) -> BuildResult:
    problems: list[Problem] = []
    day = job_day(job, rules)
    contract = applicable_contract(job, rules, day, problems)
    customer = bill_to(job, rules, contract)
    terms = rules.customers.get(customer.id)
    problems += customer_problems(job, rules, rules.customers.get(job.customer.id))
    pricing = pricing_for(rules, terms, problems)
    # Tax follows where the work was done, even when someone else pays (a manufacturer).
    site = job.site.address if job.site else job.customer.billing_address
    tax = plan_tax(rules.tax, rules.seller, customer, terms, site, day)
    problems += tax.problems
    builder = _Builder(job, rules, pricing, tax, coverage_of(job, contract, rules.language))
    onsite = builder.labor()
    builder.minimum_onsite(onsite)
    builder.callout()
    builder.mileage()
    builder.parts()
    notes = tax.notes + contract_notes(job, contract, rules.language)
    invoice = Invoice(
        tenant=tenant, job_id=job.id, revision=revision, currency=pricing.currency,
        seller=rules.seller, customer=customer, job=job, lines=tuple(builder.lines),
        issue_date=issue_date, due_date=issue_date + timedelta(days=rules.payment_terms_days),
        payment_terms_days=rules.payment_terms_days, flags=flags, notes=notes,
        tax_rounding=rules.tax.rounding, supply_date=day,
        exemption_reasons=tax.exemption_reasons,
        buyer_reference=terms.buyer_reference if terms else None,
        buyer_peppol_id=terms.peppol_id if terms else None)
    total = invoice.total  # derived from the lines on every read: read once
    problems += builder.problems
    problems += limit_problems(total, job, terms, contract, pricing)
    if _not_positive(total, invoice):
        problems.append(Problem("non_positive_total", f"the invoice total is {total}"))
    return BuildResult(invoice, tuple(problems), _decisions(pricing, contract, job, tax))


def _decisions(pricing: Pricing, contract: Contract | None, job: Job, tax: TaxPlan
               ) -> dict[str, Any]:
    coverage = coverage_of(job, contract, "en")  # for the audit log, not the client
    return {
        "pricing": {"currency": pricing.currency,
                    "fx_rate": str(pricing.fx) if pricing.fx is not None else None,
                    "price_list": pricing.price_list.name if pricing.price_list else None},
        "contract": None if contract is None else {
            "id": contract.id, "kind": contract.kind.value,
            "covers": {k: v for k, v in (("labor", coverage.labor), ("travel", coverage.travel),
                                         ("callout", coverage.callout),
                                         ("parts", coverage.parts)) if v},
            "parts_discount": str(coverage.parts_discount)},
        "tax": {"rule": tax.basis,
                "per_line_kind": {kind.value: {"rate": str(rate), "category": category.value}
                                  for kind, (rate, category) in tax.table.items()},
                "pricebook_rate_for": sorted(k.value for k in tax.item_rates),
                "notes": list(tax.notes)},
    }


def _not_positive(total: Money, invoice: Invoice) -> bool:
    """A zero total is fine when every line is covered on purpose (warranty, contract)."""
    if total.amount < 0:
        return True
    return total.amount == 0 and not all(line.coverage for line in invoice.lines)
