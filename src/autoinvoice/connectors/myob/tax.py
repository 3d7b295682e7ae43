"""Our tax outcomes as the tax codes of an Australian MYOB company file.

MYOB is sold in Australia (and New Zealand); a new Australian business has these default tax
codes (myob.com/au/support/myob-business/accounting/financial-control/accounts-list/gst-codes,
"Summary of tax codes"; help.myob.com "Setting up GST codes (Australia)"): ``GST`` "Goods &
Services Tax" 10 %, ``FRE`` "GST-Free" (GST-free sales other than exports), ``EXP`` "Export
Sales", ``ITS`` "Input Taxed Sales" (financial supplies, residential rent), ``N-T`` "No Tax"
(not reportable), plus purchase-side codes (``CAP``, ``INP``…) a sale never uses.

Each invoice line's outcome (its EN 16931 category and rate) maps to one code:

- ``S`` (standard) at the ``GST`` code's rate -> ``GST``; ``S`` at 0 % -> ``FRE``;
- ``Z`` (zero-rated) -> ``FRE``; ``G`` (export) -> ``EXP``; ``E`` (exempt) -> ``ITS``;
  ``O`` (outside the scope of tax) -> ``N-T``;
- ``AE`` (reverse charge) and ``K`` (intra-EU supply) have no Australian sales code, and a
  standard rate other than GST's (8.5 % sales tax, 19 % VAT) has none either: the invoice is
  refused before anything is created (``PermanentError``, code ``no_tax_code``), naming the
  line, its outcome and the codes the file has.

The codes are looked up by ``Code`` in ``GET /GeneralLedger/TaxCode`` (their ``UID`` goes on
the line) and their ``Rate`` checked, so a file whose GST code was edited is caught too.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from autoinvoice.connectors.errors import PermanentError
from autoinvoice.domain.invoice import InvoiceLine, TaxCategory

PLATFORM = "myob"
#: our outcome -> the default Australian MYOB sales tax code
CODES: Mapping[TaxCategory, str] = {
    TaxCategory.STANDARD: "GST", TaxCategory.ZERO: "FRE", TaxCategory.EXPORT: "EXP",
    TaxCategory.EXEMPT: "ITS", TaxCategory.NOT_SUBJECT: "N-T"}
#: the code a new customer card gets as its default selling tax code
CUSTOMER_DEFAULT = "GST"


def code_for(line: InvoiceLine, codes: Mapping[str, Mapping[str, Any]]) -> str:
    """The UID of the file's tax code for ``line`` (``codes``: the file's codes by ``Code``)."""
    percent = (line.tax_rate * 100).normalize()
    code = CODES.get(line.tax_category)
    if line.tax_category is TaxCategory.STANDARD and percent == 0:
        code = "FRE"
    found = codes.get(code) if code else None
    if found is None or Decimal(str(found.get("Rate", 0))).normalize() != percent:
        raise _no_code(line, percent, code, found, codes)
    return str(found["UID"])


def _no_code(line: InvoiceLine, percent: Decimal, code: str | None,
             found: Mapping[str, Any] | None, codes: Mapping[str, Mapping[str, Any]]
             ) -> PermanentError:
    outcome = f"{line.tax_category.value} at {percent:f}%"
    if code is None:
        why = "Australian GST has no sales tax code for it"
    elif found is None:
        why = f"the company file has no {code} tax code"
    else:
        why = f"the file's {code} code is {Decimal(str(found.get('Rate', 0))).normalize():f}%"
    known = ", ".join(sorted(codes)) or "none"
    return PermanentError(
        f"line {line.description!r}: no MYOB tax code for the outcome {outcome} ({why}; the "
        f"file's codes: {known})", platform=PLATFORM, code="no_tax_code")
