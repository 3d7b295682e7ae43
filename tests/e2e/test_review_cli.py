"""`autoinvoice review` and `invoices show` across revisions, as users run them: a subprocess,
a config file, the Stripe stand-in over real HTTP."""

from __future__ import annotations

import copy
import json

from tests.e2e.test_cli import config_file, run, stripe_server  # noqa: F401
from tests.helpers import EXAMPLE_EMERGENCY, completed, dumps, signed


def held_job(tmp_path, config_file, job_id: str) -> None:  # noqa: F811
    parts = [*copy.deepcopy(EXAMPLE_EMERGENCY["job"]["parts"]),
             {"sku": "NOPE-1", "description": "Gasket", "quantity": 1}]
    events = tmp_path / f"{job_id}.ndjson"
    events.write_text(dumps(completed(job_id, parts=parts)) + "\n" + dumps(signed(job_id)) + "\n")
    assert run("ingest", str(events), config=config_file).returncode == 0
    assert run("worker", "--until-idle", config=config_file).returncode == 0


def test_review_list_approve_with_edits_and_show_every_revision(tmp_path, config_file,  # noqa: F811
                                                                 stripe_server):  # noqa: F811
    held_job(tmp_path, config_file, "WO-R1")
    # the reviewer sees why it is held
    listed = run("review", "list", config=config_file)
    assert listed.returncode == 0, listed.stderr
    assert "northwind/WO-R1 rev 1" in listed.stdout
    assert "unknown_sku" in listed.stdout
    as_json = json.loads(run("review", "list", "--json", config=config_file).stdout)
    assert [(r["job_id"], r["holds"][0]["code"]) for r in as_json] == [("WO-R1", "unknown_sku")]
    # and approves with edits: the gasket was a mistake, the valve kit has an agreed price
    patch = tmp_path / "fix.json"
    patch.write_text(json.dumps({"parts": EXAMPLE_EMERGENCY["job"]["parts"][:2]}))
    approved = run("review", "approve", "WO-R1", "--edit", str(patch), "--po", "PO-5",
                   "--price", "1622-8757-00=400.00", "--note", "per phone call",
                   "--actor", "dana", config=config_file)
    assert approved.returncode == 0, approved.stderr
    assert "rev 1 void" in approved.stdout
    assert "rev 2 built" in approved.stdout
    assert run("worker", "--until-idle", config=config_file).returncode == 0
    shown = json.loads(run("invoices", "show", "WO-R1", "--json", config=config_file).stdout)
    assert (shown["revision"], shown["state"], shown["number"]) == (2, "sent", "NW-2026-00001")
    assert [(d["kind"], d["revision"], d["state"]) for d in shown["documents"]] == [
        ("invoice", 1, "void"), ("invoice", 2, "sent")]
    assert shown["source_event_id"] == "review-WO-R1-r2"
    assert run("review", "list", "--json", config=config_file).stdout.strip() == "[]"
    text = run("invoices", "show", "WO-R1", config=config_file).stdout
    assert "documents of this job" in text


def test_a_changed_job_after_sending_shows_its_credit_note(tmp_path, config_file,  # noqa: F811
                                                           stripe_server):  # noqa: F811
    events = tmp_path / "e.ndjson"
    changed = completed("WO-R2", event_id="evt-WO-R2-v2", po_number="PO-NEW")
    events.write_text(dumps(completed("WO-R2")) + "\n" + dumps(signed("WO-R2")) + "\n")
    assert run("ingest", str(events), config=config_file).returncode == 0
    assert run("worker", "--until-idle", config=config_file).returncode == 0
    events.write_text(dumps(changed) + "\n")
    assert run("ingest", str(events), config=config_file).returncode == 0
    assert run("worker", "--until-idle", config=config_file).returncode == 0
    shown = json.loads(run("invoices", "show", "WO-R2", "--json", config=config_file).stdout)
    assert [(d["kind"], d["revision"], d["state"], d["number"]) for d in shown["documents"]] \
        == [("invoice", 1, "credited", "NW-2026-00001"),
            ("credit_note", 1, "sent", "CN-NW-2026-00001"),
            ("invoice", 2, "sent", "NW-2026-00002")]
    assert shown["documents"][1]["credits_invoice"] == "NW-2026-00001"
    core, _ = stripe_server
    assert core.count("credit_note") == 1


def test_review_reject_voids_and_sends_nothing(tmp_path, config_file, stripe_server):  # noqa: F811
    held_job(tmp_path, config_file, "WO-R3")
    rejected = run("review", "reject", "WO-R3", "--reason", "duplicate", "--actor", "dana",
                   config=config_file)
    assert rejected.returncode == 0, rejected.stderr
    assert run("worker", "--until-idle", config=config_file).returncode == 0
    shown = json.loads(run("invoices", "show", "WO-R3", "--json", config=config_file).stdout)
    assert shown["state"] == "void"
    core, _ = stripe_server
    assert core.find_invoices(job_id="WO-R3") == []


def test_bad_review_input_exits_2_naming_the_problem(tmp_path, config_file,  # noqa: F811
                                                    stripe_server):  # noqa: F811
    held_job(tmp_path, config_file, "WO-R4")
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{oops")
    cases = [
        (["review", "approve", "WO-NOPE"], "no invoice for job 'WO-NOPE'"),
        (["review", "approve", "WO-R4", "--edit", str(bad_json)], "not valid JSON"),
        (["review", "approve", "WO-R4", "--edit", str(tmp_path / "missing.json")],
         "cannot read"),
        (["review", "approve", "WO-R4", "--price", "1622-8757-00=cheap"], "SKU=PRICE"),
        (["review", "approve", "WO-R4", "--price", "NOT-IN-JOB=1"], "no part with SKU"),
        (["review", "reject", "WO-R4", "--reason", " "], "say why"),
        (["review", "reject", "WO-NOPE", "--reason", "x"], "no invoice for job"),
    ]
    for args, problem in cases:
        result = run(*args, config=config_file)
        assert result.returncode == 2, (args, result.stderr)
        assert problem in result.stderr, (args, result.stderr)
    # nothing was written: still held, as it was
    listed = json.loads(run("review", "list", "--json", config=config_file).stdout)
    assert [(r["job_id"], r["revision"]) for r in listed] == [("WO-R4", 1)]
