"""The `autoinvoice` command as users run it: a subprocess, a config file, real HTTP to a
stand-in served on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from autoinvoice.sandbox.registry import make_standin, standin_app
from autoinvoice.sandbox.server import serve_in_thread
from tests.helpers import completed, dumps, signed
from tests.integration.conftest import tenant_toml

KEY = "sk_test_cli_777"


@pytest.fixture
def stripe_server():
    core = make_standin("stripe", api_key=KEY)
    with serve_in_thread(standin_app("stripe", core)) as server:
        yield core, server.base_url


@pytest.fixture
def config_file(tmp_path: Path, stripe_server) -> Path:
    _, base_url = stripe_server
    path = tmp_path / "autoinvoice.toml"
    path.write_text(f"""
documents_dir = "{tmp_path / 'docs'}"
[database]
url = "sqlite:///{tmp_path / 'cli.db'}"
""" + tenant_toml("northwind", "stripe", f'base_url = "{base_url}"\n'
                  'credentials = { api_key = "env:CLI_STRIPE_KEY" }'), encoding="utf-8")
    return path


def run(*args: str, config: Path | None = None, stdin: str | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "autoinvoice.cli", *args]
    if config:
        cmd += ["--config", str(config)]
    env = {**os.environ, "CLI_STRIPE_KEY": KEY}
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=60, check=False)


def test_ingest_then_worker_until_idle_sends_the_invoice(tmp_path, config_file, stripe_server):
    events = tmp_path / "events.ndjson"
    events.write_text(dumps(completed("WO-C1")) + "\n" + dumps(signed("WO-C1")) + "\n")
    ingested = run("ingest", str(events), config=config_file)
    assert ingested.returncode == 0, ingested.stderr
    assert ingested.stdout.count("accepted") == 2
    worked = run("worker", "--until-idle", config=config_file)
    assert worked.returncode == 0, worked.stderr
    shown = run("invoices", "show", "WO-C1", "--json", config=config_file)
    data = json.loads(shown.stdout)
    assert (data["state"], data["total"], data["number"]) == ("sent", "2519.50", "NW-2026-00001")
    assert [line["amount"] for line in data["lines"]][:2] == ["122.34", "815.63"]
    listed = json.loads(run("invoices", "list", "--json", config=config_file).stdout)
    assert [r["job_id"] for r in listed] == ["WO-C1"]
    core, _ = stripe_server
    assert len(core.find_invoices(job_id="WO-C1")) == 1


def test_ingest_from_stdin_and_duplicate(config_file):
    first = run("ingest", "-", config=config_file, stdin=dumps(completed("WO-C2")))
    second = run("ingest", "-", "--json", config=config_file, stdin=dumps(completed("WO-C2")))
    assert first.returncode == second.returncode == 0
    assert json.loads(second.stdout)["status"] == "duplicate"


def test_invalid_event_exits_2_names_fields_and_stores_nothing(tmp_path, config_file):
    bad = completed("WO-C3")
    bad["job"]["labor"][0]["kind"] = "nap"
    stream = tmp_path / "mixed.ndjson"
    stream.write_text(dumps(completed("WO-C4")) + "\n" + dumps(bad) + "\n")
    result = run("ingest", str(stream), config=config_file)
    assert result.returncode == 2
    assert "mixed.ndjson:2: job.labor[0].kind" in result.stderr
    assert "Traceback" not in result.stderr
    listed = json.loads(run("invoices", "list", "--json", config=config_file).stdout)
    assert listed == []  # the good line before the bad one was not stored either


def test_missing_file_and_bad_config_are_clear_errors(tmp_path, config_file):
    missing = run("ingest", str(tmp_path / "nope.json"), config=config_file)
    assert missing.returncode == 2
    assert "cannot read" in missing.stderr
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text('[tenants.x]\nlegal_name = "X"\n')
    result = run("invoices", "list", config=bad_config)
    assert result.returncode == 2
    assert "tenants.x.address: Field required" in result.stderr


def test_preview_shows_invoice_and_exact_requests_with_secrets_masked(config_file,
                                                                       stripe_server, tmp_path):
    event = tmp_path / "event.json"
    event.write_text(dumps(completed("WO-C5")))
    result = run("preview", str(event), "--json", config=config_file)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["invoice"]["total"] == "2519.50"
    requests = data["requests"]
    paths = [(r["method"], r["url"].split("?")[0].split("/v1/", 1)[1]) for r in requests]
    assert ("POST", "invoices") in paths
    assert sum(1 for p in paths if p == ("POST", "invoiceitems")) == 7
    assert all(r["url"].startswith(stripe_server[1]) for r in requests)
    for r in requests:
        assert KEY not in json.dumps(r)
        if r["method"] == "POST":
            assert r["headers"].get("Idempotency-Key", r["headers"].get("idempotency-key"))
    core, _ = stripe_server
    assert core.find_invoices(job_id="WO-C5") == []  # nothing was sent


def test_preview_of_the_shared_example_shows_the_quickbooks_requests(tmp_path, shared_dir):
    result = run("preview", str(shared_dir / "examples" / "job-emergency-repair.json"),
                 "--json", config=shared_dir / "examples" / "tenant-config.toml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["invoice"]["total"] == "2519.50"
    paths = [r["url"] for r in data["requests"]]
    assert any("/v3/company/" in p and "/invoice" in p for p in paths)
    assert {r["headers"]["authorization"] for r in data["requests"]} == {"***"}  # masked


def test_preview_of_a_platform_without_connector_still_shows_the_invoice(tmp_path, shared_dir):
    text = (shared_dir / "examples" / "tenant-config.toml").read_text().replace(
        'name = "quickbooks"', 'name = "wave"')
    config = tmp_path / "wave.toml"
    config.write_text(text)
    result = run("preview", str(shared_dir / "examples" / "job-emergency-repair.json"),
                 "--json", config=config, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["invoice"]["total"] == "2519.50"
    assert data["requests"] is None
    assert "wave" in data["requests_note"]
