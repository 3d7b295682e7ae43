"""The company's own tax setup, as Business Central computes tax from it.

BC takes no percentage: a sales line names a **tax group** (``taxCode``: a VAT product posting
group in W1/EU companies, a tax group in US ones) and the document takes the **tax area** of its
customer (a VAT business posting group such as DOMESTIC/EU/EXPORT, or a US tax area); BC finds
the rate and calculation type from the pair (VAT Posting Setup; US tax details), so "Reverse
Charge VAT" for an EU customer puts 0 % on the invoice. Sources: API v2.0 resources
``dynamics_taxgroup`` and ``dynamics_taxarea`` (``taxType`` "Sales Tax" or "VAT"),
``dynamics_customer`` (``taxAreaId``, ``taxLiable``), the base application's "Tax Group
Buffer" / "Tax Area Buffer" tables behind those pages, "VAT Posting Setup" and the Sales Header
"Tax Area Code" field ("in combination with the Tax Group Code on the sales line, to determine
the sales tax %").

``CompanyTaxSetup`` holds the tenant's mapping of our tax outcomes (``platform.tax_groups``,
``platform.tax_areas``; keys as in ``domain.tax_outcome``) and the company's codes, read once
(``GET taxGroups`` / ``GET taxAreas``):

- ``problems()``: every mapped code the company lacks, naming the key and listing the
  company's real codes (``autoinvoice connect`` and the start of worker / serve call it);
- ``place_customer(customer_id, document)``: before BC copies the customer onto an invoice or
  credit memo, the customer is put in the tax area of the document's outcome (``PATCH
  customers({id})`` with ``If-Match``; US: ``taxLiable`` for a taxed sale) -- only when it is
  not there already.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from autoinvoice.connectors.business_central.payloads import PLATFORM, Obj
from autoinvoice.connectors.errors import PermanentError
from autoinvoice.domain.invoice import Invoice
from autoinvoice.domain.tax_outcome import document_outcome, keys_for, matching_key

SALES_TAX = "Sales Tax"


class CompanyTaxSetup:
    def __init__(self, tax_groups: Mapping[str, str], tax_areas: Mapping[str, str],
                 get: Callable[[str], Obj], patch: Callable[[str, Obj, Obj], None]) -> None:
        self._maps = {"tax_groups": dict(tax_groups), "tax_areas": dict(tax_areas)}
        self._get, self._patch = get, patch
        self._codes: dict[str, dict[str, Obj]] = {}

    def problems(self) -> list[str]:
        out = []
        for key, kind in (("tax_groups", "taxGroups"), ("tax_areas", "taxAreas")):
            known = self.codes(kind)
            out += [unknown_code(key, outcome, code, known)
                    for outcome, code in self._maps[key].items() if code not in known]
        return out

    def place_customer(self, customer_id: str, document: Invoice) -> None:
        areas_map = self._maps["tax_areas"]
        outcome = document_outcome((line.tax_category.value, line.tax_rate)
                                   for line in document.lines)
        if not areas_map or outcome is None:
            return
        key = matching_key(areas_map, *outcome)
        if key is None:
            exact, general = keys_for(*outcome)
            raise PermanentError(f"platform.tax_areas maps no tax area for {exact}: add "
                                 f"\"{exact}\" or \"{general}\" with one of the company's "
                                 "tax areas", platform=PLATFORM, code="unmapped_tax_outcome")
        areas = self.codes("taxAreas")
        area = areas.get(areas_map[key])
        if area is None:
            raise PermanentError(unknown_code("tax_areas", key, areas_map[key], areas),
                                 platform=PLATFORM, code="unknown_tax_area")
        path = f"/customers({customer_id})"
        current = self._get(path)
        change: Obj = {}
        if current.get("taxAreaId") != area["id"]:
            change["taxAreaId"] = area["id"]
        if area.get("taxType") == SALES_TAX and current.get("taxLiable") is not (
                outcome[0] == "S"):
            change["taxLiable"] = outcome[0] == "S"
        if change:
            self._patch(path, current, change)

    def codes(self, kind: str) -> dict[str, Obj]:
        """The company's ``taxGroups`` or ``taxAreas`` by code (read once)."""
        if kind not in self._codes:
            found = self._get(f"/{kind}").get("value")
            if not isinstance(found, list):
                raise PermanentError(f"Business Central answered GET {kind} without a 'value' "
                                     "list", platform=PLATFORM, code="bad_response")
            self._codes[kind] = {str(x.get("code")): x for x in found if isinstance(x, dict)}
        return self._codes[kind]


def unknown_code(key: str, outcome: str, code: str, known: Mapping[str, Any]) -> str:
    what = "tax group" if key == "tax_groups" else "tax area"
    return (f"platform.{key}.\"{outcome}\" = {code!r}: the company has no such {what} (its "
            f"{what}s: {', '.join(sorted(known)) or 'none'})")
