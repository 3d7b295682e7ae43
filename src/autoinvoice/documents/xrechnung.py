"""XRechnung 3.0: the German CIUS of EN 16931, in CII (the default) or UBL.

The documents are ``cii.py`` and ``ubl.py`` with XRechnung's specification identifier
(BT-24); the one difference in content is that every VAT breakdown carries a rate (BR-DE-14,
0 for category O). XRechnung adds its own rules (BR-DE-*) to EN 16931. They are not in
``../shared/en16931``; the ones here are read from KoSIT's schematron for XRechnung 3.0,
https://github.com/itplr-kosit/xrechnung-schematron
(``src/validation/schematron/{cii,ubl}/XRechnung-*-validation.sch`` and ``common.sch``),
plus the two Peppol rules XRechnung 3.0 applies to electronic addresses
(PEPPOL-EN16931-R010 buyer BT-49, R020 seller BT-34).

``xrechnung_problems(invoice)`` checks the data before any XML exists: rule id and message
for each rule our data would break, so the caller holds the invoice instead of sending it.
``xml_problems(xml)`` checks the same rules on a produced document (UBL or CII).

Buyer reference (BT-10, BR-DE-15): XRechnung requires it. Public buyers need their
Leitweg-ID (``Invoice.buyer_reference``); a private buyer may agree on any reference, so
the client's PO stands in. Our own job id, the generic fallback of the other formats, is
not the buyer's reference: without a Leitweg-ID or a PO the invoice is held (BR-DE-15).

Not checked (we never write the data they govern): cards and direct debit (BR-DE-24,
-25, -29 to -31), Skonto lines beyond their prefix (BR-DE-18), attachments (BR-DE-22),
corrected invoices 384 (BR-DE-26), the extension (BR-DEX-*) and CVD rules.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from lxml import etree

from autoinvoice.documents import en16931 as sem
from autoinvoice.documents.cii import to_cii
from autoinvoice.documents.en16931 import Syntax
from autoinvoice.documents.ubl import to_ubl
from autoinvoice.domain.invoice import Invoice, TaxCategory

XRECHNUNG_CIUS = "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0"

#: KoSIT's patterns (common.sch): a telephone has three digits, an e-mail one clean "@".
_PHONE = re.compile(r".*([0-9].*){3,}.*")
_EMAIL = re.compile(
    r"^[a-zA-Z0-9!#$%&\"*+/=?^_`{|}~-]+(\.[a-zA-Z0-9!#$%&\"*+/=?^_`{|}~-]+)*"
    r"@([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?\.)+[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$")
_SKONTO = re.compile(r"#(SKONTO)#TAGE=([0-9]+#PROZENT=[0-9]+\.[0-9]{2})"
                     r"(#BASISBETRAG=-?[0-9]+\.[0-9]{2})?#$")
#: Categories that need the seller's VAT id or tax registration (BR-DE-16).
_TAXED = {TaxCategory.STANDARD, TaxCategory.ZERO, TaxCategory.EXEMPT,
          TaxCategory.REVERSE_CHARGE, TaxCategory.INTRA_COMMUNITY, TaxCategory.EXPORT}

Problem = tuple[str, str]


def to_xrechnung(invoice: Invoice, syntax: Syntax = Syntax.CII) -> bytes:
    """The invoice (or credit note) as XRechnung 3.0 XML in the given syntax."""
    if syntax is Syntax.UBL:
        return to_ubl(invoice, customization_id=XRECHNUNG_CIUS)
    return to_cii(invoice, guideline_id=XRECHNUNG_CIUS)


def xrechnung_problems(invoice: Invoice) -> list[Problem]:
    """Every XRechnung rule the invoice's data would break, as (rule id, message)."""
    checks: list[Callable[[Invoice], list[Problem]]] = [
        _payment, _seller, _seller_contact, _buyer, _delivery, _tax_ids, _reference]
    return [problem for check in checks for problem in check(invoice)]


def _missing(*rules: tuple[str, bool, str]) -> list[Problem]:
    return [(rule, message) for rule, ok, message in rules if not ok]


def _payment(invoice: Invoice) -> list[Problem]:
    payment = invoice.seller.payment
    iban = sem.compact_iban(payment.iban) if payment and payment.iban else None
    terms = sem.payment_terms(invoice).splitlines()
    return _missing(
        ("BR-DE-1", payment is not None,
         "payment instructions (BG-16) are required: set the tenant's payment IBAN"),
        ("BR-DE-19", iban is None or iban_is_valid(iban),
         f"payment account (BT-84) {iban} is not a valid IBAN"),
        ("BR-DE-18", all(_SKONTO.match(x.strip()) for x in terms if x.strip().startswith("#")),
         "a payment terms line (BT-20) starting with '#' must be a Skonto line"))


def _seller(invoice: Invoice) -> list[Problem]:
    seller = invoice.seller
    return _missing(
        ("BR-DE-3", bool(seller.address.city.strip()), "seller city (BT-37) is required"),
        ("BR-DE-4", bool(seller.address.postal_code.strip()),
         "seller post code (BT-38) is required"),
        ("PEPPOL-EN16931-R020", bool(seller.email),
         "seller electronic address (BT-34, the tenant's e-mail) is required"))


def _seller_contact(invoice: Invoice) -> list[Problem]:
    seller = invoice.seller
    name, phone, email = seller.contact_name, seller.phone, seller.email
    return _missing(
        ("BR-DE-2", bool(name or phone or email), "seller contact (BG-6) is required"),
        ("BR-DE-5", bool(name and name.strip()),
         "seller contact point (BT-41) is required: set the tenant's contact_name"),
        ("BR-DE-6", bool(phone and phone.strip()),
         "seller contact telephone (BT-42) is required: set the tenant's phone"),
        ("BR-DE-7", bool(email and email.strip()),
         "seller contact e-mail (BT-43) is required: set the tenant's email"),
        ("BR-DE-27", not phone or bool(_PHONE.match(phone.strip())),
         f"seller telephone (BT-42) {phone!r} should have at least three digits"),
        ("BR-DE-28", not email or bool(_EMAIL.match(email.strip())),
         f"seller e-mail (BT-43) {email!r} is not a well-formed address"))


def _buyer(invoice: Invoice) -> list[Problem]:
    customer = invoice.customer
    address = customer.billing_address
    return _missing(
        ("BR-DE-8", bool(address.city.strip()), "buyer city (BT-52) is required"),
        ("BR-DE-9", bool(address.postal_code.strip()), "buyer post code (BT-53) is required"),
        ("PEPPOL-EN16931-R010", bool(customer.email.strip()),
         "buyer electronic address (BT-49, the client's e-mail) is required"))


def _delivery(invoice: Invoice) -> list[Problem]:
    site = invoice.job.site
    if site is None:
        return []
    return _missing(
        ("BR-DE-10", bool(site.address.city.strip()), "deliver-to city (BT-77) is required"),
        ("BR-DE-11", bool(site.address.postal_code.strip()),
         f"deliver-to post code (BT-78) of site {site.id} is required"))


def _tax_ids(invoice: Invoice) -> list[Problem]:
    taxed = any(line.tax_category in _TAXED for line in invoice.lines)
    identified = bool(sem.seller_vat_id(invoice) or sem.seller_registration(invoice))
    return _missing(("BR-DE-16", not taxed or identified,
                     "seller VAT id (BT-31) or tax registration (BT-32) is required"))


def _reference(invoice: Invoice) -> list[Problem]:
    return _missing(("BR-DE-15", bool(invoice.buyer_reference or invoice.po_number),
                     "buyer reference (BT-10) is required: the client's Leitweg-ID "
                     "(customers.<id>.buyer_reference) or a purchase order number"))


def iban_is_valid(iban: str) -> bool:
    """ISO 13616 check digits (mod 97 = 1), as BR-DE-19 tests them."""
    compact = sem.compact_iban(iban)
    if not re.fullmatch(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{1,30}", compact):
        return False
    digits = "".join(str(int(ch, 36)) for ch in compact[4:] + compact[:4])
    return int(digits) % 97 == 1


# --- the same rules on a produced document ---------------------------------------------

_NS = {"cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
       "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
       "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
       "ram": "urn:un:unece:uncefact:data:standard:"
              "ReusableAggregateBusinessInformationEntity:100"}
_SELLER_U, _BUYER_U = "/*/cac:AccountingSupplierParty/cac:Party", \
    "/*/cac:AccountingCustomerParty/cac:Party"
_AGREEMENT = "/*/rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement"
_SELLER_C, _BUYER_C = f"{_AGREEMENT}/ram:SellerTradeParty", f"{_AGREEMENT}/ram:BuyerTradeParty"
_SETTLEMENT = "/*/rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement"
_SHIP_TO = ("/*/rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeDelivery"
            "/ram:ShipToTradeParty/ram:PostalTradeAddress")
_TAXED_CODES = " or ".join(f"{{0}}='{c}'" for c in ("S", "Z", "E", "AE", "K", "G", "L", "M"))


def _text(path: str) -> str:
    return f"boolean(normalize-space({path}))"


def _optional(group: str, path: str) -> str:
    return f"not({group}) or {_text(f'{group}/{path}')}"


#: rule id -> (UBL test, CII test); each an XPath 1.0 boolean, true when the rule holds.
_XML_RULES: dict[str, tuple[str, str]] = {
    "BR-DE-1": ("boolean(/*/cac:PaymentMeans)",
                f"boolean({_SETTLEMENT}/ram:SpecifiedTradeSettlementPaymentMeans)"),
    "BR-DE-2": (f"boolean({_SELLER_U}/cac:Contact)",
                f"boolean({_SELLER_C}/ram:DefinedTradeContact)"),
    "BR-DE-3": (_text(f"{_SELLER_U}/cac:PostalAddress/cbc:CityName"),
                _text(f"{_SELLER_C}/ram:PostalTradeAddress/ram:CityName")),
    "BR-DE-4": (_text(f"{_SELLER_U}/cac:PostalAddress/cbc:PostalZone"),
                _text(f"{_SELLER_C}/ram:PostalTradeAddress/ram:PostcodeCode")),
    "BR-DE-5": (_text(f"{_SELLER_U}/cac:Contact/cbc:Name"),
                _text(f"{_SELLER_C}/ram:DefinedTradeContact/ram:PersonName")),
    "BR-DE-6": (_text(f"{_SELLER_U}/cac:Contact/cbc:Telephone"),
                _text(f"{_SELLER_C}/ram:DefinedTradeContact/ram:TelephoneUniversalCommunication"
                      "/ram:CompleteNumber")),
    "BR-DE-7": (_text(f"{_SELLER_U}/cac:Contact/cbc:ElectronicMail"),
                _text(f"{_SELLER_C}/ram:DefinedTradeContact/ram:EmailURIUniversalCommunication"
                      "/ram:URIID")),
    "BR-DE-8": (_text(f"{_BUYER_U}/cac:PostalAddress/cbc:CityName"),
                _text(f"{_BUYER_C}/ram:PostalTradeAddress/ram:CityName")),
    "BR-DE-9": (_text(f"{_BUYER_U}/cac:PostalAddress/cbc:PostalZone"),
                _text(f"{_BUYER_C}/ram:PostalTradeAddress/ram:PostcodeCode")),
    "BR-DE-10": (_optional("/*/cac:Delivery/cac:DeliveryLocation/cac:Address", "cbc:CityName"),
                 _optional(_SHIP_TO, "ram:CityName")),
    "BR-DE-11": (_optional("/*/cac:Delivery/cac:DeliveryLocation/cac:Address",
                           "cbc:PostalZone"), _optional(_SHIP_TO, "ram:PostcodeCode")),
    "BR-DE-14": ("not(/*/cac:TaxTotal/cac:TaxSubtotal[not(normalize-space("
                 "cac:TaxCategory/cbc:Percent))])",
                 f"not({_SETTLEMENT}/ram:ApplicableTradeTax"
                 "[not(normalize-space(ram:RateApplicablePercent))])"),
    "BR-DE-15": (_text("/*/cbc:BuyerReference"), _text(f"{_AGREEMENT}/ram:BuyerReference")),
    "BR-DE-16": (f"not(//cac:ClassifiedTaxCategory[{_TAXED_CODES.format('cbc:ID')}]) or "
                 f"boolean({_SELLER_U}/cac:PartyTaxScheme/cbc:CompanyID)",
                 f"not(//ram:SpecifiedLineTradeSettlement/ram:ApplicableTradeTax"
                 f"[{_TAXED_CODES.format('ram:CategoryCode')}]) or "
                 f"boolean({_SELLER_C}/ram:SpecifiedTaxRegistration/ram:ID"
                 "[@schemeID='VA' or @schemeID='FC'])"),
    "BR-DE-21": (f"/*/cbc:CustomizationID = '{XRECHNUNG_CIUS}'",
                 "/*/rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter"
                 f"/ram:ID = '{XRECHNUNG_CIUS}'"),
    "BR-DE-23-a": ("not(/*/cac:PaymentMeans[cbc:PaymentMeansCode='30' or "
                   "cbc:PaymentMeansCode='58'][not(cac:PayeeFinancialAccount)])",
                   f"not({_SETTLEMENT}/ram:SpecifiedTradeSettlementPaymentMeans[ram:TypeCode="
                   "'30' or ram:TypeCode='58'][not(ram:PayeePartyCreditorFinancialAccount)])"),
    "PEPPOL-EN16931-R010": (_text(f"{_BUYER_U}/cbc:EndpointID"),
                            _text(f"{_BUYER_C}/ram:URIUniversalCommunication/ram:URIID")),
    "PEPPOL-EN16931-R020": (_text(f"{_SELLER_U}/cbc:EndpointID"),
                            _text(f"{_SELLER_C}/ram:URIUniversalCommunication/ram:URIID")),
}


def xml_problems(xml: bytes) -> list[Problem]:
    """The rules above that a produced XRechnung document (UBL or CII) breaks."""
    root = etree.fromstring(xml)
    column = 1 if etree.QName(root).localname == "CrossIndustryInvoice" else 0
    return [(rule, f"{rule} does not hold in the document")
            for rule, tests in _XML_RULES.items()
            if not root.xpath(tests[column], namespaces=_NS)]
