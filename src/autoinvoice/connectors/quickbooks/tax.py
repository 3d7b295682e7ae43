"""Sales tax on a QuickBooks Online (US) document: which model the company is on, and the
``TxnTaxDetail`` that keeps our tax.

Each line ``TaxCodeRef`` TAX or NON (US pseudo tax codes). Which US model the company
is on is read once from ``GET /preferences``: ``TaxPrefs.PartnerTaxEnabled`` true means
automated sales tax (AST), absent means a company from before AST ("Manage sales tax for US
locales": "US QuickBooks Online companies created after November 10, 2017 manage sales tax
calculations via an automated sales tax (AST) engine ... To determine if the QuickBooks
Online company uses automated sales tax, query the Preferences.TaxPrefs.PartnerTaxEnabled
attribute"; ruckus/quickbooks-ruby#443 quotes Intuit: "If not present in response payload,
the company is not enabled for automated sales tax").
* AST: "Sales tax is determined based on the source and destination address ... The
  destination address is the shipping address provided on the sales transaction", and the
  tax code an app sends "is replaced by the automated sales tax engine recommendation"
  (Invoice entity reference, ``TxnTaxDetail.TxnTaxCodeRef``). So we send ``ShipAddr`` (the
  job's site, else the billing address) and our tax as ``TxnTaxDetail.TotalTax``: "Whenever
  an explicit tax amount is sent in the transaction request the AST engine honors the amount
  and prorates it across tax rates in the AST-assigned tax code" (Intuit developer blog
  2017-12-11, "Using QuickBooks Online API for automated sales tax"; Intuit's hlu2 on
  intuit/QuickBooks-V3-PHP-SDK#199: the override is ``TxnTaxCodeRef`` + ``TotalTax``), with a
  placeholder ``TxnTaxCodeRef`` (Intuit's AST sample: it "has to be provided. However, the
  value does not matter"): an active code with our rate, else any taxable one AST set up;
  we create none ("Create operation ... will be overridden by AST", same blog). Finance.xsd
  ``TxnTaxDetail.UseAutomatedSalesTax`` false asks that our amount stand; whether it does
  also depends on the company's "AllowPartnerTaxOverride" preference, so QuickBooks'
  ``TotalAmt`` is still compared with ours by the pipeline (a difference is held, never
  sent). ``ShipFromAddr`` is the seller's address (the Invoice reference: "If automated sales
  tax is enabled ... this field is required for an accurate sales tax calculation"; the US
  locales page says the source is always the company's legal address: sources disagree,
  sending it is harmless either way). One explicit total covers documents with two rates.
* Manual US model (older companies): the document's single rate is a tax code in
  ``TxnTaxDetail.TxnTaxCodeRef``: an active tax code whose one sales rate equals ours, or one
  created with ``POST /taxservice/taxcode`` on the company's first tax agency. QuickBooks
  computes the tax once per rate on the taxable subtotal (document rounding,
  ``TAX_ROUNDING["quickbooks"]``); a document with two different rates cannot be represented
  and is refused with a ``PermanentError``.
* Sales tax switched off (``TaxPrefs.UsingSalesTax`` false): "TxnTaxDetail is ignored and not
  stored", so a taxed document is refused before anything is created.
* Non-US editions (VAT/GST per line, ``GlobalTaxCalculation``; "Manage sales tax for non-US
  locales") are not supported: a company whose ``CompanyInfo.Country`` is not US is refused
  before anything is created, rather than given US pseudo tax codes it would misread.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from autoinvoice.connectors.base import IdempotencyKeys
from autoinvoice.connectors.errors import PermanentError, ValidationRejected
from autoinvoice.connectors.quickbooks.payloads import (
    PLATFORM,
    Obj,
    decimal_text,
    exact,
    single_tax_rate,
    tax_detail,
)
from autoinvoice.domain.invoice import Invoice

DUPLICATE_NAME = "6240"
Query = Callable[[str, str | None], list[Obj]]
Post = Callable[[str, Obj | None, str], Obj]


class SalesTax:
    """Tax codes of one company, found (or, on the manual model, created) once per rate."""

    def __init__(self, query: Query, post: Post, preferences: Callable[[], Obj],
                 country: Callable[[], str]) -> None:
        self._query, self._post, self._preferences = query, post, preferences
        self._country = country
        self._codes: dict[Decimal, str] = {}
        self._fallback: str | None = None

    def detail(self, document: Invoice, keys: IdempotencyKeys) -> Obj | None:
        """The document's ``TxnTaxDetail`` (None when it has none to carry)."""
        country = self._country()
        if country not in ("US", "USA"):
            raise PermanentError(f"this QuickBooks company is a {country} edition; only the US "
                                 "sales tax model is supported (VAT/GST codes per line are "
                                 "not)", platform=PLATFORM, code="non_us_edition")
        automated = self.automated(document)
        if automated:
            return tax_detail(document, self._placeholder(document), automated=True)
        rate = single_tax_rate(document)
        code = self._code(rate, keys) if rate is not None else None
        return tax_detail(document, code, automated=False)

    def automated(self, document: Invoice) -> bool:
        """Whether the company is on automated sales tax (``TaxPrefs.PartnerTaxEnabled``,
        absent on companies from before AST). A company with sales tax switched off ignores
        ``TxnTaxDetail``: a taxed document cannot be represented there."""
        taxes = self._preferences().get("TaxPrefs") or {}
        taxed = any(line.tax_rate > 0 for line in document.lines)
        if taxes.get("UsingSalesTax") is False and taxed:
            raise PermanentError("sales tax is switched off in this QuickBooks company, so it "
                                 "would drop our tax: set up sales tax in QuickBooks first",
                                 platform=PLATFORM, code="sales_tax_off")
        return taxes.get("PartnerTaxEnabled") is True and taxes.get("UsingSalesTax") is True

    def _placeholder(self, document: Invoice) -> str:
        """Under AST the transaction needs a tax code (AST replaces it by its own): one with
        our single rate when there is one, else any active taxable code AST set up; looked up
        once per rate and connector."""
        rates = {line.tax_rate for line in document.lines if line.tax_rate > 0}
        if len(rates) != 1:
            return self._any_code()
        percent = (rates.pop() * 100).normalize()
        if percent not in self._codes:
            self._codes[percent] = self._find(percent) or self._any_code()
        return self._codes[percent]

    def _any_code(self) -> str:
        if self._fallback is None:
            codes = [c for c in self._query("TaxCode", "Active = true")
                     if c.get("Taxable") and str(c["Id"]) not in ("TAX", "NON")]
            if not codes:
                raise PermanentError("the QuickBooks company has no sales tax code: set up "
                                     "sales tax in QuickBooks first", platform=PLATFORM,
                                     code="no_tax_code")
            self._fallback = str(codes[0]["Id"])
        return self._fallback

    def _code(self, rate: Decimal, keys: IdempotencyKeys) -> str:
        percent = (rate * 100).normalize()
        if percent not in self._codes:
            self._codes[percent] = self._find(percent) or self._create(percent, keys)
        return self._codes[percent]

    def _find(self, percent: Decimal) -> str | None:
        rates = {str(r["Id"]): Decimal(str(r.get("RateValue", "0")))
                 for r in self._query("TaxRate", "Active = true")}
        for code in self._query("TaxCode", "Active = true"):
            details = ((code.get("SalesTaxRateList") or {}).get("TaxRateDetail")) or []
            if code.get("Taxable") and len(details) == 1 and rates.get(
                    str(details[0]["TaxRateRef"]["value"])) == percent:
                return str(code["Id"])
        return None

    def _create(self, percent: Decimal, keys: IdempotencyKeys) -> str:
        agencies = self._query("TaxAgency", None)
        if not agencies:
            raise PermanentError("the QuickBooks company has no tax agency: set up sales tax "
                                 "in QuickBooks first", platform=PLATFORM, code="no_tax_agency")
        name = f"autoinvoice {decimal_text(percent)}%"
        try:
            created = self._post("/taxservice/taxcode", {
                "TaxCode": name,
                "TaxRateDetails": [{"TaxRateName": name, "RateValue": exact(percent),
                                    "TaxAgencyId": str(agencies[0]["Id"]),
                                    "TaxApplicableOn": "Sales"}]},
                keys.for_step(f"taxcode-{decimal_text(percent)}"))
        except ValidationRejected as exc:  # another worker created it meanwhile
            found = self._find(percent) if exc.code == DUPLICATE_NAME else None
            if found is None:
                raise
            return found
        return str(created["TaxCodeId"])
