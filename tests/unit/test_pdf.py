"""The PDF invoice: content (via pypdf text extraction), pagination, fonts, determinism."""

from __future__ import annotations

import base64
import dataclasses
import io
import logging
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from pypdf import PdfReader

from autoinvoice.documents.pdf import Formats, render_invoice_pdf
from autoinvoice.domain.invoice import (
    DocumentKind,
    Invoice,
    InvoiceFlag,
    InvoiceLine,
    LineKind,
    PaymentInstructions,
    Seller,
)
from autoinvoice.domain.job import (
    Address,
    Asset,
    Customer,
    Job,
    LaborEntry,
    LaborKind,
    Signature,
    Site,
    Technician,
)
from autoinvoice.domain.money import Money

# The 1x1 PNG from ../shared/examples/job-signed.json.
SIGNATURE_PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8"
                 "AAAAASUVORK5CYII=")
CST = timezone(timedelta(hours=-6))
CET = timezone(timedelta(hours=1))


def line(kind: LineKind, description: str, qty: str, unit: str, price: str, rate: str,
         currency: str, sku: str | None = None) -> InvoiceLine:
    amount = Money(Decimal(qty) * Decimal(price), currency)
    return InvoiceLine(kind=kind, description=description, quantity=Decimal(qty), unit=unit,
                       unit_price=Decimal(price), amount=amount, tax_rate=Decimal(rate),
                       tax=amount.times(Decimal(rate)), sku=sku)


def us_invoice() -> Invoice:
    """Like ../shared/examples/job-emergency-repair.json priced by the northwind rate card."""
    customer = Customer("CUST-0088", "Acme Plastics Inc.", "ap@acme-plastics.example",
                        Address("1200 Industrial Pkwy", "Tulsa", "US", "74107", "OK"))
    job = Job(
        id="WO-10482", service_type="emergency_repair", customer=customer,
        completed_at=datetime(2026, 11, 20, 21, 35, tzinfo=CST),
        summary="Compressor tripped on high discharge temperature; replaced thermostatic valve "
                "and cooler fan motor",
        site=Site("SITE-3", "Acme Plant 2",
                  Address("88 Extrusion Way", "Sand Springs", "US", "74063", "OK")),
        asset=Asset("rotary_screw", "Atlas Copco", "GA37 VSD+", "API726410", 16012),
        technicians=(Technician("T-07", "R. Okafor", "senior"),),
        labor=(LaborEntry("T-07", LaborKind.ONSITE, hours=Decimal("3.75")),),
        po_number="PO-77813", completed_by="T-07",
        notes="Discharge temp back to 82 C under full load. Recommend cooler clean at next PM.")
    usd, tax = "USD", "0.085"
    lines = (
        line(LineKind.TRAVEL, "Travel - R. Okafor (senior, overtime x1.5, travel x0.75)",
             "0.75", "h", "163.125", "0", usd),
        line(LineKind.LABOR, "On-site labor - R. Okafor (senior, overtime x1.5)", "3.75", "h",
             "217.5", "0", usd),
        line(LineKind.FEE, "Emergency call-out fee", "1", "ea", "250", "0", usd),
        line(LineKind.MILEAGE, "Mileage", "38.5", "mi", "0.95", "0", usd),
        line(LineKind.PART, "Thermostatic valve kit", "1", "ea", "412.00", tax, usd,
             "1622-8757-00"),
        line(LineKind.PART, "Cooler fan motor 1.1 kW", "1", "ea", "689.50", tax, usd,
             "1622-3637-80"),
        line(LineKind.PART, "Roto-Inject Fluid, 8000 h", "5", "l", "18.40", tax, usd,
             "OIL-RIF-8K"),
    )
    seller = Seller("Northwind Compressed Air Services LLC",
                    Address("410 W 7th St", "Tulsa", "US", "74119", "OK"), "73-1234567",
                    "billing@northwind.example")
    return Invoice(tenant="northwind", job_id=job.id, revision=1, currency=usd, seller=seller,
                   customer=customer, job=job, lines=lines, issue_date=date(2026, 11, 21),
                   due_date=date(2026, 12, 21), payment_terms_days=30, number="NW-2026-00042")


def german_invoice() -> Invoice:
    """Like ../shared/examples/job-preventive-maintenance.json + job-signed.json, 19 % VAT."""
    address = Address("Hopfenweg 12", "Bamberg", "DE", "96047")
    customer = Customer("K-1042", "Brauerei Feldmann GmbH", "rechnung@feldmann-brauerei.example",
                        address, vat_id="DE811907980")
    signature = Signature("Thomas Feldmann", datetime(2026, 11, 21, 11, 23, 41, tzinfo=CET),
                          "on_device", "Betriebsleiter", SIGNATURE_PNG)
    job = Job(
        id="AU-2026-3391", service_type="preventive_maintenance", customer=customer,
        completed_at=datetime(2026, 11, 21, 11, 5, tzinfo=CET),
        summary="4000 h service per maintenance contract",
        site=Site("S-1042-1", "Sudhaus", address),
        asset=Asset("oil_free_screw", "Kaeser", "CSG 90-2", "1245", 40110),
        technicians=(Technician("T-21", "M. Becker", "technician"),), contract_id="WV-2024-017",
        completed_by="T-21", signature=signature,
        notes="Ölstand geprüft, Kühler gereinigt; Druckluftanschluss gemäß Protokoll dicht.")
    eur, vat = "EUR", "0.19"
    lines = (
        line(LineKind.LABOR, "On-site labor - M. Becker (technician)", "3.25", "h", "98.00", vat,
             eur),
        line(LineKind.FEE, "Anfahrtspauschale Großraum Nürnberg", "1", "ea", "65.00", vat, eur),
        line(LineKind.PART, "Air filter element", "1", "ea", "86.40", vat, eur, "6.4149.0"),
        line(LineKind.PART, "Oil filter", "2", "ea", "39.90", vat, eur, "6.3465.0"),
        line(LineKind.PART, "Sigma Fluid S-460, 20 l", "1", "ea", "1249.00", vat, eur,
             "9.0915.1"),
    )
    seller = Seller("Kompressor-Service Süd GmbH",
                    Address("Königstraße 5", "Nürnberg", "DE", "90402"), "DE123456789",
                    "rechnung@ks-sued.example")
    return Invoice(tenant="kompressor-service-de", job_id=job.id, revision=2, currency=eur,
                   seller=seller, customer=customer, job=job, lines=lines,
                   issue_date=date(2026, 11, 21), due_date=date(2026, 12, 5),
                   payment_terms_days=14, number="KS-2026-00317")


def unsigned_invoice() -> Invoice:
    return dataclasses.replace(us_invoice(), number="NW-2026-00043",
                               flags=frozenset({InvoiceFlag.UNSIGNED}))


def long_invoice(count: int = 80) -> Invoice:
    base = german_invoice()
    lines = tuple(
        line(LineKind.PART, f"Ersatzteil {i:02d}: O-Ring-Satz Viton, Größe {i} mm" +
             (" (für Kühler- und Ölkreislauf, Wartungsintervall 4000 Bh)" if i % 7 == 0 else ""),
             str(1 + i % 4), "ea", f"{Decimal(i * 7 + 3) + Decimal('0.45')}", "0.19", "EUR",
             f"OR-{i:04d}")
        for i in range(1, count + 1))
    return dataclasses.replace(base, lines=lines, number="KS-2026-00400")


def pdf_text(pdf: bytes) -> list[str]:
    """Each page's text, whitespace collapsed (wrapped descriptions read as one line)."""
    return [" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(pdf)).pages]


def test_us_invoice_shows_every_line_amount_and_total() -> None:
    # given
    invoice = us_invoice()

    # when
    pages = pdf_text(render_invoice_pdf(invoice, pay_url="https://pay.example/i/NW-2026-00042"))

    # then
    text = " ".join(pages)
    for item in invoice.lines:
        assert item.description in text
    for amount in ("122.34", "815.63", "250.00", "36.58", "412.00", "689.50", "92.00"):
        assert amount in text
    assert "$2,418.05" in text  # subtotal
    assert "$101.45" in text  # sales tax on parts only
    assert "$2,519.50" in text  # total
    for fact in ("NW-2026-00042", "PO-77813", "API726410", "R. Okafor (senior)",
                 "Acme Plastics Inc.", "Acme Plant 2", "Atlas Copco GA37 VSD+", "Net 30 days",
                 "Dec 21, 2026", "https://pay.example/i/NW-2026-00042", "8.5%", "Page 1 of 1"):
        assert fact in text


def test_us_invoice_is_letter_and_german_is_a4() -> None:
    us = PdfReader(io.BytesIO(render_invoice_pdf(us_invoice()))).pages[0].mediabox
    de = PdfReader(io.BytesIO(render_invoice_pdf(german_invoice()))).pages[0].mediabox
    assert (round(float(us.width)), round(float(us.height))) == (612, 792)
    assert (round(float(de.width)), round(float(de.height))) == (595, 842)


def test_tax_breakdown_lists_each_rate_with_taxable_amount() -> None:
    text = " ".join(pdf_text(render_invoice_pdf(us_invoice())))
    assert "$1,193.50" in text  # taxable at 8.5 %
    assert "$1,224.55" in text  # at 0 %
    assert "0%" in text


def test_german_invoice_renders_umlauts_sharp_s_euro_and_signature() -> None:
    # given
    invoice = german_invoice()

    # when
    pdf = render_invoice_pdf(invoice)

    # then
    text = " ".join(pdf_text(pdf))
    for item in invoice.lines:
        assert item.description in text
    for amount in ("318,50", "65,00", "86,40", "79,80", "1.249,00"):
        assert amount in text
    for money in ("1.798,70 €", "341,76 €", "2.140,46 €", "19 %", "VAT"):
        assert money in text
    for fact in ("KS-2026-00317", "Kompressor-Service Süd GmbH", "Königstraße 5",
                 "Großraum Nürnberg", "Ölstand geprüft", "gemäß", "DE811907980", "1245",
                 "Thomas Feldmann", "Betriebsleiter", "21.11.2026 11:23 (UTC+01:00)"):
        assert fact in text
    assert "Not signed" not in text
    images = PdfReader(io.BytesIO(pdf)).pages[0].images
    assert len(images) == 1  # the signature


def test_unsigned_invoice_carries_a_clear_note() -> None:
    text = " ".join(pdf_text(render_invoice_pdf(unsigned_invoice())))
    assert "Not signed by the client" in text
    assert "NW-2026-00043" in text


def test_long_invoice_repeats_the_table_header_and_numbers_every_page() -> None:
    # given
    invoice = long_invoice(80)

    # when
    pages = pdf_text(render_invoice_pdf(invoice))

    # then
    assert len(pages) >= 3
    for number, page in enumerate(pages, start=1):
        for heading in ("Description", "SKU", "Qty", "Unit price", "Tax", "Amount (EUR)"):
            assert heading in page
        assert f"Page {number} of {len(pages)}" in page
    text = " ".join(pages)
    for item in invoice.lines:
        assert item.description.split(" (")[0] in text
        assert Formats("DE").amount(item.amount) in text
    assert Formats("DE").money(invoice.total) in pages[-1]


def test_same_invoice_gives_the_same_bytes_dated_by_its_issue_date() -> None:
    first = render_invoice_pdf(german_invoice())
    assert render_invoice_pdf(german_invoice()) == first
    created = PdfReader(io.BytesIO(first)).metadata.creation_date
    assert created == datetime(2026, 11, 21, tzinfo=UTC)


def test_text_outside_the_fast_font_subset_still_renders(caplog: pytest.LogCaptureFixture) -> None:
    # given: Cyrillic and Greek are not in the cut-down faces
    invoice = us_invoice()
    customer = dataclasses.replace(invoice.customer, name="ООО «Компрессор» Ωmega")

    # when
    with caplog.at_level(logging.WARNING):
        text = " ".join(pdf_text(render_invoice_pdf(dataclasses.replace(invoice,
                                                                          customer=customer))))

    # then
    assert "ООО «Компрессор» Ωmega" in text
    assert not caplog.records


def test_draft_without_number_and_with_logo() -> None:
    logo = base64.b64decode(SIGNATURE_PNG)
    pdf = render_invoice_pdf(dataclasses.replace(us_invoice(), number=None), logo_png=logo)
    text = " ".join(pdf_text(pdf))
    assert "Draft" in text
    assert len(PdfReader(io.BytesIO(pdf)).pages[0].images) == 1


def test_unreadable_signature_and_logo_do_not_stop_the_invoice(
        caplog: pytest.LogCaptureFixture) -> None:
    invoice = german_invoice()
    assert invoice.job.signature is not None
    broken = dataclasses.replace(invoice.job.signature, image_png_base64="bm90IGEgcG5n")
    invoice = dataclasses.replace(invoice, job=dataclasses.replace(invoice.job, signature=broken))
    with caplog.at_level(logging.WARNING):
        pdf = render_invoice_pdf(invoice, logo_png=b"not an image")
    text = " ".join(pdf_text(pdf))
    assert "(signature image unreadable)" in text
    assert "Thomas Feldmann" in text
    assert len(caplog.records) == 2


def test_concurrent_renders_match_sequential_ones() -> None:
    invoices = [us_invoice(), german_invoice(), unsigned_invoice(), long_invoice(30)] * 2
    expected = [render_invoice_pdf(invoice) for invoice in invoices]
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(render_invoice_pdf, invoices)) == expected


@pytest.mark.parametrize(
    ("country", "amount", "currency", "expected"),
    [
        ("US", "1234.5", "USD", "$1,234.50"),
        ("DE", "1234.5", "EUR", "1.234,50 €"),
        ("IE", "-12", "EUR", "-€12.00"),
        ("JP", "1234567", "JPY", "¥1,234,567"),
        ("CH", "1234.5", "CHF", "CHF 1'234.50"),
        ("FR", "1234.5", "EUR", "1 234,50 €"),
    ],
)
def test_money_is_written_the_sellers_way(country: str, amount: str, currency: str,
                                          expected: str) -> None:
    assert Formats(country).money(Money.of(amount, currency)) == expected


def test_unit_prices_keep_extra_precision_and_rates_read_as_percent() -> None:
    assert Formats("US").price(Decimal("163.125"), "USD") == "163.125"
    assert Formats("US").price(Decimal("250"), "USD") == "250.00"
    assert Formats("US").rate(Decimal("0.085")) == "8.5%"
    assert Formats("DE").rate(Decimal("0.19")) == "19 %"
    assert Formats("DE").number(Decimal("3.250")) == "3,25"


def test_first_page_renders_to_png(tmp_path: Path) -> None:
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed")
    pdf = tmp_path / "invoice.pdf"
    pdf.write_bytes(render_invoice_pdf(german_invoice()))
    subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", "-singlefile",
                    str(pdf), str(tmp_path / "page")], check=True, timeout=30)
    png = (tmp_path / "page.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    assert len(png) > 10_000


def test_reverse_charge_note_category_and_covered_lines_are_printed() -> None:
    from tests.unit.test_billing_cases import FRANCE, job, part, span

    reverse = job("ksf", customer={"id": "K-FR", "name": "Brasserie du Nord SARL",
                                   "vat_id": "FR44732829320", "billing_address": FRANCE},
                  labor=[{"technician": "T1", "kind": "onsite", "hours": "2.0"}],
                  parts=[part("6.3465.0", 2)]).invoice
    text = " ".join(pdf_text(render_invoice_pdf(reverse.with_number("RE-2026-0001"))))
    assert "Article 196" in text
    assert "(AE)" in text
    covered = job(service_type="preventive_maintenance", contract_id="PM-1", completed_by="T2",
                  customer={"id": "C-PM", "name": "Hospital Compressed Air"},
                  labor=[span("T2", "2026-11-19T09:00:00-06:00", "2026-11-19T12:00:00-06:00")],
                  parts=[part("FILTER-A", 2)]).invoice
    text = " ".join(pdf_text(render_invoice_pdf(covered.with_number("PA-2026-00001"))))
    assert "covered by contract PM-1, list price" in text
    assert "contract PM-1: 10 % off" in text
    assert "Maintenance contract PM-1" in text


def german_language_invoice() -> Invoice:
    """The German example issued on 27 Nov 2026 with a 1,234.56 EUR part, bank details, a
    phone, a contact and a Leitweg-ID."""
    base = german_invoice()
    payment = PaymentInstructions(iban="de89 3704 0044 0532 0130 00", bic="COBADEFFXXX",
                                  bank_name="Commerzbank", note="Bitte Rechnungsnummer angeben.")
    seller = dataclasses.replace(base.seller, phone="+49 911 123456",
                                 contact_name="Anna Schmidt", payment=payment)
    lines = (*base.lines[:2],
             line(LineKind.PART, "Ölabscheider", "1", "ea", "1234.56", "0.19", "EUR", "6.4493"))
    return dataclasses.replace(base, seller=seller, lines=lines, issue_date=date(2026, 11, 27),
                               due_date=date(2026, 12, 11), buyer_reference="04011000-12345-67")


def test_german_tenant_gets_german_labels_numbers_and_dates() -> None:
    # when
    text = " ".join(pdf_text(render_invoice_pdf(german_language_invoice(), language="de")))

    # then
    for label in ("RECHNUNG", "Rechnungsnr.", "Rechnungsdatum", "Fällig am", "14 Tage netto",
                  "RECHNUNGSEMPFÄNGER", "EINSATZORT", "ANLAGE", "Seriennr. 1245",
                  "Betriebsstunden: 40.110 h", "Beschreibung", "Art.-Nr.", "Menge", "Einzelpreis",
                  "Betrag (EUR)", "Zwischensumme", "USt.", "Gesamt EUR", "Seite 1 von 1",
                  "ZAHLUNGSINFORMATIONEN", "Auftrag AU-2026-3391 · Wartung", "Techniker:",
                  "Ölfreier Schraubenkompressor", "Arbeitszeit", "Pauschale", "Käuferreferenz",
                  "UNTERSCHRIFT DES KUNDEN", "Unterschrieben 21.11.2026 11:23 (UTC+01:00)",
                  "Verfahren: auf dem Gerät", "USt-IdNr.: DE811907980"):
        assert label in text, label
    for value in ("1.234,56", "27.11.2026", "11.12.2026", "1.618,06 €", "307,44 €", "1.925,50 €",
                  "19 %"):
        assert value in text, value
    for english in ("Invoice", "Bill to", "Page 1", "Subtotal", "Due date", "VAT"):
        assert english not in text, english


def test_data_text_is_printed_as_it_is_in_either_language() -> None:
    invoice = german_language_invoice()
    text = " ".join(pdf_text(render_invoice_pdf(invoice, language="de")))
    assert "On-site labor - M. Becker (technician)" in text  # a line description
    assert "4000 h service per maintenance contract" in text  # the job summary


def test_payment_instructions_print_the_iban_in_groups_of_four() -> None:
    # when
    en = " ".join(pdf_text(render_invoice_pdf(german_language_invoice())))
    de = " ".join(pdf_text(render_invoice_pdf(german_language_invoice(), language="de")))

    # then
    for fact in ("PAYMENT INSTRUCTIONS", "Account holder: Kompressor-Service Süd GmbH",
                 "IBAN: DE89 3704 0044 0532 0130 00", "BIC: COBADEFFXXX", "Bank: Commerzbank",
                 "Reference: KS-2026-00317", "Bitte Rechnungsnummer angeben.",
                 "Tel. +49 911 123456", "Contact: Anna Schmidt", "Buyer reference"):
        assert fact in en, fact
    for fact in ("Kontoinhaber: Kompressor-Service Süd GmbH", "IBAN: DE89 3704 0044 0532 0130 00",
                 "Verwendungszweck: KS-2026-00317", "Ansprechpartner: Anna Schmidt"):
        assert fact in de, fact


def test_credit_note_has_no_payment_instructions() -> None:
    invoice = dataclasses.replace(german_language_invoice(), kind=DocumentKind.CREDIT_NOTE,
                                  number="GS-2026-00001", corrects="KS-2026-00317")
    text = " ".join(pdf_text(render_invoice_pdf(invoice, language="de")))
    assert "GUTSCHRIFT" in text
    assert "Schreibt die Rechnung KS-2026-00317 vollständig gut." in text
    assert "ZAHLUNGSINFORMATIONEN" not in text


def test_german_language_keeps_the_sellers_paper_and_is_deterministic() -> None:
    pdf = render_invoice_pdf(us_invoice(), language="de")
    assert pdf == render_invoice_pdf(us_invoice(), language="de")
    box = PdfReader(io.BytesIO(pdf)).pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (612, 792)
    text = " ".join(pdf_text(pdf))
    assert "2.519,50 $" in text
    assert "21.12.2026" in text


def test_long_german_invoice_numbers_pages_in_german() -> None:
    pages = pdf_text(render_invoice_pdf(long_invoice(80), language="de"))
    for number, page in enumerate(pages, start=1):
        assert f"Seite {number} von {len(pages)}" in page
        assert "Beschreibung" in page
    assert "(Fortsetzung)" in pages[1]


@pytest.mark.parametrize(
    ("country", "language", "expected_money", "expected_date"),
    [
        ("DE", "de", "1.234,56 €", "27.11.2026"),
        ("US", "de", "1.234,56 €", "27.11.2026"),
        ("CH", "de", "€1'234.56", "27.11.2026"),
        ("US", "en", "€1,234.56", "Nov 27, 2026"),
        ("DE", "en", "1.234,56 €", "27.11.2026"),
        ("GB", "en", "€1,234.56", "27 Nov 2026"),
    ],
)
def test_formats_follow_german_language_else_the_sellers_country(
        country: str, language: str, expected_money: str, expected_date: str) -> None:
    fmt = Formats(country, language)
    assert fmt.money(Money.of("1234.56", "EUR")) == expected_money
    assert fmt.date(date(2026, 11, 27)) == expected_date
    assert Formats.iban("de893704 0044053201300 0") == "DE89 3704 0044 0532 0130 00"


def test_the_time_record_lists_each_technicians_day_span_and_hours() -> None:
    base = us_invoice()
    labor = (LaborEntry("T-07", LaborKind.TRAVEL, start=datetime(2026, 11, 20, 17, 5, tzinfo=CST),
                        end=datetime(2026, 11, 20, 17, 50, tzinfo=CST)),
             LaborEntry("T-07", LaborKind.ONSITE, start=datetime(2026, 11, 20, 17, 50, tzinfo=CST),
                        end=datetime(2026, 11, 20, 21, 35, tzinfo=CST)))
    invoice = dataclasses.replace(base, job=dataclasses.replace(base.job, labor=labor))
    text = " ".join(" ".join(pdf_text(render_invoice_pdf(invoice))).split())
    assert "Time record" in text
    assert "Nov 20, 2026 17:05–17:50 · R. Okafor (senior) · Travel · 0.75 h" in text
    assert "Nov 20, 2026 17:50–21:35 · R. Okafor (senior) · Labor · 3.75 h" in text


def test_a_time_entry_in_plain_hours_is_dated_on_the_completion_day_in_german() -> None:
    base = german_invoice()
    job = dataclasses.replace(base.job, labor=(
        LaborEntry("T-21", LaborKind.ONSITE, hours=Decimal("3.25")),))
    invoice = dataclasses.replace(base, job=job)
    text = " ".join(" ".join(pdf_text(render_invoice_pdf(invoice, language="de"))).split())
    assert "Arbeitszeitnachweis" in text
    day = f"{job.completed_at.day:02d}.{job.completed_at.month:02d}.{job.completed_at.year}"
    assert f"{day} · M. Becker (technician) · Arbeitszeit · 3,25 Std." in text
