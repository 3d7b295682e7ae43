"""A Zoho Books organisation's taxes (``GET /settings/taxes``, read once) and the tax each of
our invoice lines goes on: ``platform.tax_rates`` first (an outcome -> the organisation's tax
id or name), else a positive rate's tax by percentage (created with ``POST /settings/taxes``
when missing), else at 0 % in a VAT edition the organisation's zero rate or exempt tax
(``vat.zero_rate``; created as "Zero Rate" when it has none), and no tax for out-of-scope (O)
lines or a 0 % line of an edition without VAT treatments. Sources: ``vat`` and
zoho.com/books/api/v3/taxes ("List taxes", "Create a tax")."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal

from autoinvoice.connectors.errors import PermanentError
from autoinvoice.connectors.zoho_books import vat
from autoinvoice.connectors.zoho_books.bodies import PLATFORM, Obj, tax_body
from autoinvoice.domain.invoice import InvoiceLine, TaxCategory
from autoinvoice.domain.tax_outcome import lookup


class OrganisationTaxes:
    """``listed`` reads the organisation's taxes, ``create`` posts a new one (its answer's
    ``tax``); ``mapping`` is the tenant's ``platform.tax_rates``."""

    def __init__(self, listed: Callable[[], list[Obj]], create: Callable[[Obj], Obj],
                 mapping: Mapping[str, str]) -> None:
        self._listed, self._create, self.mapping = listed, create, mapping
        self._all: list[Obj] | None = None

    def all(self) -> list[Obj]:
        if self._all is None:
            self._all = list(self._listed())
        return self._all

    def problems(self) -> list[str]:
        """``platform.tax_rates`` entries naming a tax the organisation does not have."""
        known = {str(t["tax_id"]) for t in self.all()} | {str(t.get("tax_name"))
                                                          for t in self.all()}
        return [f"platform.tax_rates.\"{key}\" = {code!r}: this Zoho Books organisation has "
                f"no such tax (its taxes: {self.names()})"
                for key, code in self.mapping.items() if code not in known]

    def for_line(self, line: InvoiceLine, vat_edition: bool) -> str | None:
        """The tax id of ``line`` (None: no tax)."""
        category, rate = line.tax_category.value, line.tax_rate
        mapped = lookup(self.mapping, category, rate)
        if mapped is not None:
            return self._mapped(mapped, category, rate)
        if rate == 0:
            return self._zero(category) if vat_edition else None
        percentage = (rate * 100).normalize()
        found = [t for t in self.all() if t.get("tax_type", "tax") == "tax"
                 and Decimal(str(t["tax_percentage"])).normalize() == percentage]
        return str((found or [self._new(tax_body(percentage))])[0]["tax_id"])

    def names(self) -> str:
        return ", ".join(f"{t.get('tax_name')} ({t['tax_id']})" for t in self.all()) or "none"

    def _mapped(self, code: str, category: str, rate: Decimal) -> str:
        for tax in self.all():
            if code in (str(tax["tax_id"]), str(tax.get("tax_name"))):
                return str(tax["tax_id"])
        raise PermanentError(f"platform.tax_rates maps {category} at {rate * 100:f}% to "
                             f"{code!r}, which this Zoho Books organisation does not have "
                             f"(its taxes: {self.names()})", platform=PLATFORM,
                             code="no_tax_rate")

    def _zero(self, category: str) -> str | None:
        if category == TaxCategory.NOT_SUBJECT:
            return None
        found = vat.zero_rate(self.all(), category)
        if found is None:
            found = self._new({**tax_body(Decimal(0)), "tax_name": "Zero Rate"})
        return str(found["tax_id"])

    def _new(self, body: Obj) -> Obj:
        created = self._create(body)
        self.all().append(created)
        return created
