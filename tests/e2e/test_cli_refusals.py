"""Issue 11: the command never says "fine" about a config or tenant it did not use.

Each test runs ``autoinvoice`` as a user does (a subprocess in a folder of its own)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import tenant_toml


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "AUTOINVOICE_CONFIG"}
    return subprocess.run([sys.executable, "-m", "autoinvoice.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def config(tmp_path: Path, platform: str = "sandbox") -> Path:
    db = tmp_path / "chosen.db"
    text = f'[database]\nurl = "sqlite:///{db}"\n\n' + tenant_toml(
        "northwind", platform=platform)
    path = tmp_path / "chosen.toml"
    path.write_text(text, "utf-8")
    return path


@pytest.mark.parametrize("where", ["before", "after"])
def test_config_is_honoured_before_or_after_the_command(tmp_path: Path, where: str) -> None:
    path = config(tmp_path)
    args = (["--config", str(path), "db", "upgrade"] if where == "before"
            else ["db", "upgrade", "--config", str(path)])
    done = run(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "chosen.db" in done.stdout
    assert not (tmp_path / "autoinvoice.db").exists()


@pytest.mark.parametrize("where", ["before", "after"])
def test_a_missing_config_file_is_an_error_and_creates_nothing(tmp_path: Path,
                                                               where: str) -> None:
    missing = str(tmp_path / "nope.toml")
    args = (["--config", missing, "invoices", "list"] if where == "before"
            else ["invoices", "list", "--config", missing])
    done = run(*args, cwd=tmp_path)
    assert done.returncode == 2
    assert "nope.toml" in done.stderr
    assert "does not exist" in done.stderr
    assert list(tmp_path.iterdir()) == []  # no demo database, nothing else


def test_a_broken_config_file_is_an_error_naming_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[tenants.northwind\nname = ", "utf-8")
    done = run("--config", str(broken), "invoices", "list", cwd=tmp_path)
    assert done.returncode == 2
    assert "broken.toml" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_misspelled_platform_is_refused_at_start_naming_the_key_and_choices(
        tmp_path: Path) -> None:
    path = config(tmp_path, platform="quickbook")
    done = run("--config", str(path), "invoices", "list", cwd=tmp_path)
    assert done.returncode == 2
    assert "platform" in done.stderr
    assert "'quickbook'" in done.stderr
    assert "quickbooks" in done.stderr  # the choices are listed


@pytest.mark.parametrize("command", [["invoices", "list"], ["audit", "verify"],
                                     ["review", "list"], ["connections"]])
def test_an_unknown_tenant_is_refused_naming_the_choices(tmp_path: Path,
                                                         command: list[str]) -> None:
    path = config(tmp_path)
    done = run("--config", str(path), *command, "--tenant", "nope", cwd=tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "'nope'" in done.stderr
    assert "northwind" in done.stderr
    assert "OK" not in done.stdout


# -- worker --until-idle: exit 1 and say what when a step did not succeed -------------------
def ingest_job(tmp_path: Path, cfg: Path) -> None:
    from tests.helpers import completed, dumps, signed

    events = tmp_path / "events.ndjson"
    events.write_text(dumps(completed()) + "\n" + dumps(signed()) + "\n", "utf-8")
    done = run("--config", str(cfg), "ingest", str(events), cwd=tmp_path)
    assert done.returncode == 0, done.stderr


def test_worker_exits_1_naming_a_step_that_failed_for_good(tmp_path: Path) -> None:
    # given a job for a platform that has no connector yet
    cfg = config(tmp_path, platform="wave")
    ingest_job(tmp_path, cfg)
    # when the worker runs until idle
    done = run("--config", str(cfg), "worker", "--until-idle", cwd=tmp_path)
    # then it does not say "fine": exit 1, the job, the step and why
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "northwind/WO-T-1 step ready: failed" in done.stderr
    assert "no connector yet" in done.stderr
    assert "1 failed, 0 to be retried" in done.stderr
    assert "nothing more is due" not in done.stdout


def test_worker_exits_1_naming_a_step_put_off_for_a_retry(tmp_path: Path, monkeypatch) -> None:
    from autoinvoice.sandbox.registry import make_standin, standin_app
    from autoinvoice.sandbox.server import serve_in_thread

    # given a Stripe that answers every invoice creation with 429 for an hour
    core = make_standin("stripe", api_key="sk_test_w1")
    core.faults.inject("/v1/invoices", status=429, retry_after=3600, times=10)
    with serve_in_thread(standin_app("stripe", core)) as server:
        cfg = tmp_path / "stripe.toml"
        cfg.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "s.db"}"\n' + tenant_toml(
            "northwind", "stripe", f'base_url = "{server.base_url}"\n'
            'credentials = { api_key = "env:W1_KEY" }'), "utf-8")
        ingest_job(tmp_path, cfg)
        monkeypatch.setenv("W1_KEY", "sk_test_w1")
        done = run("--config", str(cfg), "worker", "--until-idle", cwd=tmp_path)
    # then: exit 1, and when it will be tried again
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "northwind/WO-T-1 step ready: retrying at " in done.stderr
    assert "0 failed, 1 to be retried" in done.stderr
