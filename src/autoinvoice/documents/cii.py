"""UN/CEFACT Cross Industry Invoice D16B in the EN 16931 profile, from our Invoice.

The same content as ``ubl.py`` (semantics shared through ``en16931.py``); amounts written
exactly as ours. Element order follows the D16B schema. A credit note is type 381 with the
credited invoice as ``InvoiceReferencedDocument``.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from lxml import etree

from autoinvoice.documents import en16931 as sem
from autoinvoice.domain.endpoint import ElectronicAddress
from autoinvoice.domain.invoice import Invoice, InvoiceLine, TaxCategory
from autoinvoice.domain.job import Address

GUIDELINE_ID = "urn:cen.eu:en16931:2017"

_RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
_RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
_UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
_QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
_Element = etree._Element


def _el(parent: _Element, name: str, text: str | None = None, ns: str = _RAM,
        **attrs: str) -> _Element:
    node = etree.SubElement(parent, f"{{{ns}}}{name}", attrs)
    if text is not None:
        node.text = text
    return node


def _num(parent: _Element, name: str, value: Decimal, **attrs: str) -> None:
    _el(parent, name, sem.decimal_text(value), **attrs)


def _date(parent: _Element, name: str, day: date) -> None:
    _el(_el(parent, name), "DateTimeString", day.strftime("%Y%m%d"), ns=_UDT, format="102")


def to_cii(invoice: Invoice, *, guideline_id: str = GUIDELINE_ID) -> bytes:
    """The invoice (or credit note) as CII D16B XML, UTF-8 with declaration. The
    specification identifier (BT-24) is plain EN 16931 (also Factur-X's EN 16931 profile)
    unless another CIUS is named."""
    root = etree.Element(f"{{{_RSM}}}CrossIndustryInvoice",
                         nsmap={"rsm": _RSM, "ram": _RAM, "udt": _UDT, "qdt": _QDT})
    context = _el(root, "ExchangedDocumentContext", ns=_RSM)
    if sem.is_xrechnung(guideline_id):  # BT-23
        _el(_el(context, "BusinessProcessSpecifiedDocumentContextParameter"), "ID",
            sem.BUSINESS_PROCESS)
    _el(_el(context, "GuidelineSpecifiedDocumentContextParameter"), "ID", guideline_id)
    _document(_el(root, "ExchangedDocument", ns=_RSM), invoice)
    transaction = _el(root, "SupplyChainTradeTransaction", ns=_RSM)
    for number, line in enumerate(invoice.lines, start=1):
        _line(transaction, number, line)
    _agreement(_el(transaction, "ApplicableHeaderTradeAgreement"), invoice)
    _delivery(_el(transaction, "ApplicableHeaderTradeDelivery"), invoice)
    _settlement(_el(transaction, "ApplicableHeaderTradeSettlement"), invoice, guideline_id)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _document(node: _Element, invoice: Invoice) -> None:
    _el(node, "ID", sem.document_number(invoice))
    _el(node, "TypeCode", "381" if invoice.is_credit_note else "380")
    _date(node, "IssueDateTime", invoice.issue_date)
    for note in invoice.notes:
        _el(_el(node, "IncludedNote"), "Content", note)


def _line(transaction: _Element, number: int, line: InvoiceLine) -> None:
    item = _el(transaction, "IncludedSupplyChainTradeLineItem")
    document = _el(item, "AssociatedDocumentLineDocument")
    _el(document, "LineID", str(number))
    if line.coverage:
        _el(_el(document, "IncludedNote"), "Content", line.coverage)
    product = _el(item, "SpecifiedTradeProduct")
    if line.sku:
        _el(product, "SellerAssignedID", line.sku)
    _el(product, "Name", line.description)
    _price(_el(item, "SpecifiedLineTradeAgreement"), line)
    _num(_el(item, "SpecifiedLineTradeDelivery"), "BilledQuantity", line.quantity,
         unitCode=sem.unit_code(line.unit))
    settlement = _el(item, "SpecifiedLineTradeSettlement")
    _tax(_el(settlement, "ApplicableTradeTax"), line.tax_category, line.tax_rate)
    summation = _el(settlement, "SpecifiedTradeSettlementLineMonetarySummation")
    _num(summation, "LineTotalAmount", line.amount.amount)


def _price(agreement: _Element, line: InvoiceLine) -> None:
    """Net price; a covered or discounted line shows its list price as the gross price."""
    gross = line.list_unit_price
    if gross is not None and gross > line.unit_price:
        gross_price = _el(agreement, "GrossPriceProductTradePrice")
        _num(gross_price, "ChargeAmount", gross)
        allowance = _el(gross_price, "AppliedTradeAllowanceCharge")
        _el(_el(allowance, "ChargeIndicator"), "Indicator", "false", ns=_UDT)
        _num(allowance, "ActualAmount", gross - line.unit_price)
    _num(_el(agreement, "NetPriceProductTradePrice"), "ChargeAmount", line.unit_price)


def _tax(node: _Element, category: TaxCategory, rate: Decimal) -> None:
    """A line's classified tax: type, category and rate."""
    _el(node, "TypeCode", "VAT")
    _el(node, "CategoryCode", category.value)
    if category is not TaxCategory.NOT_SUBJECT:  # O carries no rate (BR-O-05, BR-O-09)
        _el(node, "RateApplicablePercent", sem.percent(rate))


def _agreement(node: _Element, invoice: Invoice) -> None:
    _el(node, "BuyerReference", sem.buyer_reference(invoice))
    seller = invoice.seller
    registration = sem.seller_registration(invoice)
    _party(_el(node, "SellerTradeParty"), seller.legal_name, seller.address, seller.email,
           vat_id=sem.seller_vat_id(invoice), tax_registration=registration,
           legal_id=registration, identifier=sem.seller_identifier(invoice),
           contact=(seller.contact_name, seller.phone), endpoint=sem.seller_endpoint(invoice))
    customer = invoice.customer
    _party(_el(node, "BuyerTradeParty"), customer.name, customer.billing_address,
           customer.email, vat_id=sem.buyer_vat_id(invoice), identifier=customer.id,
           endpoint=sem.buyer_endpoint(invoice))
    if invoice.po_number:
        _el(_el(node, "BuyerOrderReferencedDocument"), "IssuerAssignedID", invoice.po_number)


def _party(node: _Element, name: str, address: Address, email: str | None, *,
           vat_id: str | None = None, tax_registration: str | None = None,
           legal_id: str | None = None, identifier: str | None = None,
           contact: tuple[str | None, str | None] | None = None,
           endpoint: ElectronicAddress | None = None) -> None:
    if identifier:
        _el(node, "ID", identifier)
    _el(node, "Name", name)
    if legal_id:
        _el(_el(node, "SpecifiedLegalOrganization"), "ID", legal_id)
    if contact is not None:
        _contact(node, *contact, email)
    _address(_el(node, "PostalTradeAddress"), address)
    if endpoint:  # BT-34 / BT-49
        _el(_el(node, "URIUniversalCommunication"), "URIID", endpoint.identifier,
            schemeID=endpoint.scheme)
    for tax_id, scheme in ((vat_id, "VA"), (tax_registration, "FC")):
        if tax_id:
            _el(_el(node, "SpecifiedTaxRegistration"), "ID", tax_id, schemeID=scheme)


def _contact(party: _Element, name: str | None, phone: str | None, email: str | None) -> None:
    """BG-6: the seller's contact point (BT-41), telephone (BT-42), e-mail (BT-43)."""
    if not (name or phone or email):
        return
    contact = _el(party, "DefinedTradeContact")
    if name:
        _el(contact, "PersonName", name)
    if phone:
        _el(_el(contact, "TelephoneUniversalCommunication"), "CompleteNumber", phone)
    if email:
        _el(_el(contact, "EmailURIUniversalCommunication"), "URIID", email)


def _address(node: _Element, address: Address) -> None:
    if address.postal_code:
        _el(node, "PostcodeCode", address.postal_code)
    _el(node, "LineOne", address.line1)
    if address.line2:
        _el(node, "LineTwo", address.line2)
    _el(node, "CityName", address.city)
    _el(node, "CountryID", address.country)
    if address.region:
        _el(node, "CountrySubDivisionName", address.region)


def _delivery(node: _Element, invoice: Invoice) -> None:
    site = invoice.job.site
    if site:
        ship_to = _el(node, "ShipToTradeParty")
        _el(ship_to, "Name", site.name)
        _address(_el(ship_to, "PostalTradeAddress"), site.address)
    if invoice.supply_date:
        _date(_el(node, "ActualDeliverySupplyChainEvent"), "OccurrenceDateTime",
              invoice.supply_date)


def _settlement(node: _Element, invoice: Invoice, specification: str) -> None:
    if sem.payment_means_code(invoice):
        _el(node, "PaymentReference", sem.document_number(invoice))  # BT-83
    _el(node, "InvoiceCurrencyCode", invoice.currency)
    _payment_means(node, invoice)
    _breakdown(node, invoice, specification)
    terms = _el(node, "SpecifiedTradePaymentTerms")
    _el(terms, "Description", sem.payment_terms(invoice, with_due_date=False))
    _date(terms, "DueDateDateTime", invoice.due_date)
    _totals(_el(node, "SpecifiedTradeSettlementHeaderMonetarySummation"), invoice)
    if invoice.corrects:
        _el(_el(node, "InvoiceReferencedDocument"), "IssuerAssignedID", invoice.corrects)


def _payment_means(node: _Element, invoice: Invoice) -> None:
    """BG-16: code (BT-81) and, for a transfer, the seller's account (BG-17: IBAN BT-84,
    holder BT-85, BIC BT-86)."""
    code, payment = sem.payment_means_code(invoice), invoice.seller.payment
    if code is None or payment is None:
        return
    means = _el(node, "SpecifiedTradeSettlementPaymentMeans")
    _el(means, "TypeCode", code)
    if payment.iban:
        account = _el(means, "PayeePartyCreditorFinancialAccount")
        _el(account, "IBANID", sem.compact_iban(payment.iban))
        if payment.account_holder:
            _el(account, "AccountName", payment.account_holder)
        if payment.bic:
            _el(_el(means, "PayeeSpecifiedCreditorFinancialInstitution"), "BICID", payment.bic)


def _breakdown(node: _Element, invoice: Invoice, specification: str) -> None:
    for group in invoice.tax_breakdown():
        tax = _el(node, "ApplicableTradeTax")
        _num(tax, "CalculatedAmount", group.tax.amount)
        reason = sem.exemption_reason(invoice, group.category)
        _el(tax, "TypeCode", "VAT")
        if reason:
            _el(tax, "ExemptionReason", reason)
        _num(tax, "BasisAmount", group.taxable_amount.amount)
        _el(tax, "CategoryCode", group.category.value)
        rate = sem.breakdown_percent(group.category, group.rate, specification)
        if rate is not None:
            _el(tax, "RateApplicablePercent", rate)


def _totals(node: _Element, invoice: Invoice) -> None:
    _num(node, "LineTotalAmount", invoice.subtotal.amount)
    _num(node, "TaxBasisTotalAmount", invoice.subtotal.amount)
    _num(node, "TaxTotalAmount", invoice.tax_total.amount, currencyID=invoice.currency)
    _num(node, "GrandTotalAmount", invoice.total.amount)
    _num(node, "DuePayableAmount", invoice.total.amount)
