"""XRechnung 3.0: the German CIUS of EN 16931, in CII (format ``xrechnung``) or UBL
(``xrechnung-ubl``).

The documents are ``cii.py`` and ``ubl.py`` with XRechnung's specification identifier
(BT-24) and the Peppol business process (BT-23, which XRechnung takes in as
PEPPOL-EN16931-R001); the one difference in content is that every VAT breakdown carries a
rate (BR-DE-14, 0 for category O).

XRechnung's own rules (BR-DE-*, and the Peppol rules it whitelists) are checked on the
document itself with KoSIT's Schematron, built as KoSIT builds it (``schematron.py``,
https://github.com/itplr-kosit/xrechnung-schematron). Only what those rules cannot see is
checked here, on the data, before any XML exists:

* BR-DE-15, buyer reference (BT-10): the rules see that BT-10 is present, not whose it is.
  Public buyers need their Leitweg-ID (``Invoice.buyer_reference``); a private buyer may
  agree on any reference, so the client's PO stands in. Our own job id, the generic
  fallback of the other formats, is not the buyer's reference: without a Leitweg-ID or a PO
  the invoice is held.
"""

from __future__ import annotations

from autoinvoice.documents.cii import to_cii
from autoinvoice.documents.en16931 import Syntax
from autoinvoice.documents.ubl import to_ubl
from autoinvoice.domain.invoice import Invoice

XRECHNUNG_CIUS = "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0"

Problem = tuple[str, str]


def to_xrechnung(invoice: Invoice, syntax: Syntax = Syntax.CII) -> bytes:
    """The invoice (or credit note) as XRechnung 3.0 XML in the given syntax."""
    if syntax is Syntax.UBL:
        return to_ubl(invoice, customization_id=XRECHNUNG_CIUS)
    return to_cii(invoice, guideline_id=XRECHNUNG_CIUS)


def xrechnung_problems(invoice: Invoice) -> list[Problem]:
    """The XRechnung rules the invoice's data break where the document cannot show it, as
    (rule id, message)."""
    if invoice.buyer_reference or invoice.po_number:
        return []
    return [("BR-DE-15", "buyer reference (BT-10) is required: the client's Leitweg-ID "
                         "(customers.<id>.buyer_reference) or a purchase order number")]
