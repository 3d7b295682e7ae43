"""EN 16931: the meaning both e-invoice syntaxes share, and validation with the official rules.

The semantic helpers (unit codes, VAT rates as percent, which party identifiers may appear,
the exemption reason a category needs) are used by ``ubl.py`` and ``cii.py`` so the two
syntaxes say the same thing.

``validate(xml, syntax)`` runs the CEN compiled Schematron (XSLT 2.0) from
``../shared/en16931`` with Saxon-HE (``saxonche``) and returns every failed assertion;
``validate_format(xml, fmt)`` runs every rule set that applies to that e-invoice format
(``FORMAT_RULES``: CEN, plus Peppol BIS 3 for UBL, plus KoSIT's XRechnung rules for
XRechnung; the Schematron sources are compiled by ``schematron.py``). The rules directory is
an argument, else the ``AUTOINVOICE_EN16931_RULES`` setting, else ``../shared/en16931``
beside the checkout; when rules are absent the result says "rules not available" instead of
raising. Compiled stylesheets are kept per process: compiling takes a fraction of a second,
running one takes milliseconds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from pathlib import Path

from lxml import etree

from autoinvoice.documents import schematron
from autoinvoice.documents.schematron import RuleSet
from autoinvoice.domain.endpoint import ElectronicAddress, from_vat_id, parse_peppol_id
from autoinvoice.domain.invoice import Invoice, TaxCategory

DEFAULT_RULES_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "en16931"
#: Setting that points elsewhere (read when validating, never at import).
RULES_DIR_ENV = "AUTOINVOICE_EN16931_RULES"

#: BT-23, the Peppol billing process: UBL's ProfileID; in CII, written for XRechnung (which
#: requires it, PEPPOL-EN16931-R001 in KoSIT's rules).
BUSINESS_PROCESS = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"

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


def seller_endpoint(invoice: Invoice) -> ElectronicAddress | None:
    """BT-34: the tenant's Peppol id, else one derived from its VAT id; None when neither
    (never an e-mail: Peppol's EAS list has no ``EM``, PEPPOL-EN16931-CL008)."""
    return _endpoint(invoice.seller.peppol_id, invoice.seller.tax_id)


def buyer_endpoint(invoice: Invoice) -> ElectronicAddress | None:
    """BT-49: the customer's configured Peppol id, else one derived from its VAT id."""
    return _endpoint(invoice.buyer_peppol_id, invoice.customer.vat_id)


def _endpoint(configured: str | None, vat_id: str | None) -> ElectronicAddress | None:
    return parse_peppol_id(configured) if configured else from_vat_id(vat_id)


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


#: The rules each e-invoice format must pass (``../shared/en16931/README.md``): Peppol BIS
#: Billing 3.0 UBL adds the Peppol rules to CEN's; plain CII and Factur-X's CII are held to
#: CEN's; XRechnung (CII or UBL) adds KoSIT's rules, which take in the whitelisted Peppol ones.
FORMAT_RULES: dict[str, tuple[RuleSet, ...]] = {
    "ubl": (RuleSet.CEN_UBL, RuleSet.PEPPOL_UBL),
    "cii": (RuleSet.CEN_CII,),
    "facturx": (RuleSet.CEN_CII,),
    "xrechnung": (RuleSet.CEN_CII, RuleSet.XRECHNUNG_CII),
    "xrechnung-ubl": (RuleSet.CEN_UBL, RuleSet.XRECHNUNG_UBL),
}
_CEN = {Syntax.UBL: RuleSet.CEN_UBL, Syntax.CII: RuleSet.CEN_CII}
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
    """Whether the CEN rules are there (the other rule sets: ``missing_rules``)."""
    return not missing_rules(tuple(_CEN.values()), rules_dir)


def missing_rules(rule_sets: tuple[RuleSet, ...], rules_dir: Path | None = None) -> list[Path]:
    """The source files of ``rule_sets`` that are absent (one per rule set at most)."""
    directory = resolve_rules_dir(rules_dir)
    found = (schematron.sources_present(rule_set, directory) for rule_set in rule_sets)
    return [path for path in found if path is not None]


def validate(xml: bytes, syntax: Syntax, rules_dir: Path | None = None) -> ValidationResult:
    """Every failed CEN EN 16931 assertion of ``xml``; "rules not available" without them."""
    return validate_with(xml, (_CEN[syntax],), rules_dir)


def validate_format(xml: bytes, fmt: str, rules_dir: Path | None = None) -> ValidationResult:
    """Every failed assertion of every rule set that applies to an e-invoice of ``fmt``
    (``FORMAT_RULES``)."""
    return validate_with(xml, FORMAT_RULES[fmt], rules_dir)


def validate_with(xml: bytes, rule_sets: tuple[RuleSet, ...],
                  rules_dir: Path | None = None) -> ValidationResult:
    """``xml`` through each rule set in turn; "rules not available" when any is absent."""
    missing = missing_rules(rule_sets, rules_dir)
    if missing:
        return ValidationResult((), available=False, reason="e-invoice rules not available: "
                                + ", ".join(str(path) for path in missing) + " absent")
    directory = resolve_rules_dir(rules_dir).resolve()
    node = schematron.processor().parse_xml(xml_text=xml.decode("utf-8"))
    findings: list[Finding] = []
    for rule_set in rule_sets:
        svrl: str = schematron.compiled(rule_set, directory).transform_to_string(xdm_node=node)
        findings += parse_svrl(svrl.encode("utf-8"))
    return ValidationResult(tuple(findings))


def parse_svrl(svrl: bytes) -> tuple[Finding, ...]:
    root = etree.fromstring(svrl)
    return tuple(
        Finding(rule=node.get("id", ""), flag=node.get("flag", "fatal"),
                message=" ".join(node.findtext(f"{_SVRL}text", "").split()),
                location=node.get("location", ""))
        for node in root.iter(f"{_SVRL}failed-assert"))
