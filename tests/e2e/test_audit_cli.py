"""`autoinvoice audit verify` and `autoinvoice export` as users run them: a subprocess, a
config file, an invoice sent through the Stripe stand-in."""

from __future__ import annotations

import csv
import io
import json
import sqlite3

from tests.e2e.test_cli import config_file, run, stripe_server  # noqa: F401
from tests.helpers import completed, dumps, signed


def sent_job(tmp_path, config_file, job_id: str) -> None:  # noqa: F811
    events = tmp_path / f"{job_id}.ndjson"
    events.write_text(dumps(completed(job_id)) + "\n" + dumps(signed(job_id)) + "\n")
    assert run("ingest", str(events), config=config_file).returncode == 0
    assert run("worker", "--until-idle", config=config_file).returncode == 0


def test_audit_verify_is_ok_then_names_the_first_broken_link(tmp_path, config_file,  # noqa: F811
                                                             stripe_server):  # noqa: F811
    # given: an invoice built, sent and recorded
    sent_job(tmp_path, config_file, "WO-A1")
    ok = run("audit", "verify", config=config_file)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("OK      northwind:")
    [report] = json.loads(run("audit", "verify", "--json", config=config_file).stdout)
    assert report["ok"]
    assert report["entries"] == report["head_seq"] >= 2
    # when: someone edits the second entry in the database
    with sqlite3.connect(tmp_path / "cli.db") as db:
        db.execute("UPDATE history SET actor = 'mallory' WHERE tenant = 'northwind' "
                   "AND seq = 2")
    # then
    broken = run("audit", "verify", "--tenant", "northwind", config=config_file)
    assert broken.returncode == 1
    assert "BROKEN  northwind: first broken link at seq 2 entry" in broken.stdout
    [report] = json.loads(run("audit", "verify", "--json", config=config_file).stdout)
    assert report["broken"]["seq"] == 2
    assert "changed" in report["broken"]["problem"]


def test_export_writes_the_register_as_csv_and_json_without_formulas(tmp_path,  # noqa: F811
                                                                     config_file,  # noqa: F811
                                                                     stripe_server):  # noqa: F811
    # given: a sent invoice whose customer name is a formula
    sent_job(tmp_path, config_file, "WO-E1")
    with sqlite3.connect(tmp_path / "cli.db") as db:
        db.execute("UPDATE invoices SET customer_name = '=HYPERLINK(\"http://x\",\"y\")'")
    # when
    out = tmp_path / "register.csv"
    done = run("export", "--from", "2000-01-01", "--to", "2100-12-31", "--out", str(out),
               config=config_file)
    # then
    assert done.returncode == 0, done.stderr
    [row] = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert row["customer"] == "'=HYPERLINK(\"http://x\",\"y\")"
    assert (row["job_id"], row["kind"], row["state"]) == ("WO-E1", "invoice", "sent")
    assert float(row["total"]) > 0
    as_json = json.loads(run("export", "--from", "2000-01-01", "--to", "2100-12-31",
                             "--format", "json", config=config_file).stdout)
    assert as_json[0]["customer"].startswith("=HYPERLINK")
    assert as_json[0]["total"] == row["total"]
    empty = run("export", "--from", "2000-01-01", "--to", "2000-01-31", config=config_file)
    assert empty.stdout.splitlines() == [",".join(
        ["number", "kind", "tenant", "job_id", "revision", "customer", "issue_date",
         "due_date", "currency", "subtotal", "tax", "total", "state", "payment_state",
         "amount_paid", "remote_id"])]


def test_export_refuses_a_bad_date_naming_the_flag(config_file):  # noqa: F811
    bad = run("export", "--from", "2026-13-01", "--to", "2026-12-31", config=config_file)
    assert bad.returncode == 2
    assert "--from" in bad.stderr
    assert "2026-13-01" in bad.stderr
    bad = run("export", "--from", "2026-01-01", "--to", "soon", config=config_file)
    assert bad.returncode == 2
    assert "--to" in bad.stderr
    backwards = run("export", "--from", "2026-02-01", "--to", "2026-01-01", config=config_file)
    assert backwards.returncode == 2
    assert "after --to" in backwards.stderr
