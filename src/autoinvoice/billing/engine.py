"""Job -> invoice. Pure: the rules and the clock's date come in, an ``Invoice`` and the list
of problems that must hold it for review come out. Every rounding rule is in docs/billing.md.

Order of lines: labor (per technician, kind and rate window), minimum on-site top-up,
call-out fee, mileage, parts.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from autoinvoice.billing.labor import Window, split_seconds
from autoinvoice.billing.problems import Problem
from autoinvoice.billing.rules import BillingRules
from autoinvoice.domain.invoice import Invoice, InvoiceFlag, InvoiceLine, LineKind
from autoinvoice.domain.job import Job, LaborEntry, LaborKind
from autoinvoice.domain.money import Money

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


def plain(value: Decimal) -> Decimal:
    """``value`` without trailing zeros and never in exponent form (250, not 2.5E+2)."""
    return value.quantize(Decimal(1)) if value == value.to_integral() else value.normalize()


def billable_hours(seconds: int) -> Decimal:
    """Worked seconds as hours, rounded half-up to 0.01 h (36 s)."""
    return (Decimal(seconds) / 3600).quantize(HOURS, rounding=ROUND_HALF_UP)


class _Builder:
    def __init__(self, job: Job, rules: BillingRules) -> None:
        self.job, self.rules = job, rules
        self.lines: list[InvoiceLine] = []
        self.problems: list[Problem] = []

    def line(self, kind: LineKind, description: str, qty: Decimal, unit: str,
             unit_price: Decimal, *, taxable: bool, sku: str | None = None,
             technician: str | None = None) -> None:
        amount = Money(qty * unit_price, self.rules.currency)
        rate = self.rules.tax.rate if taxable else Decimal(0)
        self.lines.append(InvoiceLine(
            kind=kind, description=description, quantity=qty, unit=unit,
            unit_price=plain(unit_price), amount=amount,
            tax_rate=rate, tax=amount.times(rate), sku=sku, technician=technician))

    def problem(self, code: str, message: str) -> None:
        self.problems.append(Problem(code, message))

    # -- labor ---------------------------------------------------------------------------
    def _windows(self, entry: LaborEntry) -> list[tuple[Window, int]]:
        if entry.start is None or entry.end is None:
            # Plain hours carry no time of day: billed at the normal rate (docs/billing.md).
            assert entry.hours is not None
            return [(Window.NORMAL, int(entry.hours * 3600))]
        r = self.rules
        return list(split_seconds(entry.start, entry.end, r.day_start, r.day_end, r.timezone))

    def _factor(self, window: Window) -> Decimal:
        return {Window.NORMAL: Decimal(1), Window.OVERTIME: self.rules.overtime_factor,
                Window.WEEKEND: self.rules.weekend_factor}[window]

    def labor(self) -> Decimal:
        """Adds labor lines; returns billed on-site hours."""
        seconds: dict[tuple[str, LaborKind, Window], int] = defaultdict(int)
        for entry in self.job.labor:
            for window, secs in self._windows(entry):
                seconds[(entry.technician, entry.kind, window)] += secs
        onsite = Decimal(0)
        for (tech_id, kind, window), secs in seconds.items():
            tech = self.job.technician(tech_id)
            rate = self.rules.grade_rates.get(tech.grade) if tech else None
            if tech is None or rate is None:
                grade = tech.grade if tech else "?"
                self.problem("unknown_grade", f"no hourly rate for technician {tech_id} "
                             f"(grade {grade!r}); add it under [tenants.<t>.rates]")
                continue
            hours = billable_hours(secs)
            onsite += hours if kind is LaborKind.ONSITE else 0
            self._labor_line(tech.name, tech.grade, kind, window, hours, rate, tech_id)
        return onsite

    def _labor_line(self, name: str, grade: str, kind: LaborKind, window: Window,
                    hours: Decimal, rate: Decimal, tech_id: str) -> None:
        factor = self._factor(window)
        travel = kind is LaborKind.TRAVEL
        price = rate * factor * (self.rules.travel_factor if travel else 1)
        what = "Travel" if travel else "On-site labor"
        extra = "" if window is Window.NORMAL else f", {window} x{plain(factor)}"
        if travel and self.rules.travel_factor != 1:
            extra += f", travel x{plain(self.rules.travel_factor)}"
        tax = self.rules.tax
        self.line(LineKind.TRAVEL if travel else LineKind.LABOR,
                  f"{what} - {name} ({grade}{extra})", hours, "h", price,
                  taxable=tax.travel_taxable if travel else tax.labor_taxable,
                  technician=tech_id)

    def minimum_onsite(self, onsite: Decimal) -> None:
        minimum = self.rules.minimum_onsite_hours
        lead = self._lead_rate()
        if onsite >= minimum or lead is None or not self.job.labor:
            return
        self.line(LineKind.LABOR, f"Minimum on-site charge: top-up from {onsite} h to "
                  f"{plain(minimum)} h", minimum - onsite, "h", lead,
                  taxable=self.rules.tax.labor_taxable)

    def _lead_rate(self) -> Decimal | None:
        tech = self.job.technician(self.job.completed_by or "") or (
            self.job.technicians[0] if self.job.technicians else None)
        return self.rules.grade_rates.get(tech.grade) if tech else None

    # -- fees, mileage, parts ----------------------------------------------------------
    def callout(self) -> None:
        fee = self.rules.emergency_callout_fee
        if fee and self.job.service_type in self.rules.emergency_service_types:
            self.line(LineKind.FEE, "Emergency call-out fee", Decimal(1), "ea", fee,
                      taxable=self.rules.tax.fees_taxable)

    def mileage(self) -> None:
        m, price = self.job.mileage, self.rules.mileage_price
        if m is None or not m.distance or price is None:
            return
        unit = self.rules.mileage_unit
        distance = m.distance
        if m.unit != unit:
            factor = KM_PER_MI if (m.unit, unit) == ("mi", "km") else 1 / KM_PER_MI
            distance = (distance * factor).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
        self.line(LineKind.MILEAGE, f"Mileage ({plain(m.distance)} {m.unit})",
                  distance, unit, price, taxable=self.rules.tax.fees_taxable)

    def parts(self) -> None:
        for part in self.job.parts:
            entry = self.rules.pricebook.get(part.sku)
            if entry is None:
                self.problem("unknown_sku", f"part {part.sku} ({part.description}) is not in "
                             "the pricebook; priced at 0 until reviewed")
                self.line(LineKind.PART, part.description or part.sku, part.quantity,
                          part.unit, Decimal(0), taxable=self.rules.tax.parts_taxable,
                          sku=part.sku)
                continue
            qty = self._convert(part.quantity, part.unit, entry.unit, part.sku)
            self.line(LineKind.PART, entry.description or part.description, qty, entry.unit,
                      entry.price, taxable=self.rules.tax.parts_taxable, sku=part.sku)

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
    builder = _Builder(job, rules)
    onsite = builder.labor()
    builder.minimum_onsite(onsite)
    builder.callout()
    builder.mileage()
    builder.parts()
    invoice = Invoice(
        tenant=tenant, job_id=job.id, revision=revision, currency=rules.currency,
        seller=rules.seller, customer=job.customer, job=job, lines=tuple(builder.lines),
        issue_date=issue_date, due_date=issue_date + timedelta(days=rules.payment_terms_days),
        payment_terms_days=rules.payment_terms_days, flags=flags)
    if invoice.total.amount <= 0:
        builder.problem("non_positive_total", f"the invoice total is {invoice.total}")
    return BuildResult(invoice, tuple(builder.problems))
