"""Factur-X (EN 16931 profile) for every shared example and billing case: the XML taken back
out of the PDF is our CII, valid against the Factur-X XSD and the EN 16931 rules, with our
amounts exactly; the PDF carries the PDF/A-3b markers we can check without veraPDF."""

from __future__ import annotations

from functools import cache
from io import BytesIO
from typing import Any

import facturx
import pytest
from lxml import etree
from pypdf import PdfReader

from autoinvoice.documents.cii import to_cii
from autoinvoice.documents.en16931 import Syntax
from autoinvoice.documents.facturx import FILENAME, KEYWORDS, PRODUCER, to_facturx
from autoinvoice.documents.pdf import render_invoice_pdf
from autoinvoice.domain.invoice import Invoice
from tests.unit.einvoice_cases import (
    CASES,
    cii_amounts,
    complete_office,
    fatal,
    needs_rules,
    numbered,
    ours,
)

XMP = {"x": "adobe:ns:meta/", "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
       "pdfaid": "http://www.aiim.org/pdfa/ns/id/", "dc": "http://purl.org/dc/elements/1.1/",
       "xmp": "http://ns.adobe.com/xap/1.0/", "pdf": "http://ns.adobe.com/pdf/1.3/",
       "pdfaSchema": "http://www.aiim.org/pdfa/ns/schema#",
       "fx": "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#"}


@cache
def _invoice(case: str) -> Invoice:
    return numbered(CASES[case]())


@cache
def _facturx(case: str) -> bytes:
    invoice = _invoice(case)
    return to_facturx(invoice, render_invoice_pdf(invoice))


def _xmp(reader: PdfReader) -> etree._Element:
    stream = reader.trailer["/Root"]["/Metadata"].get_object()
    assert "/Filter" not in stream  # left unfiltered, readable by any PDF/A reader
    data: bytes = stream.get_data()
    return etree.fromstring(data[data.index(b"<x:xmpmeta"):data.rindex(b">") + 1]
                            .split(b"<?xpacket end")[0])


def _one(root: etree._Element, path: str) -> str:
    return str(root.xpath(f"string({path})", namespaces=XMP))


@pytest.mark.parametrize("case", CASES)
def test_the_embedded_xml_is_ours_and_valid_against_the_facturx_en16931_xsd(
        case: str) -> None:
    name, xml = facturx.get_xml_from_pdf(_facturx(case), check_xsd=True)
    assert name == FILENAME
    assert xml == to_cii(_invoice(case))
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    assert facturx.get_level(etree.fromstring(xml)) == "en16931"
    assert cii_amounts(etree.fromstring(xml)) == ours(_invoice(case))


@needs_rules
@pytest.mark.parametrize("case", CASES)
def test_the_embedded_xml_passes_en16931_with_no_fatal_finding(case: str) -> None:
    _, xml = facturx.get_xml_from_pdf(_facturx(case), check_xsd=False)
    assert fatal(xml, Syntax.CII) == []


@pytest.mark.parametrize("case", CASES)
def test_pdfa3b_markers_are_present(case: str) -> None:
    reader = PdfReader(BytesIO(_facturx(case)))
    root = reader.trailer["/Root"]
    assert not reader.is_encrypted
    assert reader.pdf_header == "%PDF-1.7"
    file_id = reader.trailer["/ID"]
    assert len(file_id) == 2
    assert all(len(bytes(x.original_bytes)) == 16 for x in file_id)
    # XMP: PDF/A-3B, and the Factur-X extension schema with its properties
    xmp = _xmp(reader)
    assert (_one(xmp, "//pdfaid:part"), _one(xmp, "//pdfaid:conformance")) == ("3", "B")
    assert _one(xmp, "//pdfaSchema:namespaceURI") == XMP["fx"]
    assert _one(xmp, "//pdfaSchema:prefix") == "fx"
    assert [_one(xmp, f"//fx:{name}") for name in (
        "DocumentType", "DocumentFileName", "Version", "ConformanceLevel")] == [
        "INVOICE", FILENAME, "1.0", "EN 16931"]
    _output_intent_is_srgb(root)
    _attachment_is_the_alternative_xml(root)
    _info_agrees_with_xmp(reader, xmp)
    _fonts_are_embedded(reader)


def _output_intent_is_srgb(root: Any) -> None:
    (intent,) = [x.get_object() for x in root["/OutputIntents"]]
    assert intent["/S"] == "/GTS_PDFA1"
    profile = intent["/DestOutputProfile"].get_object()
    icc = profile.get_data()
    assert profile["/N"] == 3
    assert icc[36:40] == b"acsp"
    assert icc[16:20] == b"RGB "


def _attachment_is_the_alternative_xml(root: Any) -> None:
    (spec,) = [x.get_object() for x in root["/AF"]]
    assert spec["/AFRelationship"] == "/Alternative"
    assert spec["/F"] == spec["/UF"] == FILENAME
    embedded = spec["/EF"]["/F"].get_object()
    assert embedded["/Subtype"] == "/text/xml"
    assert "/ModDate" in embedded["/Params"]
    names = root["/Names"]["/EmbeddedFiles"]["/Names"]
    assert names[0] == FILENAME
    assert names[1].get_object() == spec


def _info_agrees_with_xmp(reader: PdfReader, xmp: etree._Element) -> None:
    info = reader.metadata
    assert info is not None
    assert info["/Title"] == _one(xmp, "//dc:title//rdf:li")
    assert info["/Author"] == _one(xmp, "//dc:creator//rdf:li")
    assert info["/Subject"] == _one(xmp, "//dc:description//rdf:li")
    assert info["/Creator"] == _one(xmp, "//xmp:CreatorTool")
    assert info["/Producer"] == _one(xmp, "//pdf:Producer") == PRODUCER
    assert info["/Keywords"] == _one(xmp, "//pdf:Keywords") == KEYWORDS
    assert info.creation_date == info.modification_date
    created = info.creation_date
    assert created is not None
    assert _one(xmp, "//xmp:CreateDate") == _one(xmp, "//xmp:ModifyDate") == (
        created.strftime("%Y-%m-%dT%H:%M:%S+00:00"))
    assert all(node.get(f"{{{XMP['rdf']}}}about") == ""
               for node in xmp.iterfind(".//rdf:Description", XMP))


def _fonts_are_embedded(reader: PdfReader) -> None:
    fonts = [font.get_object() for page in reader.pages
             for font in page["/Resources"].get("/Font", {}).values()]
    assert fonts
    for font in fonts:
        descendant = font["/DescendantFonts"][0].get_object() if "/DescendantFonts" in font \
            else font
        descriptor = descendant["/FontDescriptor"].get_object()
        assert {"/FontFile", "/FontFile2", "/FontFile3"} & set(descriptor), font["/BaseFont"]


def test_the_same_invoice_gives_the_same_bytes() -> None:
    invoice = complete_office(CASES["reduced_rate_7"]())
    pdf = render_invoice_pdf(invoice)
    first = to_facturx(invoice, pdf)
    assert to_facturx(invoice, pdf) == first
    assert to_facturx(invoice.with_number("T-2026-0002"), pdf) != first


def test_a_credit_note_is_embedded_as_type_381() -> None:
    _, xml = facturx.get_xml_from_pdf(_facturx("credit_note_of_reverse_charge"))
    root = etree.fromstring(xml)
    assert root.xpath("string(//rsm:ExchangedDocument/ram:TypeCode)", namespaces={
        "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
        "ram": "urn:un:unece:uncefact:data:standard:"
               "ReusableAggregateBusinessInformationEntity:100"}) == "381"
