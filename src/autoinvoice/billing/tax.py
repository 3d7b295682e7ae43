"""Tax decided once per job: which rate and category each kind of line gets, the legal notes
the document must carry, and the problems that hold the invoice instead of a guess.

(Interface fixed; implementation in progress.)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from autoinvoice.billing.problems import Problem
from autoinvoice.billing.rules import CustomerTerms, TaxRules
from autoinvoice.domain.invoice import LineKind, Seller, TaxCategory
from autoinvoice.domain.job import Address, Customer


@dataclass(frozen=True, slots=True)
class TaxPlan:
    """What ``plan_tax`` decided for one job; ``for_line`` answers per line."""

    def for_line(self, kind: LineKind, item_rate: Decimal | None = None
                 ) -> tuple[Decimal, TaxCategory]:
        raise NotImplementedError

    notes: tuple[str, ...] = ()
    exemption_reasons: tuple[tuple[TaxCategory, str], ...] = ()
    problems: tuple[Problem, ...] = ()


def plan_tax(rules: TaxRules, seller: Seller, customer: Customer, terms: CustomerTerms | None,
             service_address: Address, day: date) -> TaxPlan:
    raise NotImplementedError
