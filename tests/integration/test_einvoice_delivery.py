"""A customer's e-invoice (``customers.<id>.einvoice_format``) is made and checked against
EN 16931 when the invoice is numbered, stored with it, its hash in the audit log, and
e-mailed beside the PDF; a fatal finding holds the invoice with the rule ids, unsent."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from autoinvoice.bootstrap import bootstrap
from autoinvoice.config import parse_config
from autoinvoice.documents import en16931
from autoinvoice.documents.schematron import RuleSet
from autoinvoice.pipeline import documents
from autoinvoice.pipeline.worker import Worker
from autoinvoice.sandbox.generic import GenericSandbox
from autoinvoice.sandbox.generic import mock_transport as generic_transport
from autoinvoice.store.models import DocumentRow, HistoryRow
from tests.helpers import VirtualTimer, completed, signed
from tests.integration.conftest import FakeClock, Harness

CUSTOMER = {"id": "K-1042", "name": "Brauerei Feldmann KG", "email": "buchhaltung@feldmann.example",
            "vat_id": "DE811569869",
            "billing_address": {"line1": "Brauhausgasse 2", "city": "Bamberg",
                                "postal_code": "96047", "country": "DE"}}
LABOR = [{"technician": "T-07", "kind": "onsite", "start": "2026-11-20T08:00:00+01:00",
          "end": "2026-11-20T11:30:00+01:00"}]
PARTS = [{"sku": "6.4149.0", "description": "Luftfilterelement", "quantity": 2, "unit": "ea"},
         {"sku": "9.0915.1", "description": "Sigma Fluid S-460, 20 l", "quantity": 1,
          "unit": "ea"}]


def config_text(tmp_path: Path, smtp_port: int, fmt: str) -> str:
    return f"""
documents_dir = "{tmp_path / 'docs'}"
[database]
url = "sqlite:///{tmp_path / 'e.db'}"
[smtp]
host = "127.0.0.1"
port = {smtp_port}
[tenants.ksf]
legal_name = "Kompressor-Service Franken GmbH"
tax_id = "DE287654324"
email = "rechnung@kompressor-franken.example"
phone = "+49 911 123456-0"
contact_name = "Petra Vogel"
address = {{ line1 = "Industriestraße 4", city = "Nürnberg", postal_code = "90431", \
country = "DE" }}
currency = "EUR"
payment_terms_days = 14
invoice_series = "RE-{{year}}-{{seq:04d}}"
timezone = "Europe/Berlin"
api_keys = ["env:TEST_KSF_API_KEY"]
payment = {{ iban = "DE89370400440532013000", bic = "COBADEFFXXX", \
account_holder = "Kompressor-Service Franken GmbH" }}
documents = {{ language = "de" }}
[tenants.ksf.platform]
name = "sandbox"
[tenants.ksf.rates]
technician = "98.00"
senior = "118.00"
[tenants.ksf.tax]
regime = "vat"
rate = "0.19"
labor_taxable = true
parts_taxable = true
[tenants.ksf.customers.K-1042]
einvoice_format = "{fmt}"
buyer_reference = "991-01234-56"
[tenants.ksf.pricebook]
"6.4149.0" = {{ price = "84.60", description = "Luftfilterelement" }}
"9.0915.1" = {{ price = "312.00", description = "Sigma Fluid S-460, 20 l" }}
"""


def german_harness(tmp_path: Path, smtp_sink: Any, monkeypatch: pytest.MonkeyPatch,
                   fmt: str) -> Harness:
    monkeypatch.setenv("TEST_KSF_API_KEY", "ksf-key")
    clock, generic = FakeClock(), GenericSandbox()
    config = parse_config(config_text(tmp_path, smtp_sink.port, fmt), "test config")
    app = bootstrap(config, clock=clock, transports={"ksf": generic_transport(generic)},
                    timer=VirtualTimer())
    return Harness(app, clock, None, generic, Worker(app), [])  # type: ignore[arg-type]


def job(job_id: str) -> dict[str, Any]:
    event = completed(job_id, tenant="ksf", customer=CUSTOMER, labor=LABOR, parts=PARTS,
                      po_number=None, mileage=None, service_type="repair",
                      completed_at="2026-11-20T11:30:00+01:00")
    event["job"]["technicians"] = [{"id": "T-07", "name": "M. Becker", "grade": "senior"}]
    return event


def bill(harness: Harness, job_id: str) -> dict[str, Any]:
    harness.ingest(job(job_id))
    harness.ingest(signed(job_id, tenant="ksf"))
    harness.run()
    return harness.show(job_id, tenant="ksf")


def attachments(message: Any) -> dict[str, bytes]:
    return {part.get_filename(): part.get_content() for part in message.iter_attachments()}


def entries(harness: Harness, invoice_id: int) -> dict[str, dict[str, Any]]:
    with harness.app.sessions() as session:
        rows = session.scalars(select(HistoryRow).where(HistoryRow.invoice_id == invoice_id))
        return {row.action: row.detail for row in rows}


def kept(harness: Harness, invoice_id: int) -> dict[str, DocumentRow]:
    with harness.app.sessions() as session:
        rows = session.scalars(select(DocumentRow).where(DocumentRow.invoice_id == invoice_id))
        return {row.format: row for row in rows}


@pytest.fixture
def rules() -> None:
    if en16931.missing_rules(tuple(RuleSet)):
        pytest.skip("e-invoice rules (../shared/en16931: CEN, Peppol, XRechnung, SchXslt) are "
                    "absent: e-invoices cannot be checked")


@pytest.mark.parametrize("fmt", ["ubl", "cii", "xrechnung", "xrechnung-ubl"])
def test_the_checked_einvoice_is_emailed_beside_the_pdf_and_kept_with_its_hash(
        tmp_path, smtp_sink, monkeypatch, rules, fmt):
    harness = german_harness(tmp_path, smtp_sink, monkeypatch, fmt)
    shown = bill(harness, "WO-E1")
    assert shown["state"] == "sent", shown
    row = harness.row("WO-E1", tenant="ksf")
    files = kept(harness, row.id)
    assert set(files) == {fmt, "pdf"}
    _, message = smtp_sink.messages[0]
    sent = attachments(message)
    assert sent == {f"{row.number}.pdf": files["pdf"].content,
                    f"{row.number}.{fmt}.xml": files[fmt].content}
    assert en16931.validate_format(files[fmt].content, fmt).passed
    history = entries(harness, row.id)
    for made in files.values():
        assert made.sha256 == hashlib.sha256(made.content).hexdigest()
    assert history["einvoice_checked"]["document_hashes"] == {
        files[fmt].filename: files[fmt].sha256}
    assert history["delivered"]["document_hashes"] == {files["pdf"].filename: files["pdf"].sha256}
    assert f"{row.number}.{fmt}.xml" in message.get_body(("plain",)).get_content()


def test_a_facturx_customer_gets_one_pdf_carrying_the_checked_cii(
        tmp_path, smtp_sink, monkeypatch, rules):
    harness = german_harness(tmp_path, smtp_sink, monkeypatch, "facturx")
    shown = bill(harness, "WO-E6")
    assert shown["state"] == "sent", shown
    row = harness.row("WO-E6", tenant="ksf")
    files = kept(harness, row.id)
    assert set(files) == {"cii", "facturx"}
    _, message = smtp_sink.messages[0]
    sent = attachments(message)
    assert sent == {f"{row.number}.pdf": files["facturx"].content}
    assert documents.facturx_xml(sent[f"{row.number}.pdf"]) == files["cii"].content
    assert b"pdfaid:part" in files["facturx"].content or b"pdfaid" in files["facturx"].content


def test_an_xrechnung_without_the_sellers_contact_is_held_naming_the_br_de_rules(
        tmp_path, smtp_sink, monkeypatch, rules):
    text = config_text(tmp_path, smtp_sink.port, "xrechnung").replace(
        'phone = "+49 911 123456-0"\n', "").replace('contact_name = "Petra Vogel"\n', "")
    monkeypatch.setenv("TEST_KSF_API_KEY", "ksf-key")
    clock, generic = FakeClock(), GenericSandbox()
    app = bootstrap(parse_config(text, "test config"), clock=clock,
                    transports={"ksf": generic_transport(generic)}, timer=VirtualTimer())
    harness = Harness(app, clock, None, generic, Worker(app), [])  # type: ignore[arg-type]
    assert bill(harness, "WO-E7")["state"] == "on_hold"
    messages = [r["message"] for r in harness.row("WO-E7", tenant="ksf").hold_reasons]
    assert any(m.startswith("[BR-DE-6]") for m in messages), messages  # the phone
    assert smtp_sink.messages == []


def test_a_fatal_en16931_finding_holds_the_invoice_with_the_rule_id_and_nothing_leaves(
        tmp_path, smtp_sink, monkeypatch, rules):
    real = documents.make_einvoice

    def off_by_a_cent(invoice, fmt):
        made = real(invoice, fmt)
        total = str(invoice.total.amount).encode()
        wrong = str(invoice.total.amount + 1).encode()
        content = made.content.replace(b">" + total + b"</cbc:PayableAmount>",
                                       b">" + wrong + b"</cbc:PayableAmount>")
        assert content != made.content
        return documents.Made(made.format, made.filename, made.media_type, content)

    monkeypatch.setattr(documents, "make_einvoice", off_by_a_cent)
    harness = german_harness(tmp_path, smtp_sink, monkeypatch, "ubl")
    shown = bill(harness, "WO-E2")
    assert shown["state"] == "on_hold"
    row = harness.row("WO-E2", tenant="ksf")
    codes = {reason["code"] for reason in row.hold_reasons}
    assert codes == {"einvoice_invalid"}
    assert any("[BR-CO-15]" in r["message"] or "[BR-CO-16]" in r["message"]
               for r in row.hold_reasons), row.hold_reasons
    assert smtp_sink.messages == []
    assert not [c for c in harness.generic.calls if c.method == "POST"
                and c.path.startswith("/invoices")]
    assert kept(harness, row.id) == {}


def test_without_the_rules_an_einvoice_is_held_unchecked_rather_than_sent(
        tmp_path, smtp_sink, monkeypatch):
    monkeypatch.setenv(en16931.RULES_DIR_ENV, str(tmp_path / "no-rules"))
    harness = german_harness(tmp_path, smtp_sink, monkeypatch, "cii")
    shown = bill(harness, "WO-E3")
    assert shown["state"] == "on_hold"
    reasons = harness.row("WO-E3", tenant="ksf").hold_reasons
    assert [r["code"] for r in reasons] == ["einvoice_unchecked"]
    assert en16931.RULES_DIR_ENV in reasons[0]["message"]
    assert smtp_sink.messages == []


def test_a_customer_without_an_einvoice_format_gets_the_pdf_alone_in_the_tenants_language(
        tmp_path, smtp_sink, monkeypatch):
    import io

    from pypdf import PdfReader

    harness = german_harness(tmp_path, smtp_sink, monkeypatch, "pdf")
    shown = bill(harness, "WO-E4")
    assert shown["state"] == "sent"
    _, message = smtp_sink.messages[0]
    sent = attachments(message)
    assert list(sent) == [f"{shown['number']}.pdf"]
    text = PdfReader(io.BytesIO(sent[f"{shown['number']}.pdf"])).pages[0].extract_text()
    assert "Rechnung" in text
    assert message["Subject"].startswith(f"Rechnung {shown['number']} von Kompressor-Service")
    body = message.get_body(("plain",)).get_content()
    assert body.startswith("Guten Tag Brauerei Feldmann KG,")
    assert "Zahlbetrag:" in body
    assert "Mit freundlichen Grüßen" in body
    assert "DE89 3704 0044 0532 0130 00" in text  # the tenant's IBAN, in groups of four


def test_where_the_platform_sends_its_own_email_the_einvoice_follows_by_ours(
        tmp_path, smtp_sink, env, rules):
    """Stripe e-mails its invoice itself; a customer who receives e-invoices also gets ours
    (PDF and UBL) by SMTP, and the delivery says both."""
    from autoinvoice.sandbox.stripe import StripeSandbox
    from autoinvoice.sandbox.stripe import mock_transport as stripe_transport
    from tests.integration.conftest import STRIPE_KEY, config_source

    # a US seller and buyer on Peppol: their participant ids (GLNs), as no VAT id gives one
    text = config_source(tmp_path, smtp_sink.port).replace(
        "[tenants.northwind]\n", '[tenants.northwind]\npeppol_id = "0088:4012345000009"\n', 1) + (
        '\n[tenants.northwind.customers.CUST-0088]\neinvoice_format = "ubl"\n'
        'peppol_id = "0088:5790000435975"\n')
    clock, stripe = FakeClock(), StripeSandbox(api_key=STRIPE_KEY)
    app = bootstrap(parse_config(text, "test config"), clock=clock,
                    transports={"northwind": stripe_transport(stripe)}, timer=VirtualTimer())
    harness = Harness(app, clock, stripe, None, Worker(app), [])  # type: ignore[arg-type]
    harness.ingest(completed("WO-E5"))
    harness.ingest(signed("WO-E5"))
    harness.run()
    shown = harness.show("WO-E5")
    assert shown["state"] == "sent", shown
    assert shown["delivery"]["via"] == "platform+email"
    _, message = smtp_sink.messages[0]
    assert sorted(attachments(message)) == [f"{shown['number']}.pdf",
                                            f"{shown['number']}.ubl.xml"]


def test_a_credit_note_goes_out_as_a_checked_ubl_credit_note_too(
        tmp_path, smtp_sink, monkeypatch, rules):
    harness = german_harness(tmp_path, smtp_sink, monkeypatch, "ubl")
    assert bill(harness, "WO-E8")["state"] == "sent"
    changed = job("WO-E8")
    changed["event_id"] = "evt-WO-E8-done-2"
    changed["job"]["parts"] = PARTS[:1]  # the oil was not used after all
    harness.ingest(changed)
    harness.run()
    subjects = [m["Subject"] for _, m in smtp_sink.messages]
    assert len(subjects) == 3, subjects  # invoice, its credit note, the new invoice
    _, note = next((r, m) for r, m in smtp_sink.messages if m["Subject"].startswith("Gutschrift"))
    [xml] = [v for k, v in attachments(note).items() if k.endswith(".ubl.xml")]
    assert b"<CreditNote" in xml
    assert en16931.validate_format(xml, "ubl").passed


def test_a_peppol_customer_without_electronic_address_is_held_naming_the_peppol_rule(
        tmp_path, smtp_sink, env, rules):
    """A US buyer without participant id (and no VAT id to give one): the Peppol rules hold
    the UBL before anything reaches Stripe or the client. (A seller without one refuses the
    start: ``test_endpoint``.)"""
    from autoinvoice.sandbox.stripe import StripeSandbox
    from autoinvoice.sandbox.stripe import mock_transport as stripe_transport
    from tests.integration.conftest import STRIPE_KEY, config_source

    text = config_source(tmp_path, smtp_sink.port).replace(
        "[tenants.northwind]\n", '[tenants.northwind]\npeppol_id = "0088:4012345000009"\n', 1) + (
        '\n[tenants.northwind.customers.CUST-0088]\neinvoice_format = "ubl"\n')
    clock, stripe = FakeClock(), StripeSandbox(api_key=STRIPE_KEY)
    app = bootstrap(parse_config(text, "test config"), clock=clock,
                    transports={"northwind": stripe_transport(stripe)}, timer=VirtualTimer())
    harness = Harness(app, clock, stripe, None, Worker(app), [])  # type: ignore[arg-type]
    harness.ingest(completed("WO-E9"))
    harness.ingest(signed("WO-E9"))
    harness.run()
    assert harness.show("WO-E9")["state"] == "on_hold"
    messages = [r["message"] for r in harness.row("WO-E9").hold_reasons]
    assert any(m.startswith("[PEPPOL-EN16931-R010]") for m in messages), messages
    assert smtp_sink.messages == []
    assert stripe.find_invoices(job_id="WO-E9") == []
