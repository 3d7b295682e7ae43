"""UBL 2.1 Invoice and CreditNote in the Peppol BIS Billing 3.0 profile, from our Invoice.

Amounts are written exactly as ours (``Money``, quantized to the currency); nothing is
recomputed here. Element order follows the UBL 2.1 schema. Semantics shared with CII live
in ``en16931.py``.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from autoinvoice.documents import en16931 as sem
from autoinvoice.domain.endpoint import ElectronicAddress
from autoinvoice.domain.invoice import Invoice, InvoiceLine, TaxCategory
from autoinvoice.domain.job import Address
from autoinvoice.domain.money import Money

CUSTOMIZATION_ID = ("urn:cen.eu:en16931:2017#compliant"
                    "#urn:fdc:peppol.eu:2017:poacc:billing:3.0")
PROFILE_ID = sem.BUSINESS_PROCESS  # BT-23

_INV = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
_CN = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
_CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
_CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
_Element = etree._Element


def _cac(parent: _Element, name: str) -> _Element:
    return etree.SubElement(parent, f"{{{_CAC}}}{name}")


def _cbc(parent: _Element, name: str, text: str, **attrs: str) -> _Element:
    node = etree.SubElement(parent, f"{{{_CBC}}}{name}", attrs)
    node.text = text
    return node


def _amount(parent: _Element, name: str, money: Money) -> None:
    _cbc(parent, name, sem.decimal_text(money.amount), currencyID=money.currency)


def to_ubl(invoice: Invoice, *, customization_id: str = CUSTOMIZATION_ID) -> bytes:
    """The invoice (or credit note) as UBL 2.1 XML, UTF-8 with declaration. The
    specification identifier (BT-24) is Peppol BIS 3.0 unless another CIUS is named."""
    credit = invoice.is_credit_note
    namespace, name = (_CN, "CreditNote") if credit else (_INV, "Invoice")
    nsmap: dict[Any, str] = {None: namespace, "cac": _CAC, "cbc": _CBC}  # None: the default
    root = etree.Element(f"{{{namespace}}}{name}", nsmap=nsmap)
    _header(root, invoice, customization_id)
    _parties(root, invoice)
    _delivery_and_payment(root, invoice)
    _tax_total(root, invoice, customization_id)
    _monetary_total(root, invoice)
    for number, line in enumerate(invoice.lines, start=1):
        _line(root, invoice, number, line)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _header(root: _Element, invoice: Invoice, customization_id: str) -> None:
    _cbc(root, "CustomizationID", customization_id)
    _cbc(root, "ProfileID", PROFILE_ID)
    _cbc(root, "ID", sem.document_number(invoice))
    _cbc(root, "IssueDate", invoice.issue_date.isoformat())
    if invoice.is_credit_note:
        _cbc(root, "CreditNoteTypeCode", "381")
    else:
        _cbc(root, "DueDate", invoice.due_date.isoformat())
        _cbc(root, "InvoiceTypeCode", "380")
    note = sem.document_note(invoice)
    if note:
        _cbc(root, "Note", note)
    _cbc(root, "DocumentCurrencyCode", invoice.currency)
    _cbc(root, "BuyerReference", sem.buyer_reference(invoice))
    if invoice.po_number:
        _cbc(_cac(root, "OrderReference"), "ID", invoice.po_number)
    if invoice.corrects:
        reference = _cac(_cac(root, "BillingReference"), "InvoiceDocumentReference")
        _cbc(reference, "ID", invoice.corrects)


def _parties(root: _Element, invoice: Invoice) -> None:
    seller = invoice.seller
    registration = sem.seller_registration(invoice)
    _party(_cac(root, "AccountingSupplierParty"), seller.legal_name, seller.address,
           seller.email, vat_id=sem.seller_vat_id(invoice), tax_registration=registration,
           legal_id=registration, identifier=sem.seller_identifier(invoice),
           contact=(seller.contact_name, seller.phone), endpoint=sem.seller_endpoint(invoice))
    customer = invoice.customer
    _party(_cac(root, "AccountingCustomerParty"), customer.name, customer.billing_address,
           customer.email, vat_id=sem.buyer_vat_id(invoice), identifier=customer.id,
           endpoint=sem.buyer_endpoint(invoice))


def _party(parent: _Element, name: str, address: Address, email: str | None, *,
           vat_id: str | None = None, tax_registration: str | None = None,
           legal_id: str | None = None, identifier: str | None = None,
           contact: tuple[str | None, str | None] = (None, None),
           endpoint: ElectronicAddress | None = None) -> None:
    party = _cac(parent, "Party")
    if endpoint:  # BT-34 / BT-49
        _cbc(party, "EndpointID", endpoint.identifier, schemeID=endpoint.scheme)
    if identifier:
        _cbc(_cac(party, "PartyIdentification"), "ID", identifier)
    _cbc(_cac(party, "PartyName"), "Name", name)
    _address(_cac(party, "PostalAddress"), address)
    for company_id, scheme in ((vat_id, "VAT"), (tax_registration, "TAX")):
        if company_id:
            tax_scheme = _cac(party, "PartyTaxScheme")
            _cbc(tax_scheme, "CompanyID", company_id)
            _cbc(_cac(tax_scheme, "TaxScheme"), "ID", scheme)
    legal = _cac(party, "PartyLegalEntity")
    _cbc(legal, "RegistrationName", name)
    if legal_id:
        _cbc(legal, "CompanyID", legal_id)
    _contact(party, *contact, email)


def _contact(party: _Element, name: str | None, phone: str | None, email: str | None) -> None:
    """BG-6 / BG-9: contact point (BT-41), telephone (BT-42), e-mail (BT-43), where known."""
    fields = [("Name", name), ("Telephone", phone), ("ElectronicMail", email)]
    if any(value for _, value in fields):
        contact = _cac(party, "Contact")
        for tag, value in fields:
            if value:
                _cbc(contact, tag, value)


def _address(node: _Element, address: Address) -> None:
    _cbc(node, "StreetName", address.line1)
    if address.line2:
        _cbc(node, "AdditionalStreetName", address.line2)
    _cbc(node, "CityName", address.city)
    if address.postal_code:
        _cbc(node, "PostalZone", address.postal_code)
    if address.region:
        _cbc(node, "CountrySubentity", address.region)
    _cbc(_cac(node, "Country"), "IdentificationCode", address.country)


def _delivery_and_payment(root: _Element, invoice: Invoice) -> None:
    site = invoice.job.site
    if invoice.supply_date or site:
        delivery = _cac(root, "Delivery")
        if invoice.supply_date:
            _cbc(delivery, "ActualDeliveryDate", invoice.supply_date.isoformat())
        if site:
            _address(_cac(_cac(delivery, "DeliveryLocation"), "Address"), site.address)
            _cbc(_cac(_cac(delivery, "DeliveryParty"), "PartyName"), "Name", site.name)
    _payment_means(root, invoice)
    _cbc(_cac(root, "PaymentTerms"), "Note", sem.payment_terms(invoice))


def _payment_means(root: _Element, invoice: Invoice) -> None:
    """BG-16: code (BT-81), remittance information (BT-83) and, for a transfer, the
    seller's account (BG-17: IBAN BT-84, holder BT-85, BIC BT-86)."""
    code, payment = sem.payment_means_code(invoice), invoice.seller.payment
    if code is None or payment is None:
        return
    means = _cac(root, "PaymentMeans")
    _cbc(means, "PaymentMeansCode", code)
    _cbc(means, "PaymentID", sem.document_number(invoice))
    if payment.iban:
        account = _cac(means, "PayeeFinancialAccount")
        _cbc(account, "ID", sem.compact_iban(payment.iban))
        if payment.account_holder:
            _cbc(account, "Name", payment.account_holder)
        if payment.bic:
            _cbc(_cac(account, "FinancialInstitutionBranch"), "ID", payment.bic)


def _tax_total(root: _Element, invoice: Invoice, specification: str) -> None:
    total = _cac(root, "TaxTotal")
    _amount(total, "TaxAmount", invoice.tax_total)
    for group in invoice.tax_breakdown():
        subtotal = _cac(total, "TaxSubtotal")
        _amount(subtotal, "TaxableAmount", group.taxable_amount)
        _amount(subtotal, "TaxAmount", group.tax)
        _category(_cac(subtotal, "TaxCategory"), group.category,
                  sem.breakdown_percent(group.category, group.rate, specification),
                  sem.exemption_reason(invoice, group.category))


def _category(node: _Element, category: TaxCategory, percent: str | None,
              reason: str | None = None) -> None:
    _cbc(node, "ID", category.value)
    if percent is not None:
        _cbc(node, "Percent", percent)
    if reason:
        _cbc(node, "TaxExemptionReason", reason)
    _cbc(_cac(node, "TaxScheme"), "ID", "VAT")


def _monetary_total(root: _Element, invoice: Invoice) -> None:
    totals = _cac(root, "LegalMonetaryTotal")
    _amount(totals, "LineExtensionAmount", invoice.subtotal)
    _amount(totals, "TaxExclusiveAmount", invoice.subtotal)
    _amount(totals, "TaxInclusiveAmount", invoice.total)
    _amount(totals, "PayableAmount", invoice.total)


def _line(root: _Element, invoice: Invoice, number: int, line: InvoiceLine) -> None:
    credit = invoice.is_credit_note
    node = _cac(root, "CreditNoteLine" if credit else "InvoiceLine")
    _cbc(node, "ID", str(number))
    if line.coverage:
        _cbc(node, "Note", line.coverage)
    _cbc(node, "CreditedQuantity" if credit else "InvoicedQuantity",
         sem.decimal_text(line.quantity), unitCode=sem.unit_code(line.unit))
    _amount(node, "LineExtensionAmount", line.amount)
    item = _cac(node, "Item")
    _cbc(item, "Name", line.description)
    if line.sku:
        _cbc(_cac(item, "SellersItemIdentification"), "ID", line.sku)
    line_percent = (None if line.tax_category is TaxCategory.NOT_SUBJECT  # BR-O-05
                    else sem.percent(line.tax_rate))
    _category(_cac(item, "ClassifiedTaxCategory"), line.tax_category, line_percent)
    _price(_cac(node, "Price"), line, invoice.currency)


def _price(node: _Element, line: InvoiceLine, currency: str) -> None:
    """Net price; a covered or discounted line shows its list price as the gross price."""
    _cbc(node, "PriceAmount", sem.decimal_text(line.unit_price), currencyID=currency)
    gross = line.list_unit_price
    if gross is not None and gross > line.unit_price:
        allowance = _cac(node, "AllowanceCharge")
        _cbc(allowance, "ChargeIndicator", "false")
        _cbc(allowance, "Amount", sem.decimal_text(gross - line.unit_price), currencyID=currency)
        _cbc(allowance, "BaseAmount", sem.decimal_text(gross), currencyID=currency)

