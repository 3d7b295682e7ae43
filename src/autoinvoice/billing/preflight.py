"""The last look at a built, numbered invoice before it leaves for the platform. Pure: the
invoice (and the number series it should belong to) in, findings out; nothing is fixed here.

An ERROR means the document must not be sent as it is (it would be wrong, or an EN 16931
validator would reject it); a WARNING is for the person reviewing it. ``field`` names the
invoice field in dotted form (``seller.tax_id``, ``lines[3].amount``).

Codes, errors: ``no_lines``, ``number_missing``, ``number_format``, ``issue_date_missing``,
``due_before_issue``, ``currency_unknown``, ``currency_mismatch``, ``line_amount_mismatch``,
``line_tax_mismatch``, ``subtotal_mismatch``, ``tax_breakdown_mismatch``,
``seller_name_missing``, ``seller_address_missing``, ``seller_vat_id_missing``,
``seller_vat_id_invalid``, ``buyer_name_missing``, ``buyer_country_missing``,
``buyer_vat_id_missing``, ``buyer_vat_id_invalid``, ``reverse_charge_note_missing``,
``exemption_reason_missing``, ``standard_rate_zero``, ``zero_category_with_rate``,
``credit_note_without_reference``.
Warnings: ``supply_after_issue``, ``seller_tax_id_missing``, ``buyer_email_missing``,
``cross_border_without_reverse_charge``, ``po_missing``, ``zero_price_without_reason``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from string import Formatter

from autoinvoice.billing.vatid import EU_MEMBER_STATES, is_valid_vat_id
from autoinvoice.billing.vatid import country as _country
from autoinvoice.domain.invoice import DocumentKind, Invoice, InvoiceLine, TaxCategory, TaxRounding
from autoinvoice.domain.money import KNOWN_CURRENCIES, Money, money_sum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Finding:
    """``code`` is stable (the module docstring lists them); ``message`` is for a person."""

    severity: Severity
    code: str
    field: str
    message: str


Check = Callable[[Invoice], tuple[Finding, ...]]

_VAT_AREA = EU_MEMBER_STATES | {"GB"}

AE = TaxCategory.REVERSE_CHARGE
#: Categories that carry no tax, so the document must say why (BR-E-10, BR-AE-10, BR-IC-10,
#: BR-G-10, BR-O-10). AE's reason is checked with the rest of the reverse charge.
_NEED_REASON = (TaxCategory.EXEMPT, TaxCategory.INTRA_COMMUNITY, TaxCategory.EXPORT,
                TaxCategory.NOT_SUBJECT)
_UNTAXED = frozenset({TaxCategory.ZERO, TaxCategory.EXEMPT, AE, TaxCategory.INTRA_COMMUNITY,
                      TaxCategory.EXPORT, TaxCategory.NOT_SUBJECT})


def preflight(invoice: Invoice, *, series_template: str | None = None) -> tuple[Finding, ...]:
    """Every finding, in a stable order; ``series_template`` (``"NW-{year}-{seq:05d}"``) is
    the series the number must have the shape of, unchecked when None."""
    findings = [*_lines_present(invoice), *_number(invoice, series_template)]
    for check in _CHECKS:
        findings.extend(check(invoice))
    return tuple(findings)


def blocking(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    """The findings that stop the invoice from being sent."""
    return tuple(f for f in findings if f.severity is Severity.ERROR)


def _error(code: str, field: str, message: str) -> Finding:
    return Finding(Severity.ERROR, code, field, message)


def _warning(code: str, field: str, message: str) -> Finding:
    return Finding(Severity.WARNING, code, field, message)


def _blank(text: str | None) -> bool:
    return not (text or "").strip()


def _lines_present(invoice: Invoice) -> tuple[Finding, ...]:
    if invoice.lines:
        return ()
    return (_error("no_lines", "lines", "the invoice has no lines"),)


# ---- number -----------------------------------------------------------------------------------

def _number(invoice: Invoice, template: str | None) -> tuple[Finding, ...]:
    if _blank(invoice.number):
        return (_error("number_missing", "number", "the invoice has no number"),)
    if template is None:
        return ()
    pattern = series_pattern(template)
    if pattern is None:
        return (_error("number_format", "number", f"the series template {template!r} has a "
                       "placeholder other than {year}, {month} or {seq:0Nd}; cannot check"),)
    if pattern.fullmatch(invoice.number or ""):
        return ()
    return (_error("number_format", "number",
                   f"number {invoice.number!r} does not have the shape of series {template!r}"),)


_SPEC = re.compile(r"(?:0(?P<width>\d+))?d?")


def series_pattern(template: str) -> re.Pattern[str] | None:
    """The regex of the numbers ``template`` makes; None for a placeholder we cannot read."""
    try:
        parsed = list(Formatter().parse(template))
    except ValueError:
        return None
    parts = []
    for literal, name, spec, _conversion in parsed:
        parts.append(re.escape(literal))
        if name is not None:
            piece = _placeholder_pattern(name, spec or "")
            if piece is None:
                return None
            parts.append(piece)
    return re.compile("".join(parts))


def _placeholder_pattern(name: str, spec: str) -> str | None:
    """A zero-padded width is a minimum: the sequence outgrows ``{seq:05d}`` at 100000."""
    match = _SPEC.fullmatch(spec)
    if match is None:
        return None
    width = match["width"]
    if name == "year":
        return r"\d{4}"
    if name in ("month", "seq"):
        if width:
            return rf"\d{{{int(width)},}}"
        return r"\d{1,2}" if name == "month" else r"\d+"
    return None


# ---- dates and currency -----------------------------------------------------------------------

def _dates(invoice: Invoice) -> tuple[Finding, ...]:
    issued: date | None = invoice.issue_date  # typed as always set; a document without one is void
    if issued is None:
        return (_error("issue_date_missing", "issue_date", "the invoice has no issue date"),)
    findings = []
    if invoice.due_date < issued:
        findings.append(_error("due_before_issue", "due_date", f"due date {invoice.due_date} "
                               f"is before the issue date {issued}"))
    supplied = invoice.supply_date or invoice.job.completed_at.date()
    if supplied > issued:
        findings.append(_warning("supply_after_issue", "supply_date", f"the service is dated "
                                 f"{supplied}, after the issue date {issued}"))
    return tuple(findings)


def _currency(invoice: Invoice) -> tuple[Finding, ...]:
    if invoice.currency in KNOWN_CURRENCIES:
        return ()
    return (_error("currency_unknown", "currency",
                   f"{invoice.currency!r} is not an ISO 4217 currency we know"),)


# ---- totals -----------------------------------------------------------------------------------

def _totals(invoice: Invoice) -> tuple[Finding, ...]:
    """Sums across currencies cannot be formed: with a stray currency only lines are checked."""
    mixed = _line_currencies(invoice)
    per_line = _line_amounts(invoice) + _line_taxes(invoice)
    if mixed or invoice.currency not in KNOWN_CURRENCIES:
        return mixed + per_line
    return per_line + _subtotal(invoice) + _breakdown(invoice)


def _line_currencies(invoice: Invoice) -> tuple[Finding, ...]:
    return tuple(
        _error("currency_mismatch", f"lines[{i}].{name}", f"line {i + 1} is in "
               f"{money.currency}, the invoice in {invoice.currency}")
        for i, line in enumerate(invoice.lines)
        for name, money in (("amount", line.amount), ("tax", line.tax))
        if money.currency != invoice.currency)


def _line_amounts(invoice: Invoice) -> tuple[Finding, ...]:
    findings = []
    for i, line in enumerate(invoice.lines):
        expected = Money(line.quantity * line.unit_price, line.amount.currency)
        if line.amount != expected:
            findings.append(_error("line_amount_mismatch", f"lines[{i}].amount",
                                   f"line {i + 1}: {line.quantity} × {line.unit_price} is "
                                   f"{expected}, the line says {line.amount}"))
    return tuple(findings)


def _line_taxes(invoice: Invoice) -> tuple[Finding, ...]:
    """Per document, a line's tax is only indicative: the breakdown carries the tax."""
    if invoice.tax_rounding is not TaxRounding.LINE:
        return ()
    findings = []
    for i, line in enumerate(invoice.lines):
        expected = line.amount.times(line.tax_rate)
        if line.tax != expected:
            findings.append(_error("line_tax_mismatch", f"lines[{i}].tax",
                                   f"line {i + 1}: {line.amount} at {line.tax_rate} is "
                                   f"{expected} tax, the line says {line.tax}"))
    return tuple(findings)


def _subtotal(invoice: Invoice) -> tuple[Finding, ...]:
    expected = money_sum([line.amount for line in invoice.lines], invoice.currency)
    if invoice.subtotal == expected:
        return ()
    return (_error("subtotal_mismatch", "subtotal", f"the lines add up to {expected}, "
                   f"the subtotal says {invoice.subtotal}"),)


Group = tuple[Decimal, TaxCategory]


def _breakdown(invoice: Invoice) -> tuple[Finding, ...]:
    """One group per (rate, category) of the lines, with the base and tax recomputed here."""
    expected = _expected_groups(invoice)
    breakdown = invoice.tax_breakdown()
    if {(t.rate, t.category) for t in breakdown} != set(expected):
        return (_error("tax_breakdown_mismatch", "tax_breakdown",
                       "the tax breakdown's rates and categories are not those of the lines"),)
    findings = []
    for i, entry in enumerate(breakdown):
        base, tax = expected[(entry.rate, entry.category)]
        if (entry.taxable_amount, entry.tax) != (base, tax):
            findings.append(_error(
                "tax_breakdown_mismatch", f"tax_breakdown[{i}]", f"{entry.category} at "
                f"{entry.rate}: expected {base} taxed {tax}, found {entry.taxable_amount} "
                f"taxed {entry.tax}"))
    return tuple(findings) + _breakdown_total(invoice)


def _expected_groups(invoice: Invoice) -> dict[Group, tuple[Money, Money]]:
    """(base, tax) per group: per line the lines' taxes add up, per document the base is
    taxed once."""
    members: dict[Group, list[InvoiceLine]] = {}
    for line in invoice.lines:
        members.setdefault((line.tax_rate, line.tax_category), []).append(line)
    out = {}
    for (rate, category), lines in members.items():
        base = money_sum([x.amount for x in lines], invoice.currency)
        tax = (base.times(rate) if invoice.tax_rounding is TaxRounding.DOCUMENT
               else money_sum([x.tax for x in lines], invoice.currency))
        out[(rate, category)] = (base, tax)
    return out


def _breakdown_total(invoice: Invoice) -> tuple[Finding, ...]:
    summed = money_sum([t.tax for t in invoice.tax_breakdown()], invoice.currency)
    if summed == invoice.tax_total:
        return ()
    return (_error("tax_breakdown_mismatch", "tax_total", f"the tax breakdown adds up to "
                   f"{summed}, the tax total says {invoice.tax_total}"),)


# ---- seller and buyer -------------------------------------------------------------------------





def _seller(invoice: Invoice) -> tuple[Finding, ...]:
    seller, address = invoice.seller, invoice.seller.address
    findings = []
    if _blank(seller.legal_name):
        findings.append(_error("seller_name_missing", "seller.legal_name",
                               "the seller's legal name is missing"))
    for name, value in (("line1", address.line1), ("city", address.city),
                        ("country", address.country)):
        if _blank(value):
            findings.append(_error("seller_address_missing", f"seller.address.{name}",
                                   f"the seller's address has no {name}"))
    return tuple(findings)


def _seller_tax_id(invoice: Invoice) -> tuple[Finding, ...]:
    """A VAT invoice must show the seller's VAT id; a US invoice reads better with its EIN."""
    country = _country(invoice.seller.address.country)
    tax_id = (invoice.seller.tax_id or "").strip()
    if country not in _VAT_AREA:
        return () if tax_id else (_warning("seller_tax_id_missing", "seller.tax_id",
                                           "the seller's tax id is not on the invoice"),)
    if not tax_id:
        return (_error("seller_vat_id_missing", "seller.tax_id",
                       f"a seller in {country} must show its VAT id"),)
    if not is_valid_vat_id(tax_id, country):
        return (_error("seller_vat_id_invalid", "seller.tax_id",
                       f"{tax_id} is not a valid {country} VAT id"),)
    return ()


def _buyer(invoice: Invoice) -> tuple[Finding, ...]:
    customer = invoice.customer
    findings = []
    if _blank(customer.name):
        findings.append(_error("buyer_name_missing", "customer.name",
                               "the customer's name is missing"))
    if _blank(customer.billing_address.country):
        findings.append(_error("buyer_country_missing", "customer.billing_address.country",
                               "the customer's billing address has no country"))
    if _blank(customer.email):
        findings.append(_warning("buyer_email_missing", "customer.email",
                                 "the customer has no e-mail address to send the invoice to"))
    return tuple(findings)


# ---- tax categories ---------------------------------------------------------------------------

def _categories(invoice: Invoice) -> set[TaxCategory]:
    return {line.tax_category for line in invoice.lines}


def _reasons(invoice: Invoice) -> dict[TaxCategory, str]:
    return {c: r for c, r in invoice.exemption_reasons if not _blank(r)}


def _category_rates(invoice: Invoice) -> tuple[Finding, ...]:
    """BR-S-05: a standard-rated line has a rate; the untaxed categories have none."""
    findings = []
    for i, line in enumerate(invoice.lines):
        field = f"lines[{i}].tax_rate"
        if line.tax_category is TaxCategory.STANDARD and line.tax_rate <= 0:
            findings.append(_error("standard_rate_zero", field, f"line {i + 1} is standard "
                                   f"rated (S) at {line.tax_rate}; S needs a rate above zero"))
        elif line.tax_category in _UNTAXED and line.tax_rate != 0:
            findings.append(_error("zero_category_with_rate", field, f"line {i + 1} is in "
                                   f"category {line.tax_category} but taxed at {line.tax_rate}"))
    return tuple(findings)


def _exemption_reasons(invoice: Invoice) -> tuple[Finding, ...]:
    present, reasons = _categories(invoice), _reasons(invoice)
    return tuple(
        _error("exemption_reason_missing", f"exemption_reasons.{category}",
               f"lines in category {category} carry no tax, and the invoice does not say why")
        for category in _NEED_REASON if category in present and category not in reasons)


def _reverse_charge(invoice: Invoice) -> tuple[Finding, ...]:
    """The buyer accounts for the VAT, so its VAT id and the legal note must be on the
    document (Art. 226 (4) and (11a) VAT Directive)."""
    if AE not in _categories(invoice):
        return ()
    findings = list(_buyer_vat_id(invoice))
    if not any(not _blank(note) for note in invoice.notes):
        findings.append(_error("reverse_charge_note_missing", "notes",
                               "a reverse-charge invoice must carry the reverse-charge note"))
    if AE not in _reasons(invoice):
        findings.append(_error("reverse_charge_note_missing", f"exemption_reasons.{AE}",
                               "a reverse-charge invoice must state why no VAT is charged"))
    return tuple(findings)


def _buyer_vat_id(invoice: Invoice) -> tuple[Finding, ...]:
    vat_id = (invoice.customer.vat_id or "").strip()
    country = _country(invoice.customer.billing_address.country)
    if not vat_id:
        return (_error("buyer_vat_id_missing", "customer.vat_id",
                       "reverse charge needs the customer's VAT id"),)
    if not is_valid_vat_id(vat_id, country):
        return (_error("buyer_vat_id_invalid", "customer.vat_id",
                       f"{vat_id} is not a valid {country} VAT id"),)
    return ()


def _cross_border(invoice: Invoice) -> tuple[Finding, ...]:
    """A business in another member state is normally reverse charged (Art. 44 and 196)."""
    home = _country(invoice.seller.address.country)
    buyer = _country(invoice.customer.billing_address.country)
    business = not _blank(invoice.customer.vat_id)
    categories = _categories(invoice)  # empty: ``no_lines`` says it already
    if (home in EU_MEMBER_STATES and buyer in EU_MEMBER_STATES and buyer != home and business
            and categories and AE not in categories):
        return (_warning("cross_border_without_reverse_charge", "lines",
                         f"a business customer in {buyer} is charged {home} VAT instead of "
                         "reverse charge"),)
    return ()


# ---- credit notes and hints -------------------------------------------------------------------

def _credit_note(invoice: Invoice) -> tuple[Finding, ...]:
    if invoice.kind is not DocumentKind.CREDIT_NOTE or not _blank(invoice.corrects):
        return ()
    return (_error("credit_note_without_reference", "corrects",
                   "a credit note must name the invoice it credits"),)


def _po(invoice: Invoice) -> tuple[Finding, ...]:
    """Contract clients usually pay only against their purchase order."""
    if invoice.job.contract_id is None or not _blank(invoice.po_number):
        return ()
    return (_warning("po_missing", "po_number", f"the job falls under contract "
                     f"{invoice.job.contract_id} but carries no PO number"),)


def _zero_prices(invoice: Invoice) -> tuple[Finding, ...]:
    return tuple(
        _warning("zero_price_without_reason", f"lines[{i}].unit_price",
                 f"line {i + 1} ({line.description}) is free and does not say why")
        for i, line in enumerate(invoice.lines)
        if line.unit_price == 0 and _blank(line.coverage))


_CHECKS: tuple[Check, ...] = (
    _dates, _currency, _totals, _seller, _seller_tax_id, _buyer, _category_rates,
    _exemption_reasons, _reverse_charge, _cross_border, _credit_note, _po, _zero_prices)
