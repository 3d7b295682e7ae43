"""What an e-invoice states, read back from its XML (UBL 2.1 or CII D16B) into one shape, so
tests compare it with the invoice it was made from."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from lxml import etree

NS = {"cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
      "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
      "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
      "ram": "urn:un:unece:uncefact:data:standard:"
             "ReusableAggregateBusinessInformationEntity:100"}


def _decimal(node: Any, path: str) -> Decimal:
    text = node.findtext(path, namespaces=NS)
    assert text is not None, path
    return Decimal(text)


def stated(xml: bytes) -> dict[str, Any]:
    """What an e-invoice says, in either syntax: ``kind`` (invoice, credit_note), ``number``,
    ``corrects`` (the credited invoice), ``totals`` (without tax, tax, with tax, payable),
    ``breakdown`` [(category, base, tax, exemption reason)], ``lines`` [(category, quantity,
    amount)] and ``notes`` (the document's notes, one per line)."""
    root = etree.fromstring(xml)
    if root.tag.endswith("}CrossIndustryInvoice"):
        return _stated_cii(root)
    return _stated_ubl(root)


def _stated_ubl(root: Any) -> dict[str, Any]:
    credit = root.tag.endswith("}CreditNote")
    line_tag, quantity = ("CreditNoteLine", "CreditedQuantity") if credit \
        else ("InvoiceLine", "InvoicedQuantity")
    totals = root.find("cac:LegalMonetaryTotal", NS)
    return {
        "kind": "credit_note" if credit else "invoice",
        "number": root.findtext("cbc:ID", namespaces=NS),
        "corrects": root.findtext("cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID",
                                  namespaces=NS),
        "totals": (_decimal(totals, "cbc:TaxExclusiveAmount"),
                   _decimal(root, "cac:TaxTotal/cbc:TaxAmount"),
                   _decimal(totals, "cbc:TaxInclusiveAmount"),
                   _decimal(totals, "cbc:PayableAmount")),
        "breakdown": [(s.findtext("cac:TaxCategory/cbc:ID", namespaces=NS),
                       _decimal(s, "cbc:TaxableAmount"), _decimal(s, "cbc:TaxAmount"),
                       s.findtext("cac:TaxCategory/cbc:TaxExemptionReason", namespaces=NS))
                      for s in root.findall("cac:TaxTotal/cac:TaxSubtotal", NS)],
        "lines": [(x.findtext("cac:Item/cac:ClassifiedTaxCategory/cbc:ID", namespaces=NS),
                   _decimal(x, f"cbc:{quantity}"), _decimal(x, "cbc:LineExtensionAmount"))
                  for x in root.findall(f"cac:{line_tag}", NS)],
        "notes": "\n".join(n.text or "" for n in root.findall("cbc:Note", NS)),
    }


def _stated_cii(root: Any) -> dict[str, Any]:
    document = root.find("rsm:ExchangedDocument", NS)
    settlement = root.find("rsm:SupplyChainTradeTransaction/"
                           "ram:ApplicableHeaderTradeSettlement", NS)
    totals = settlement.find("ram:SpecifiedTradeSettlementHeaderMonetarySummation", NS)
    items = root.findall("rsm:SupplyChainTradeTransaction/"
                         "ram:IncludedSupplyChainTradeLineItem", NS)
    return {
        "kind": {"380": "invoice", "381": "credit_note"}[document.findtext("ram:TypeCode",
                                                                           namespaces=NS)],
        "number": document.findtext("ram:ID", namespaces=NS),
        "corrects": settlement.findtext("ram:InvoiceReferencedDocument/ram:IssuerAssignedID",
                                        namespaces=NS),
        "totals": (_decimal(totals, "ram:TaxBasisTotalAmount"),
                   _decimal(totals, "ram:TaxTotalAmount"),
                   _decimal(totals, "ram:GrandTotalAmount"),
                   _decimal(totals, "ram:DuePayableAmount")),
        "breakdown": [(t.findtext("ram:CategoryCode", namespaces=NS),
                       _decimal(t, "ram:BasisAmount"), _decimal(t, "ram:CalculatedAmount"),
                       t.findtext("ram:ExemptionReason", namespaces=NS))
                      for t in settlement.findall("ram:ApplicableTradeTax", NS)],
        "lines": [(x.findtext("ram:SpecifiedLineTradeSettlement/ram:ApplicableTradeTax/"
                              "ram:CategoryCode", namespaces=NS),
                   _decimal(x, "ram:SpecifiedLineTradeDelivery/ram:BilledQuantity"),
                   _decimal(x, "ram:SpecifiedLineTradeSettlement/"
                               "ram:SpecifiedTradeSettlementLineMonetarySummation/"
                               "ram:LineTotalAmount"))
                  for x in items],
        "notes": "\n".join(n.text or "" for n in document.findall("ram:IncludedNote/ram:Content",
                                                                   NS)),
    }


