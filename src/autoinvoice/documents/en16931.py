"""EN 16931: the meaning both e-invoice syntaxes share, and validation with the official rules.

The semantic helpers (unit codes, VAT rates as percent, which party identifiers may appear,
the exemption reason a category needs) are used by ``ubl.py`` and ``cii.py`` so the two
syntaxes say the same thing.

``validate(xml, syntax)`` runs the CEN compiled Schematron (XSLT 2.0) from
``../shared/en16931`` with Saxon-HE (``saxonche``) and returns every failed assertion. The
rules directory is an argument, else the ``AUTOINVOICE_EN16931_RULES`` setting, else
``../shared/en16931`` beside the checkout; when it
is absent the result says "rules not available" instead of raising. Compiled stylesheets are
cached per path: compiling takes most of a second, running one takes milliseconds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

from lxml import etree

from autoinvoice.domain.invoice import Invoice, TaxCategory

DEFAULT_RULES_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "en16931"
#: Setting that points elsewhere (read when validating, never at import).
RULES_DIR_ENV = "AUTOINVOICE_EN16931_RULES"

#: UN/ECE Recommendation 20 codes for the units our lines carry.
_UNIT_CODES = {
    "h": "HUR", "hr": "HUR", "hour": "HUR", "hours": "HUR", "min": "MIN",
    "ea": "C62", "pc": "H87", "pcs": "H87", "piece": "H87", "set": "SET", "kit": "SET",
    "l": "LTR", "ltr": "LTR", "ml": "MLT", "kg": "KGM", "g": "GRM", "m": "MTR",
    "km": "KMT", "mi": "SMI", "gal": "GLL", "day": "DAY", "d": "DAY",
}

#: A category without tax must say why (BR-E-10, BR-AE-10, BR-IC-10, BR-G-10, BR-O-10).
_DEFAULT_REASONS = {
    TaxCategory.EXEMPT: "Exempt from tax",
    TaxCategory.REVERSE_CHARGE: "Reverse charge",
    TaxCategory.INTRA_COMMUNITY: "Intra-community supply",
    TaxCategory.EXPORT: "Export outside the EU",
    TaxCategory.NOT_SUBJECT: "Not subject to VAT",
}


def unit_code(unit: str) -> str:
    """Our unit (``h``, ``ea``, ``l``, ``mi``...) as a Rec 20 code; C62 ("one") otherwise."""
    return _UNIT_CODES.get(unit.strip().lower(), "C62")


def percent(rate: Decimal) -> str:
    """0.19 -> "19", 0.085 -> "8.5", 0 -> "0" (never exponent notation)."""
    return f"{(rate * 100).normalize():f}"


def decimal_text(value: Decimal) -> str:
    return f"{value:f}"


def exemption_reason(invoice: Invoice, category: TaxCategory) -> str | None:
    """The reason text a category must carry (ours, else a plain default); None for S and Z,
    which must not carry one (BR-S-10, BR-Z-10)."""
    if category not in _DEFAULT_REASONS:
        return None
    return dict(invoice.exemption_reasons).get(category) or _DEFAULT_REASONS[category]


def is_vat_id(tax_id: str | None) -> bool:
    """A VAT identifier starts with its ISO country prefix (BR-CO-09); anything else (a US
    EIN) is a tax registration or legal registration identifier instead."""
    return bool(tax_id) and len(tax_id or "") > 2 and (tax_id or "")[:2].isalpha()


def vat_ids_allowed(invoice: Invoice) -> bool:
    """"Not subject to VAT" forbids the seller's and buyer's VAT identifiers (BR-O-02)."""
    return all(line.tax_category is not TaxCategory.NOT_SUBJECT for line in invoice.lines)


def seller_vat_id(invoice: Invoice) -> str | None:
    tax_id = invoice.seller.tax_id
    return tax_id if is_vat_id(tax_id) and vat_ids_allowed(invoice) else None


def seller_registration(invoice: Invoice) -> str | None:
    """A non-VAT tax id (BT-32 and BT-30: it identifies the seller, BR-CO-26)."""
    tax_id = invoice.seller.tax_id
    return tax_id if tax_id and not is_vat_id(tax_id) else None


def seller_identifier(invoice: Invoice) -> str | None:
    """BT-29: where BR-O-02 suppresses the seller's VAT id, it still identifies the seller
    (BR-CO-26 wants BT-29, BT-30 or BT-31)."""
    tax_id = invoice.seller.tax_id
    return tax_id if is_vat_id(tax_id) and not vat_ids_allowed(invoice) else None


def buyer_vat_id(invoice: Invoice) -> str | None:
    return invoice.customer.vat_id if vat_ids_allowed(invoice) else None


def buyer_reference(invoice: Invoice) -> str:
    """BT-10: the buyer's routing reference (a Leitweg-ID) where configured, else the PO
    where the client gave one, else our job (work order) id."""
    return invoice.buyer_reference or invoice.po_number or invoice.job_id


def payment_means_code(invoice: Invoice) -> str | None:
    """BT-81 (UNCL 4461): 58 (SEPA credit transfer) with an IBAN; 1 ("instrument not
    defined") for instructions without one, as 30 and 58 require an account (BR-61); no
    payment means (BG-16 is optional in EN 16931) when the seller gave none."""
    payment = invoice.seller.payment
    if payment is None:
        return None
    return "58" if payment.iban else "1"


def compact_iban(iban: str) -> str:
    """BT-84 as machines read it: no spaces, upper case."""
    return "".join(iban.split()).upper()


def payment_terms(invoice: Invoice, *, with_due_date: bool = True) -> str:
    """BT-20 as one text (XRechnung allows one, BR-DE-18-a), with the seller's payment note.
    CII carries the due date apart (BT-9), so it leaves it out here."""
    note = invoice.seller.payment.note if invoice.seller.payment else None
    terms = f"Net {invoice.payment_terms_days} days"
    if with_due_date:
        terms += f", due {invoice.due_date.isoformat()}"
    return f"{terms}. {note}" if note else terms


def is_xrechnung(specification: str) -> bool:
    return ":xeinkauf.de:kosit:xrechnung_" in specification


def breakdown_percent(category: TaxCategory, rate: Decimal, specification: str) -> str | None:
    """BT-119 as text. Category O carries no rate in EN 16931 (as on its lines, BR-O-05),
    but XRechnung requires BT-119 in every breakdown (BR-DE-14): 0 there."""
    if category is not TaxCategory.NOT_SUBJECT:
        return percent(rate)
    return "0" if is_xrechnung(specification) else None


def document_number(invoice: Invoice) -> str:
    return invoice.number or f"DRAFT-{invoice.job_id}"


def document_note(invoice: Invoice) -> str | None:
    """BT-22 as one text: Peppol BIS allows one note per document (PEPPOL-EN16931-R002)."""
    return "\n".join(invoice.notes) or None


# --- validation -----------------------------------------------------------------------------


class Syntax(StrEnum):
    UBL = "ubl"
    CII = "cii"


_STYLESHEETS = {Syntax.UBL: "ubl/EN16931-UBL-validation.xslt",
                Syntax.CII: "cii/EN16931-CII-validation.xslt"}
_SVRL = "{http://purl.oclc.org/dsdl/svrl}"


@dataclass(frozen=True, slots=True)
class Finding:
    """One failed assertion: rule id (BR-CO-15), flag (fatal/warning), message, XPath."""

    rule: str
    flag: str
    message: str
    location: str

    @property
    def fatal(self) -> bool:
        return self.flag == "fatal"


@dataclass(frozen=True, slots=True)
class ValidationResult:
    """``available`` is False when the rules could not be found; nothing was checked then."""

    findings: tuple[Finding, ...]
    available: bool = True
    reason: str = ""

    @property
    def fatal(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.fatal)

    @property
    def passed(self) -> bool:
        return self.available and not self.fatal


def resolve_rules_dir(rules_dir: Path | None = None) -> Path:
    """The argument, else the ``AUTOINVOICE_EN16931_RULES`` setting, else ../shared/en16931."""
    configured = os.environ.get(RULES_DIR_ENV)
    return rules_dir or (Path(configured) if configured else DEFAULT_RULES_DIR)


def rules_available(rules_dir: Path | None = None) -> bool:
    directory = resolve_rules_dir(rules_dir)
    return all((directory / name).is_file() for name in _STYLESHEETS.values())


def validate(xml: bytes, syntax: Syntax, rules_dir: Path | None = None) -> ValidationResult:
    """Every failed EN 16931 assertion of ``xml``; "rules not available" without the rules."""
    stylesheet = resolve_rules_dir(rules_dir) / _STYLESHEETS[syntax]
    if not stylesheet.is_file():
        return ValidationResult((), available=False,
                                reason=f"EN 16931 rules not available: {stylesheet} is absent")
    svrl = _run(stylesheet.resolve(), xml)
    return ValidationResult(parse_svrl(svrl))


def parse_svrl(svrl: bytes) -> tuple[Finding, ...]:
    root = etree.fromstring(svrl)
    return tuple(
        Finding(rule=node.get("id", ""), flag=node.get("flag", "fatal"),
                message=" ".join(node.findtext(f"{_SVRL}text", "").split()),
                location=node.get("location", ""))
        for node in root.iter(f"{_SVRL}failed-assert"))


@cache
def _processor() -> Any:
    # imported on use: SaxonC starts a runtime; the package ships no type hints
    from saxonche import PySaxonProcessor  # type: ignore[import-not-found, unused-ignore]

    return PySaxonProcessor(license=False)


@cache
def _compiled(stylesheet: Path) -> Any:
    return _processor().new_xslt30_processor().compile_stylesheet(
        stylesheet_file=str(stylesheet))


def _run(stylesheet: Path, xml: bytes) -> bytes:
    node = _processor().parse_xml(xml_text=xml.decode("utf-8"))
    out: str = _compiled(stylesheet).transform_to_string(xdm_node=node)
    return out.encode("utf-8")
