"""``autoinvoice audit pack`` and ``autoinvoice documents`` on a job billed end to end."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from autoinvoice import cli
from autoinvoice.audit.pack import read_manifest
from autoinvoice.documents import en16931
from autoinvoice.pipeline import views
from autoinvoice.store.audit import entry_hash
from tests.integration.conftest import STRIPE_KEY, config_source
from tests.integration.test_einvoice_delivery import PARTS, bill, config_text, german_harness, job


@pytest.fixture
def billed(tmp_path, smtp_sink, monkeypatch):
    """A German job billed (CII e-invoice where the rules are present, else PDF only),
    with the config on disk for the CLI."""
    fmt = "cii" if en16931.rules_available() else "pdf"
    harness = german_harness(tmp_path, smtp_sink, monkeypatch, fmt)
    shown = bill(harness, "WO-A1")
    assert shown["state"] == "sent", shown
    config = tmp_path / "autoinvoice.toml"
    config.write_text(config_text(tmp_path, smtp_sink.port, fmt), encoding="utf-8")
    return harness, config, fmt


def pack_files(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_the_pack_holds_everything_and_its_manifest_matches_its_files(billed, tmp_path, capsys):
    harness, config, fmt = billed
    out = tmp_path / "packs"
    assert cli.main(["audit", "pack", "WO-A1", "--out", str(out), "--config", str(config)]) == 0
    [path] = out.glob("*.zip")
    assert read_manifest(path) == []
    files = pack_files(path)
    manifest = json.loads(files.pop("manifest.json"))
    assert set(manifest["files"]) == set(files)
    for name, data in files.items():
        assert manifest["files"][name]["sha256"] == hashlib.sha256(data).hexdigest()
    number = harness.row("WO-A1", tenant="ksf").number
    events = sorted(n for n in files if n.startswith("events/"))
    assert events == ["events/01-evt-WO-A1-done.json", "events/02-evt-WO-A1-signed.json"]
    assert json.loads(files["signature.json"])["signer_name"] == "Dana Reyes"
    decisions = json.loads(files["decisions.json"])
    config_json = json.loads(files["config.json"])
    assert decisions["config_version"] == config_json["sha256"]
    assert config_json["config"]["tax"]["rate"] == "0.19"
    assert decisions["invoice"]["lines"], "the priced lines are in the pack"
    tax = decisions["decisions"]["tax"]
    assert tax["rule"] == "VAT: DE VAT, a customer in DE at 0.19"
    assert tax["per_line_kind"]["part"] == {"rate": "0.19", "category": "S"}
    assert decisions["decisions"]["pricing"] == {"currency": "EUR", "fx_rate": None,
                                                 "price_list": None}
    assert f"documents/{number}.pdf" in files
    if fmt == "cii":
        assert f"documents/{number}.cii.xml" in files
    exchanges = json.loads(files["platform/exchanges.json"])
    posts = [x for step in exchanges for x in step["exchanges"] if x["method"] == "POST"]
    assert posts
    assert all(x["status"] in (200, 201) for x in posts)
    assert b"ksf-key" not in b"".join(files.values()), "the API key never enters the pack"
    assert json.loads(files["delivery.json"])["via"] == "email"
    chain = json.loads(files["history.json"])
    assert [e["hashed"]["action"] for e in chain][:2] == ["event_received", "event_received"]
    for entry in chain:  # an auditor can recompute every hash from the pack alone
        assert entry_hash(entry["prev_hash"], entry["hashed"]) == entry["hash"]


def test_tampering_with_a_packed_file_is_reported_by_the_manifest(billed, tmp_path):
    _, config, _ = billed
    out = tmp_path / "packs"
    cli.main(["audit", "pack", "WO-A1", "--out", str(out), "--config", str(config)])
    [path] = out.glob("*.zip")
    files = pack_files(path)
    files["decisions.json"] = files["decisions.json"].replace(b"0.19", b"0.07")
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    listed = json.loads(files["manifest.json"])["files"]["decisions.json"]["sha256"]
    actual = hashlib.sha256(files["decisions.json"]).hexdigest()
    assert read_manifest(path) == [
        f"decisions.json: sha256 {actual} but the manifest says {listed}"]


def test_packs_are_byte_for_byte_reproducible(billed, tmp_path):
    _, config, _ = billed
    first, second = tmp_path / "one", tmp_path / "two"
    cli.main(["audit", "pack", "WO-A1", "--out", str(first), "--config", str(config)])
    cli.main(["audit", "pack", "WO-A1", "--out", str(second), "--config", str(config)])
    [a], [b] = first.glob("*.zip"), second.glob("*.zip")
    assert a.read_bytes() == b.read_bytes()


def test_documents_writes_each_format_asked_and_the_stored_copy_is_the_one_sent(
        billed, tmp_path, smtp_sink, capsys):
    harness, config, fmt = billed
    out = tmp_path / "docs-out"
    code = cli.main(["documents", "WO-A1", "--format", "pdf", "--format", "ubl",
                     "--out", str(out), "--config", str(config)])
    number = harness.row("WO-A1", tenant="ksf").number
    written = sorted(p.name for p in out.iterdir())
    assert written == [f"{number}.pdf", f"{number}.ubl.xml"]
    _, message = smtp_sink.messages[0]
    sent = {p.get_filename(): p.get_content() for p in message.iter_attachments()}
    assert (out / f"{number}.pdf").read_bytes() == sent[f"{number}.pdf"]
    printed = capsys.readouterr().out
    assert "as sent" in printed
    if en16931.rules_available():
        assert code == 0
        assert "passes EN 16931" in printed
    else:
        assert "not available" in printed


def test_documents_writes_the_credit_note_of_a_corrected_job(billed, tmp_path, capsys):
    # given a sent invoice corrected by a credit note (the oil was not used after all)
    harness, config, fmt = billed
    changed = job("WO-A1")
    changed["event_id"] = "evt-WO-A1-done-2"
    changed["job"]["parts"] = PARTS[:1]
    harness.ingest(changed)
    harness.run()
    with harness.app.sessions() as session:
        [number] = [r.number for r in views.list_rows(session, "ksf", kind="credit_note")]
    # when its documents are asked for
    out = tmp_path / "credit-out"
    formats = ["pdf", "cii"] if fmt == "cii" else ["pdf"]
    code = cli.main(["documents", "WO-A1", "--credit-note", *sum((["--format", f] for f in
                     formats), []), "--out", str(out), "--config", str(config)])
    # then the credit note is written under its own number, the stored copy as sent
    written = sorted(p.name for p in out.iterdir())
    expected = {"pdf": f"{number}.pdf", "cii": f"{number}.cii.xml"}
    assert written == sorted(expected[f] for f in formats)
    if fmt == "cii":
        assert code == 0
        assert b"<ram:TypeCode>381</ram:TypeCode>" in (out / expected["cii"]).read_bytes()
        assert "as sent" in capsys.readouterr().out


def test_documents_of_a_job_without_credit_note_names_it_and_exits_2(billed, tmp_path, capsys):
    _, config, _ = billed
    code = cli.main(["documents", "WO-A1", "--credit-note", "--out", str(tmp_path / "x"),
                     "--config", str(config)])
    assert code == 2
    assert "--credit-note: job 'WO-A1' has no credit note" in capsys.readouterr().err


def test_documents_for_an_unknown_job_names_it_and_exits_2(billed, tmp_path, capsys):
    _, config, _ = billed
    code = cli.main(["documents", "WO-NOPE", "--out", str(tmp_path / "x"),
                     "--config", str(config)])
    assert code == 2
    assert "no invoice for job 'WO-NOPE'" in capsys.readouterr().err


def test_a_stripe_job_pack_masks_the_secret_key(tmp_path, harness, capsys):
    from tests.helpers import completed, signed

    harness.ingest(completed("WO-S1"))
    harness.ingest(signed("WO-S1"))
    harness.run()
    config = tmp_path / "stripe.toml"
    config.write_text(config_source(tmp_path), encoding="utf-8")
    out = tmp_path / "packs"
    assert cli.main(["audit", "pack", "WO-S1", "--out", str(out), "--config", str(config)]) == 0
    [path] = out.glob("*.zip")
    files = pack_files(path)
    everything = b"".join(files.values())
    assert STRIPE_KEY.encode() not in everything
    exchanges = json.loads(files["platform/exchanges.json"])
    urls = [x["url"] for step in exchanges for x in step["exchanges"]]
    assert any("/v1/invoices" in u for u in urls)
    headers = [x["request_headers"] for step in exchanges for x in step["exchanges"]]
    assert all(h.get("authorization") in (None, "***") for h in headers)



def test_audit_verify_catches_a_changed_stored_document_or_platform_exchange(billed):
    from sqlalchemy import text

    from autoinvoice.store.audit import verify

    harness, _, _ = billed
    with harness.app.sessions() as session:
        [report] = verify(session, "ksf")
    assert report.ok, report
    with harness.app.sessions.begin() as session:
        session.execute(text("UPDATE documents SET content = :c WHERE format = 'pdf'"),
                        {"c": b"%PDF-1.7 forged"})
    with harness.app.sessions() as session:
        [report] = verify(session, "ksf")
    assert not report.ok
    assert "stored document" in report.broken.problem
    assert ".pdf" in report.broken.problem


def test_audit_verify_catches_a_changed_platform_response(billed):
    from sqlalchemy import select, text

    from autoinvoice.store.audit import verify
    from autoinvoice.store.models import PlatformExchangeRow

    harness, _, _ = billed
    with harness.app.sessions.begin() as session:
        first = session.scalars(select(PlatformExchangeRow).order_by(PlatformExchangeRow.id)
                                ).first()
        body = json.dumps(first.exchanges).replace('"status": 201', '"status": 200', 1)
        assert body != json.dumps(first.exchanges)
        session.execute(text("UPDATE platform_exchanges SET exchanges = :e WHERE id = :i"),
                        {"e": body, "i": first.id})
    with harness.app.sessions() as session:
        [report] = verify(session, "ksf")
    assert not report.ok
    assert "platform exchange" in report.broken.problem
