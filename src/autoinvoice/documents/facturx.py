"""Factur-X 1.0.07 / ZUGFeRD 2.x, profile EN 16931: our invoice PDF with our CII inside, as
PDF/A-3b.

The embedded XML is ``cii.to_cii`` unchanged: its guideline id ``urn:cen.eu:en16931:2017``
is the Factur-X EN 16931 profile. The ``factur-x`` library (Akretion) attaches it as
``factur-x.xml`` (``/AFRelationship /Alternative``: the XML says what the PDF shows, as the
specification asks for this profile; listed in the catalog's ``/AF``) and writes XMP with
``pdfaid:part`` 3, ``pdfaid:conformance`` B and the ``fx:`` extension schema.

The library leaves three things that PDF/A-3 and reproducibility need, done here in a
second pass with pypdf:

* an OutputIntent (``GTS_PDFA1``) with the sRGB ICC profile ``sRGB2014.icc`` that ships
  with fpdf2, so the renderer's DeviceRGB/DeviceGray colours are defined;
* one timestamp everywhere (document info, XMP, the attachment), the invoice's issue date
  as in ``pdf.py``, instead of the current time: the same invoice gives the same bytes;
* document info and XMP that agree (title, author, subject, keywords, producer, dates),
  with the XMP stream left unfiltered.

The file identifier (``/ID``) is the rendered PDF's; fonts are embedded by the renderer;
nothing is encrypted. Not verified here: full PDF/A-3b conformance (no veraPDF on the
build machine) and the Factur-X schematron (the library runs it on a remote server).
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from functools import cache
from importlib.resources import files
from io import BytesIO
from typing import Any

import facturx  # type: ignore[import-untyped, unused-ignore]
from lxml import etree
from pypdf import PdfReader, PdfWriter
from pypdf.generic import (
    ArrayObject,
    DictionaryObject,
    NameObject,
    NumberObject,
    StreamObject,
    TextStringObject,
)

from autoinvoice.documents.cii import to_cii
from autoinvoice.documents.en16931 import document_number
from autoinvoice.domain.invoice import Invoice

FILENAME = "factur-x.xml"
PRODUCER = "autoinvoice (fpdf2, factur-x, pypdf)"
KEYWORDS = "Factur-X, ZUGFeRD, EN 16931, invoice"
SRGB = "sRGB IEC61966-2.1"
_XMP_NS = {"x": "adobe:ns:meta/", "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
           "xmp": "http://ns.adobe.com/xap/1.0/", "pdf": "http://ns.adobe.com/pdf/1.3/"}


def to_facturx(invoice: Invoice, pdf: bytes) -> bytes:
    """``pdf`` (from ``render_invoice_pdf``) with the invoice's CII embedded, as PDF/A-3b."""
    xml = to_cii(invoice)
    stamped: bytes = facturx.generate_from_binary(
        pdf, xml, flavor="factur-x", level="en16931", check_xsd=False,
        pdf_metadata=_metadata(invoice), afrelationship="alternative", xmp_compression=False)
    return _finish(stamped, _moment(invoice))


def _metadata(invoice: Invoice) -> dict[str, str]:
    kind = "Credit note" if invoice.is_credit_note else "Invoice"
    seller = invoice.seller.legal_name
    return {"author": seller, "keywords": KEYWORDS,
            "title": f"{seller}: {kind} {document_number(invoice)}",
            "subject": f"{kind} {document_number(invoice)} for service job {invoice.job_id}"}


def _moment(invoice: Invoice) -> datetime:
    """The documents' one timestamp: the issue date at midnight UTC, as ``pdf.py`` uses."""
    return datetime.combine(invoice.issue_date, time(0), tzinfo=UTC)


def _finish(stamped: bytes, moment: datetime) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(BytesIO(stamped)))
    writer.pdf_header = "%PDF-1.7"  # PDF/A-3 is based on ISO 32000-1 (PDF 1.7)
    pdf_date = moment.strftime("D:%Y%m%d%H%M%S+00'00'")
    writer.add_metadata({"/CreationDate": pdf_date, "/ModDate": pdf_date,
                         "/Producer": PRODUCER, "/Keywords": KEYWORDS})
    root = writer.root_object
    metadata = root["/Metadata"].get_object()
    assert isinstance(metadata, StreamObject)  # the library writes the XMP as a stream
    metadata.set_data(_xmp(metadata.get_data(), moment))
    _date_attachment(root, pdf_date)
    root[NameObject("/OutputIntents")] = ArrayObject([_output_intent(writer)])
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def _xmp(packet: bytes, moment: datetime) -> bytes:
    """The library's XMP with our timestamp, producer and keywords (as in the info dict)."""
    head, _, rest = packet.partition(b"<x:xmpmeta")
    body, _, tail = rest.rpartition(b"</x:xmpmeta>")
    root = etree.fromstring(b"<x:xmpmeta" + body + b"</x:xmpmeta>")
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    for description in root.iterfind(".//rdf:Description", _XMP_NS):
        description.set(f"{{{_XMP_NS['rdf']}}}about", "")  # XMP wants it, even empty
    for name in ("xmp:CreateDate", "xmp:ModifyDate"):
        for node in root.iterfind(f".//{name}", _XMP_NS):
            node.text = stamp
    for node in root.iterfind(".//pdf:Producer", _XMP_NS):
        node.text = PRODUCER
        parent = node.getparent()
        assert parent is not None
        etree.SubElement(parent, f"{{{_XMP_NS['pdf']}}}Keywords").text = KEYWORDS
        etree.SubElement(parent, f"{{{_XMP_NS['xmp']}}}MetadataDate").text = stamp
    return head + etree.tostring(root, encoding="UTF-8") + tail


def _date_attachment(root: Any, pdf_date: str) -> None:
    names = root["/Names"]["/EmbeddedFiles"]["/Names"]
    for spec in names[1::2]:
        stream = spec.get_object()["/EF"]["/F"].get_object()
        stream["/Params"][NameObject("/ModDate")] = TextStringObject(pdf_date)


def _output_intent(writer: PdfWriter) -> Any:
    profile = StreamObject()
    profile.set_data(_srgb_profile())
    profile[NameObject("/N")] = NumberObject(3)
    intent = DictionaryObject({
        NameObject("/Type"): NameObject("/OutputIntent"),
        NameObject("/S"): NameObject("/GTS_PDFA1"),
        NameObject("/OutputConditionIdentifier"): TextStringObject(SRGB),
        NameObject("/Info"): TextStringObject(SRGB),
        NameObject("/RegistryName"): TextStringObject("http://www.color.org"),
        # pypdf has no public call that makes an indirect object; streams must be one
        NameObject("/DestOutputProfile"): writer._add_object(profile.flate_encode()),
    })
    return writer._add_object(intent)


@cache
def _srgb_profile() -> bytes:
    """sRGB2014 (ICC v2, color.org, freely redistributable), as fpdf2 ships it."""
    return (files("fpdf") / "data" / "color_profiles" / "sRGB2014.icc").read_bytes()
