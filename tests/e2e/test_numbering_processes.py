"""Two worker processes on one SQLite file race through invoices and credit notes: each series
stays exactly 1..N (the Stripe stand-in served over real HTTP)."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.test_cli import KEY, run, stripe_server  # noqa: F401
from tests.helpers import EXAMPLE_EMERGENCY, completed, dumps, signed
from tests.integration.conftest import tenant_toml

JOBS = 8
PROCESSES = 2


@pytest.fixture
def config_file(tmp_path: Path, stripe_server) -> Path:  # noqa: F811
    """The stand-in has no rate limit of its own: let each process send as fast as it can."""
    _, base_url = stripe_server
    path = tmp_path / "autoinvoice.toml"
    path.write_text(f"""
documents_dir = "{tmp_path / 'docs'}"
[database]
url = "sqlite:///{tmp_path / 'race.db'}"
""" + tenant_toml("northwind", "stripe", f'base_url = "{base_url}"\n'
                  'credentials = { api_key = "env:CLI_STRIPE_KEY" }\n'
                  "rate_limit_per_second = 1000"), encoding="utf-8")
    return path


def race(config: object) -> None:
    """Two `autoinvoice worker --until-idle` processes at once."""
    cmd = [sys.executable, "-m", "autoinvoice.cli", "worker", "--until-idle", "--concurrency",
           "2", "--config", str(config)]
    env = {**os.environ, "CLI_STRIPE_KEY": KEY}
    workers = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for _ in range(PROCESSES)]
    for worker in workers:
        _, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err


def test_two_worker_processes_keep_both_series_gap_free(tmp_path, config_file,  # noqa: F811
                                                        stripe_server):  # noqa: F811
    events = tmp_path / "jobs.ndjson"
    events.write_text("".join(dumps(completed(f"WO-P{n}")) + "\n" + dumps(signed(f"WO-P{n}"))
                              + "\n" for n in range(JOBS)))
    assert run("ingest", str(events), config=config_file).returncode == 0
    race(config_file)
    parts = copy.deepcopy(EXAMPLE_EMERGENCY["job"]["parts"])
    parts[2]["quantity"] = 7
    events.write_text("".join(dumps(completed(f"WO-P{n}", event_id=f"evt-P{n}-v2",
                                              parts=parts)) + "\n" for n in range(JOBS)))
    assert run("ingest", str(events), config=config_file).returncode == 0
    race(config_file)
    listed = json.loads(run("invoices", "list", "--json", config=config_file).stdout)
    invoices = sorted(r["number"] for r in listed if r["kind"] == "invoice")
    notes = sorted(r["number"] for r in listed if r["kind"] == "credit_note")
    assert invoices == [f"NW-2026-{n:05d}" for n in range(1, 2 * JOBS + 1)]
    assert notes == [f"CN-NW-2026-{n:05d}" for n in range(1, JOBS + 1)]
    assert sorted({r["state"] for r in listed}) == ["credited", "sent"]
    core, _ = stripe_server
    assert core.count("credit_note") == JOBS
    assert core.count("invoice") == 2 * JOBS
