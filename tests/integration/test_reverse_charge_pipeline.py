"""Cross-border VAT outcomes go the whole way: a German service company invoicing an Austrian
business with a valid VAT id is reverse charged (AE, no VAT, the Article 196 note on the PDF
and in the e-invoice) and sent; with an invalid VAT id it is held, German VAT charged until
someone looks; a Swiss business is outside the scope of German VAT (O) and sent too. The
stored invoice is read back by every later step (number, create, send, ``documents``)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from autoinvoice.bootstrap import bootstrap
from autoinvoice.config import parse_config
from autoinvoice.documents import en16931
from autoinvoice.domain.invoice import TaxCategory
from autoinvoice.pipeline import documents
from autoinvoice.pipeline.worker import Worker
from autoinvoice.sandbox.generic import GenericSandbox
from autoinvoice.sandbox.generic import mock_transport as generic_transport
from autoinvoice.store import repo
from tests.helpers import VirtualTimer, signed
from tests.integration.conftest import FakeClock, Harness
from tests.integration.einvoice_facts import stated
from tests.integration.test_einvoice_delivery import config_text, job

VIENNA = {"line1": "Ringstrasse 1", "city": "Wien", "postal_code": "1010", "country": "AT"}
ZURICH = {"line1": "Bahnhofstrasse 10", "city": "Zürich", "postal_code": "8001",
          "country": "CH"}
AUSTRIAN = {"id": "K-AT", "name": "Wiener Druckluft GmbH", "email": "office@wdl.example",
            "vat_id": "ATU13585627", "billing_address": VIENNA}  # check digit valid
SWISS = {"id": "K-CH", "name": "Zürcher Pressluft AG", "email": "kreditoren@zpl.example",
         "vat_id": "CHE-116.281.710 MWST", "billing_address": ZURICH}


def config_source(tmp_path: Path, smtp_port: int, fmt: str = "ubl") -> str:
    """The German tenant of the e-invoice tests, in English, with an Austrian and a Swiss
    business customer who both receive ``fmt`` (UBL unless asked) and quote a PO."""
    return config_text(tmp_path, smtp_port, "ubl").replace(
        'documents = { language = "de" }', 'documents = { language = "en" }') + f"""
[tenants.ksf.customers.K-AT]
einvoice_format = "{fmt}"
buyer_reference = "PO-4711"
[tenants.ksf.customers.K-CH]
einvoice_format = "{fmt}"
buyer_reference = "PO-4712"
"""


def make_harness(tmp_path: Path, smtp_port: int, fmt: str = "ubl") -> Harness:
    text = config_source(tmp_path, smtp_port, fmt)
    (tmp_path / "autoinvoice.toml").write_text(text, encoding="utf-8")
    clock, generic = FakeClock(), GenericSandbox()
    app = bootstrap(parse_config(text, "test config"), clock=clock,
                    transports={"ksf": generic_transport(generic)}, timer=VirtualTimer())
    return Harness(app, clock, None, generic, Worker(app), [])  # type: ignore[arg-type]


@pytest.fixture
def harness(tmp_path: Path, smtp_sink: Any, monkeypatch: pytest.MonkeyPatch) -> Harness:
    monkeypatch.setenv("TEST_KSF_API_KEY", "ksf-key")
    return make_harness(tmp_path, smtp_sink.port)


@pytest.fixture
def rules() -> None:
    if not en16931.rules_available():
        pytest.skip("EN 16931 rules (../shared/en16931) are absent: e-invoices cannot be checked")


def bill(harness: Harness, job_id: str, customer: dict[str, Any]) -> dict[str, Any]:
    event = job(job_id)
    event["job"]["customer"] = customer
    harness.ingest(event)
    harness.ingest(signed(job_id, tenant="ksf"))
    harness.run()
    return harness.show(job_id, tenant="ksf")


def job_view(harness: Harness, job_id: str) -> dict[str, Any]:
    """``invoices show --json``: the newest revision, every document of the job under it."""
    from autoinvoice.pipeline import views

    with harness.app.sessions() as session:
        return views.job_detail(session, views.find_job(session, job_id, "ksf")[0])


def kept(harness: Harness, job_id: str) -> dict[str, documents.Made]:
    with harness.app.sessions() as session:
        return documents.stored(session, harness.row(job_id, tenant="ksf").id)


def pdf_text(content: bytes) -> str:
    pages = PdfReader(io.BytesIO(content)).pages
    return " ".join(" ".join(page.extract_text().split()) for page in pages)


def ubl_facts(xml: bytes) -> dict[str, Any]:
    facts = stated(xml)
    return {"payable": facts["totals"][3], "tax": facts["totals"][1],
            "categories": {c for c, _, _, _ in facts["breakdown"]},
            "reasons": [r for _, _, _, r in facts["breakdown"]], "note": facts["notes"]}


def test_de_to_at_with_a_valid_vat_id_is_reverse_charged_and_sent_with_the_article_196_note(
        harness, smtp_sink, rules):
    # when a German company bills an Austrian business with a valid VAT id
    shown = bill(harness, "WO-AT1", AUSTRIAN)
    # then it is sent, net, every line AE
    assert shown["state"] == "sent", shown
    assert (shown["subtotal"], shown["tax"], shown["total"]) == ("894.20", "0.00", "894.20")
    invoice = repo.load_invoice(harness.row("WO-AT1", tenant="ksf"))
    assert {line.tax_category for line in invoice.lines} == {TaxCategory.REVERSE_CHARGE}
    [note] = invoice.notes
    assert "Article 196" in note
    assert invoice.exemption_reasons == ((TaxCategory.REVERSE_CHARGE, note),)
    # and the note is printed on the PDF and carried by the e-invoice, both as sent
    files = kept(harness, "WO-AT1")
    assert set(files) == {"pdf", "ubl"}
    assert note in pdf_text(files["pdf"].content)
    facts = ubl_facts(files["ubl"].content)
    assert facts == {"payable": Decimal("894.20"), "tax": Decimal("0.00"),
                     "categories": {"AE"}, "reasons": [note], "note": note}
    assert en16931.validate_format(files["ubl"].content, "ubl").passed
    [(recipients, message)] = smtp_sink.messages
    assert recipients == ["office@wdl.example"]
    attached = {p.get_filename(): p.get_content() for p in message.iter_attachments()}
    assert attached[files["ubl"].filename] == files["ubl"].content


def test_de_to_at_with_an_invalid_vat_id_is_held_with_german_vat_and_nothing_leaves(
        harness, smtp_sink):
    # given an Austrian VAT id whose check digit is wrong
    bad = {**AUSTRIAN, "vat_id": "ATU13585626"}
    # when the job is billed
    shown = bill(harness, "WO-AT2", bad)
    # then it waits for a person, taxed at the German rate, not reverse charged
    assert shown["state"] == "on_hold", shown
    assert [r["code"] for r in shown["hold"]["reasons"]] == ["invalid_vat_id"]
    assert "ATU13585626" in shown["hold"]["reasons"][0]["message"]
    assert (shown["subtotal"], shown["tax"], shown["total"]) == ("894.20", "169.90", "1064.10")
    assert smtp_sink.messages == []
    assert not [c for c in harness.generic.calls if c.method == "POST"]


def test_a_swiss_business_is_outside_the_scope_of_german_vat_and_sent(
        harness, smtp_sink, rules):
    shown = bill(harness, "WO-CH1", SWISS)
    assert shown["state"] == "sent", shown
    assert (shown["tax"], shown["total"]) == ("0.00", "894.20")
    invoice = repo.load_invoice(harness.row("WO-CH1", tenant="ksf"))
    assert {line.tax_category for line in invoice.lines} == {TaxCategory.NOT_SUBJECT}
    [note] = invoice.notes
    assert "Outside the scope of DE VAT" in note
    files = kept(harness, "WO-CH1")
    assert note in pdf_text(files["pdf"].content)
    facts = ubl_facts(files["ubl"].content)
    assert (facts["categories"], facts["reasons"], facts["tax"]) == ({"O"}, [note], Decimal(0))
    assert en16931.validate_format(files["ubl"].content, "ubl").passed


@pytest.mark.parametrize("customer", [AUSTRIAN, SWISS], ids=["AE", "O"])
def test_autoinvoice_documents_writes_the_pdf_and_ubl_of_a_reverse_charged_job(
        harness, tmp_path, rules, customer):
    # given a reverse-charged (or out-of-scope) invoice that was sent
    assert bill(harness, "WO-AT3", customer)["state"] == "sent"
    number = harness.row("WO-AT3", tenant="ksf").number
    out = tmp_path / "out"
    # when a user asks for its documents with the command
    done = subprocess.run(
        [sys.executable, "-m", "autoinvoice.cli", "documents", "WO-AT3", "--format", "pdf",
         "--format", "ubl", "--out", str(out), "--config", str(tmp_path / "autoinvoice.toml")],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "TEST_KSF_API_KEY": "ksf-key"})
    # then both are written, as sent, and the UBL passes
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == [f"{number}.pdf", f"{number}.ubl.xml"]
    files = kept(harness, "WO-AT3")
    assert (out / f"{number}.ubl.xml").read_bytes() == files["ubl"].content
    assert (out / f"{number}.pdf").read_bytes() == files["pdf"].content
    assert done.stdout.count("as sent") == 2
    assert "passes EN 16931" in done.stdout


def test_a_reverse_charged_invoice_whose_job_changed_is_credited_with_the_same_note(
        harness, smtp_sink, rules):
    # given a reverse-charged invoice that was sent
    assert bill(harness, "WO-AT4", AUSTRIAN)["state"] == "sent"
    # when the job comes in again without the oil
    changed = job("WO-AT4")
    changed["event_id"] = "evt-WO-AT4-done-2"
    changed["job"]["customer"] = AUSTRIAN
    changed["job"]["parts"] = changed["job"]["parts"][:1]
    harness.ingest(changed)
    harness.run()
    # then the credit note is reverse charged like the invoice it credits, and says so
    shown = job_view(harness, "WO-AT4")
    assert [(d["kind"], d["revision"], d["state"]) for d in shown["documents"]] == [
        ("invoice", 1, "credited"), ("credit_note", 1, "sent"), ("invoice", 2, "sent")]
    with harness.app.sessions() as session:
        rows = {(r.kind, r.revision): r for r in repo.job_documents(session, "ksf", "WO-AT4")}
        note_row = rows[("credit_note", 1)]
        credit = repo.load_invoice(note_row)
        files = documents.stored(session, note_row.id)
    assert credit.is_credit_note
    assert credit.corrects == rows[("invoice", 1)].number
    assert {line.tax_category for line in credit.lines} == {TaxCategory.REVERSE_CHARGE}
    [note] = credit.notes
    assert "Article 196" in note
    assert note in pdf_text(files["pdf"].content)
    assert b"<CreditNote" in files["ubl"].content
    facts = ubl_facts(files["ubl"].content)
    assert (facts["categories"], facts["reasons"], facts["note"]) == ({"AE"}, [note], note)
    assert facts["payable"] == credit.total.amount == Decimal("894.20")
    assert en16931.validate_format(files["ubl"].content, "ubl").passed
    assert len(smtp_sink.messages) == 3  # the invoice, its credit note, the new invoice


def test_a_held_invalid_vat_id_corrected_in_review_is_reverse_charged_and_sent(
        harness, smtp_sink, rules):
    from autoinvoice.pipeline.review import approve, parse_edits

    # given an invoice held because the Austrian VAT id was mistyped
    assert bill(harness, "WO-AT5", {**AUSTRIAN, "vat_id": "ATU13585626"})["state"] == "on_hold"
    # when the reviewer corrects the id
    edits = parse_edits('{"customer": {"vat_id": "ATU13585627"}}', None, [])
    approve(harness.app, "WO-AT5", "ksf", actor="dana", note="id checked in VIES",
            edits=edits)
    harness.run()
    # then the new revision is reverse charged and sent; the held one is void
    shown = job_view(harness, "WO-AT5")
    assert [(d["revision"], d["state"]) for d in shown["documents"]] == [(1, "void"),
                                                                        (2, "sent")]
    assert (shown["tax"], shown["total"]) == ("0.00", "894.20")
    invoice = repo.load_invoice(harness.row("WO-AT5", tenant="ksf"))
    assert {line.tax_category for line in invoice.lines} == {TaxCategory.REVERSE_CHARGE}
    assert invoice.customer.vat_id == "ATU13585627"


@pytest.mark.parametrize("fmt", ["cii", "facturx", "xrechnung"])
@pytest.mark.parametrize("customer", [AUSTRIAN, SWISS], ids=["AE", "O"])
def test_reverse_charge_and_out_of_scope_go_out_in_every_einvoice_format(
        tmp_path, smtp_sink, monkeypatch, rules, fmt, customer):
    # given a customer who receives CII, Factur-X or XRechnung (UBL: the tests above)
    monkeypatch.setenv("TEST_KSF_API_KEY", "ksf-key")
    harness = make_harness(tmp_path, smtp_sink.port, fmt)
    # when it is billed
    shown = bill(harness, "WO-F1", customer)
    # then it is sent with its checked e-invoice, which names the category and our reason
    assert shown["state"] == "sent", shown
    invoice = repo.load_invoice(harness.row("WO-F1", tenant="ksf"))
    [(category, reason)] = invoice.exemption_reasons
    files = kept(harness, "WO-F1")
    xml = files["cii" if fmt == "facturx" else fmt].content
    if fmt == "facturx":
        assert documents.facturx_xml(files["facturx"].content) == xml
    facts = stated(xml)
    assert {c for c, _, _ in facts["lines"]} == {category.value}
    assert [(c, r) for c, _, _, r in facts["breakdown"]] == [(category.value, reason)]
    assert facts["totals"][1:] == (Decimal(0), Decimal("894.20"), Decimal("894.20"))


def test_invoices_show_says_each_lines_tax_category_and_the_legal_note(
        harness, tmp_path, capsys):
    from autoinvoice import cli

    # given a reverse-charged invoice (held or not, the reviewer must see why there is no VAT)
    bill(harness, "WO-AT6", AUSTRIAN)
    invoice = repo.load_invoice(harness.row("WO-AT6", tenant="ksf"))
    # when someone looks at it
    shown = job_view(harness, "WO-AT6")
    code = cli.main(["invoices", "show", "WO-AT6", "--config",
                     str(tmp_path / "autoinvoice.toml")])
    # then each line names its category and the note is there, as on the PDF
    assert [line["tax_category"] for line in shown["lines"]] == ["AE", "AE", "AE"]
    assert shown["notes"] == list(invoice.notes)
    printed = capsys.readouterr().out
    assert code == 0
    assert "tax_category" in printed
    assert invoice.notes[0] in printed
