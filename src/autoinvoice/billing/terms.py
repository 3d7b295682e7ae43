"""The terms a job is billed on, decided before any line: which contract applies and what it
covers, who pays, in which currency and at which prices, and the holds that follow from the
customer's terms (PO, not-to-exceed, unknown customer). Pure, like the engine that uses it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from autoinvoice.billing.phrases import phrase
from autoinvoice.billing.problems import Problem
from autoinvoice.billing.rules import (
    BillingRules,
    Contract,
    ContractKind,
    CustomerTerms,
    PriceEntry,
    PriceKind,
    PriceList,
)
from autoinvoice.domain.job import Customer, Job
from autoinvoice.domain.money import Money, quantize

ZERO = Decimal(0)


def percent(fraction: Decimal) -> str:
    return f"{plain(fraction * 100)} %"


def plain(value: Decimal) -> Decimal:
    """``value`` without trailing zeros and never in exponent form (250, not 2.5E+2)."""
    return value.quantize(Decimal(1)) if value == value.to_integral() else value.normalize()


@dataclass(frozen=True, slots=True)
class Pricing:
    """Prices in the invoice's currency: the customer's price list first, the tenant's
    prices converted at the configured rate otherwise (rounded to the minor unit)."""

    currency: str
    fx: Decimal | None  # units of ``currency`` per tenant unit; None: the tenant's currency
    price_list: PriceList | None

    def tenant_price(self, price: Decimal) -> Decimal:
        return price if self.fx is None else quantize(price * self.fx, self.currency)

    def _listed(self, price: Decimal) -> Decimal:
        """A price from the customer's list: in the list's currency (the tenant's if unset)."""
        in_list_currency = self.price_list is not None and self.price_list.currency == self.currency
        return price if in_list_currency else self.tenant_price(price)

    def grade_rate(self, rules: BillingRules, grade: str) -> Decimal | None:
        if self.price_list is not None and grade in self.price_list.grade_rates:
            return self._listed(self.price_list.grade_rates[grade])
        rate = rules.grade_rates.get(grade)
        return None if rate is None else self.tenant_price(rate)

    def part_price(self, sku: str, entry: PriceEntry) -> tuple[Decimal, Decimal | None]:
        """(price, list price when a discount made it differ)."""
        if self.price_list is not None and sku in self.price_list.prices:
            return self._listed(self.price_list.prices[sku]), None
        base = self.tenant_price(entry.price)
        discount = self.price_list.parts_discount if self.price_list else ZERO
        if discount and entry.kind is PriceKind.PART:
            return base * (1 - discount), base
        return base, None


@dataclass(frozen=True, slots=True)
class Coverage:
    """What is billed at zero on this job, and the words that say why."""

    labor: str | None = None  # on-site labor
    travel: str | None = None  # travel time and mileage
    callout: str | None = None
    parts: str | None = None  # every part (warranty)
    parts_discount: Decimal = ZERO
    discount_reason: str | None = None


# -- deciding the context: customer, contract, currency -----------------------------------


def job_day(job: Job, rules: BillingRules) -> date:
    return job.completed_at.astimezone(rules.timezone or job.completed_at.tzinfo).date()


def applicable_contract(job: Job, rules: BillingRules, day: date, problems: list[Problem]
              ) -> Contract | None:
    """The job's contract when it applies; otherwise None and, when the job names one that
    does not apply, a problem (the client expects coverage: never bill it silently)."""
    if not job.contract_id:
        return None
    contract = rules.contracts.get(job.contract_id)
    if contract is None:
        problems.append(Problem("unknown_contract", f"job names contract {job.contract_id}, "
                                "which is not in the configuration"))
    elif contract.customer != job.customer.id:
        problems.append(Problem("contract_customer_mismatch", f"contract {contract.id} "
                                f"belongs to {contract.customer}, not {job.customer.id}"))
    elif not contract.active_on(day):
        problems.append(Problem("contract_not_active", f"contract {contract.id} runs "
                                f"{contract.start} to {contract.end}; the job was done on {day}"))
    else:
        return contract
    return None


def coverage_of(job: Job, contract: Contract | None, language: str = "en") -> Coverage:
    """What the contract puts at zero (or discounts), with the reasons in ``language``."""
    if contract is None:
        return Coverage()
    if contract.kind is ContractKind.WARRANTY:
        if contract.bill_to:  # billed to the manufacturer at normal prices
            return Coverage()
        why = phrase(language, "warranty", contract=contract.id)
        return Coverage(labor=why, travel=why, callout=why, parts=why)
    why = phrase(language, "covered", contract=contract.id)
    planned = job.service_type in contract.covered_service_types
    return Coverage(
        labor=why if planned else None,
        travel=why if planned and contract.covers_travel else None,
        callout=(phrase(language, "callout_waived", contract=contract.id)
                 if contract.waive_callout else None),
        parts_discount=contract.parts_discount,
        discount_reason=(phrase(language, "discount", contract=contract.id,
                                percent=percent(contract.parts_discount))
                         if contract.parts_discount else None))


def bill_to(job: Job, rules: BillingRules, contract: Contract | None) -> Customer:
    """The party invoiced: the job's customer, or a warranty's manufacturer."""
    if contract is None or not contract.bill_to:
        return job.customer
    who = rules.customers[contract.bill_to]
    # name, e-mail and address were checked when the config was loaded
    assert who.name is not None
    assert who.email is not None
    assert who.address is not None
    return Customer(id=who.id, name=who.name, email=who.email, billing_address=who.address,
                    vat_id=who.vat_id)


def pricing_for(rules: BillingRules, terms: CustomerTerms | None, problems: list[Problem]
             ) -> Pricing:
    price_list = rules.price_lists.get(terms.price_list) if terms and terms.price_list else None
    currency = (terms.currency if terms and terms.currency else None) or (
        price_list.currency if price_list and price_list.currency else None) or rules.currency
    if currency == rules.currency:
        return Pricing(currency, None, price_list)
    fx = rules.fx_rates.get(currency)
    if fx is None:
        problems.append(Problem("no_exchange_rate", f"the customer is billed in {currency} but "
                                f"[tenants.<t>.fx] has no rate for it; built in "
                                f"{rules.currency} until reviewed"))
        return Pricing(rules.currency, None, None)
    return Pricing(currency, fx, price_list)


def limit_problems(total: Money, job: Job, terms: CustomerTerms | None,
                    contract: Contract | None, pricing: Pricing) -> list[Problem]:
    """Not-to-exceed amounts (the job's, the customer's, the contract's): the smallest binds."""
    limits = [(what, limit) for what, limit in (
        ("the job's not-to-exceed", job.not_to_exceed),
        ("the customer's not-to-exceed", terms.not_to_exceed if terms else None),
        (f"contract {contract.id}'s not-to-exceed" if contract else "",
         contract.not_to_exceed if contract else None)) if limit is not None]
    if not limits:
        return []
    what, limit = min(limits, key=lambda x: x[1])
    cap = Money(pricing.tenant_price(limit), total.currency)
    if total.amount <= cap.amount:
        return []
    return [Problem("not_to_exceed", f"the total {total} exceeds {what} of {cap}")]


def customer_problems(job: Job, rules: BillingRules, terms: CustomerTerms | None
                       ) -> list[Problem]:
    problems = []
    if terms is None and rules.require_known_customers:
        problems.append(Problem("customer_unmapped", f"customer {job.customer.id} "
                                f"({job.customer.name}) is not under [tenants.<t>.customers]"))
    if terms is not None and terms.po_required and not job.po_number:
        problems.append(Problem("po_required", f"{job.customer.name} requires a purchase order "
                                "number and the job has none"))
    return problems


def contract_notes(job: Job, contract: Contract | None, language: str = "en"
                   ) -> tuple[str, ...]:
    if contract is None:
        return ()
    if contract.kind is ContractKind.WARRANTY and contract.bill_to:
        site = job.site.name if job.site else job.customer.billing_address.city
        return (phrase(language, "warranty_claim", contract=contract.id,
                       customer=job.customer.name, site=site),)
    key = "warranty_note" if contract.kind is ContractKind.WARRANTY else "contract_note"
    return (phrase(language, key, contract=contract.id),)
