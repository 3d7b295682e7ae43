"""The two things a new user runs first: the server and the demo."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from autoinvoice.documents import en16931
from autoinvoice.netutil import free_port
from tests.helpers import completed, dumps
from tests.integration.conftest import tenant_toml


def test_serve_accepts_events_over_http_and_its_worker_invoices_them(tmp_path: Path):
    config = tmp_path / "autoinvoice.toml"
    config.write_text(f"""
[database]
url = "sqlite:///{tmp_path / 'serve.db'}"
[smtp]
port = {free_port()}
""" + tenant_toml("northwind", "sandbox").replace(
        'require = ["job.completed", "job.signed"]', 'require = ["job.completed"]'),
        encoding="utf-8")
    port = free_port()
    env = {**os.environ, "TEST_NORTHWIND_API_KEY": "serve-key"}
    server = subprocess.Popen(
        [sys.executable, "-m", "autoinvoice.cli", "serve", "--host", "127.0.0.1", "--port",
         str(port), "--config", str(config)], env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                httpx.get(f"{url}/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        auth = {"Authorization": "Bearer serve-key"}
        response = httpx.post(f"{url}/v1/events", content=dumps(completed("WO-S1")),
                              headers=auth, timeout=10)
        assert response.status_code == 202, response.text
        shown = httpx.get(f"{url}/v1/invoices/WO-S1", headers=auth, timeout=10).json()
        assert shown["state"] == "pending_triggers"
        assert shown["job_id"] == "WO-S1"
    finally:
        server.terminate()
        server.wait(10)


def test_demo_runs_end_to_end_and_reports_where_things_are(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-m", "autoinvoice.cli", "demo", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False)
    assert result.returncode == 0, result.stderr
    assert "on the local sandbox stand-in" in result.stdout
    assert "sent" in result.stdout
    assert "paid" in result.stdout
    assert "unsigned" in result.stdout
    pdfs = list((tmp_path / "out" / "invoices").rglob("*.pdf"))
    mails = list((tmp_path / "out" / "mail").glob("*.eml"))
    sent = int(re.search(r"(\d+) sent", result.stdout).group(1))
    # every sent invoice went by e-mail with its PDF (without the EN 16931 rules, the
    # XRechnung customer's invoices are held, not sent: fewer than with ../shared)
    assert sent >= 15
    assert len(pdfs) == len(mails) == sent
    samples = tmp_path / "out" / "samples"
    if (Path(__file__).resolve().parents[3] / "shared" / "examples").is_dir():
        # one invoice per shared example job: two JSON jobs and the CSV's two work orders
        assert len(list(samples.glob("*.facturx.pdf"))) == 4
        assert len([p for p in samples.glob("*.pdf") if ".facturx" not in p.name]) == 4
        assert len(list(samples.glob("*.ubl.xml"))) == len(list(samples.glob("*.cii.xml"))) == 4
        assert len(list(samples.glob("*.xrechnung.xml"))) == 1  # the German seller's
        assert len(list(samples.glob("*.xrechnung-ubl.xml"))) == 1
        assert "samples of the shared examples in every format" in result.stdout
        if en16931.rules_available():  # CEN, Peppol and XRechnung rules, every sample
            assert "e-invoices: all pass the rules that apply" in result.stdout
