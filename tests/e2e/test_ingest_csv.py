"""Work-order CSV as users send it: `autoinvoice ingest FILE.csv --tenant T` (a subprocess
on the demo config) and POST /v1/work-orders (real HTTP on loopback)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from autoinvoice.config import default_config_text
from autoinvoice.store.models import EventRow
from tests.unit.test_work_orders import INLINE

AUTH = {"Authorization": "Bearer nw-key-123"}
CSV = {**AUTH, "Content-Type": "text/csv; charset=utf-8"}


@pytest.fixture
def demo_config(tmp_path: Path) -> Path:
    """The embedded demo config on a database of this test, invoicing as soon as the work
    order arrives (the demo's northwind also waits for a signature)."""
    text = default_config_text().replace(
        "sqlite:///./demo-output/autoinvoice.db", f"sqlite:///{tmp_path / 'csv.db'}").replace(
        'require = ["job.completed", "job.signed"]', 'require = ["work_order.finalized"]', 1)
    path = tmp_path / "autoinvoice.toml"
    path.write_text(text, encoding="utf-8")
    return path


def run(*args: str, config: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "autoinvoice.cli", *args, "--config", str(config)]
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "AUTOINVOICE_DEBUG": ""}, check=False)


def test_shared_csv_is_ingested_once_and_invoiced(shared_dir, demo_config):
    path = str(shared_dir / "examples" / "work-order-finalized.csv")
    first = run("ingest", path, "--tenant", "northwind", config=demo_config)
    assert first.returncode == 0, first.stderr
    assert [line.split()[:2] for line in first.stdout.splitlines()] == [
        ["accepted", "northwind/WO-10490"], ["accepted", "northwind/WO-10491"]]
    assert "line 3: 18 cells, the header has 17" in first.stderr  # the padded row, read
    again = run("ingest", path, "--tenant", "northwind", "--json", config=demo_config)
    assert [json.loads(line)["status"] for line in again.stdout.splitlines()] == [
        "duplicate", "duplicate"]
    # No sandbox stand-in runs here: the invoices are built and priced (what this test pins),
    # and the worker says, with exit 1, that creating them on the platform is to be retried.
    worked = run("worker", "--until-idle", config=demo_config)
    assert worked.returncode == 1
    assert "0 failed, 2 to be retried" in worked.stderr
    listed = run("invoices", "list", "--json", config=demo_config)
    # The demo config has both customers' addresses (see the unit tests for the arithmetic:
    # 575.00 + 482.00 + 40.97 tax, and 115.00 + 115.00).
    assert sorted((r["job_id"], r["total"], r["hold"]) for r in json.loads(listed.stdout)) == [
        ("WO-10490", "1097.97", None), ("WO-10491", "230.00", None)]


def test_inline_csv_from_stdin_with_format_csv(demo_config):
    done = run("ingest", "-", "--format", "csv", "--tenant", "northwind", config=demo_config,
               stdin=INLINE)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("accepted") == 2


def test_csv_without_tenant_is_refused(tmp_path, demo_config):
    path = tmp_path / "orders.csv"
    path.write_text(INLINE, encoding="utf-8")
    refused = run("ingest", str(path), config=demo_config)
    assert refused.returncode == 2
    assert "--tenant: required for a work-order CSV" in refused.stderr


def test_bad_csv_names_line_and_column_and_stores_nothing(tmp_path, demo_config):
    path = tmp_path / "orders.csv"
    path.write_text(INLINE.replace("Air filter,3", "Air filter,three"), encoding="utf-8")
    refused = run("ingest", str(path), "--tenant", "northwind", config=demo_config)
    assert refused.returncode == 2
    assert "invalid input, nothing stored" in refused.stderr
    assert "line 4, column part_qty: not a number (got 'three')" in refused.stderr
    listed = run("invoices", "list", "--json", config=demo_config)
    assert json.loads(listed.stdout) == []


# -- POST /v1/work-orders --------------------------------------------------------------------
def _events(harness) -> int:
    with harness.app.sessions() as session:
        return session.scalar(select(func.count()).select_from(EventRow))


def test_api_accepts_csv_then_answers_duplicates(api, harness):
    first = api.post("/v1/work-orders?tenant=northwind", content=INLINE, headers=CSV)
    again = api.post("/v1/work-orders", content=INLINE, headers=CSV)
    assert first.status_code == 202
    assert [r["status"] for r in first.json()["results"]] == ["accepted", "accepted"]
    assert again.status_code == 200
    assert [r["status"] for r in again.json()["results"]] == ["duplicate", "duplicate"]
    assert _events(harness) == 2


def test_api_bad_csv_is_422_naming_line_and_column(api, harness):
    response = api.post("/v1/work-orders", content=INLINE.replace("2.5,l", "x,l"), headers=CSV)
    assert response.status_code == 422
    assert response.json()["problems"] == ["line 2, column part_qty: not a number (got 'x')"]
    assert _events(harness) == 0


def test_api_refuses_another_tenant_and_other_content_types(api, harness):
    other = api.post("/v1/work-orders?tenant=mail", content=INLINE, headers=CSV)
    assert other.status_code == 403
    as_json = api.post("/v1/work-orders", content=INLINE,
                       headers={**AUTH, "Content-Type": "application/json"})
    assert as_json.status_code == 415
    assert _events(harness) == 0
