"""Two workers race through many invoices and credit notes while changes keep coming in: every
series stays exactly 1..N, each document is issued once."""

from __future__ import annotations

import threading
import time

from sqlalchemy import select

from autoinvoice.pipeline.worker import Worker
from autoinvoice.store.models import InvoiceRow
from tests.helpers import completed, signed
from tests.integration.test_corrections import more_oil

JOBS = 16


def rows(harness) -> list[InvoiceRow]:
    with harness.app.sessions() as session:
        return list(session.scalars(select(InvoiceRow).where(InvoiceRow.tenant == "northwind")))


def wait_until(predicate, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the workers did not finish in time"
        time.sleep(0.05)


def sent(harness, kind: str, revision: int) -> int:
    return sum(1 for r in rows(harness)
               if (r.kind, r.revision, r.doc_state) == (kind, revision, "sent"))


def test_two_racing_workers_keep_invoice_and_credit_note_numbers_gap_free(harness):
    stop = threading.Event()
    workers = [Worker(harness.app, batch=2, concurrency=2) for _ in range(2)]
    threads = [threading.Thread(target=w.run_forever, args=(stop, 0.01)) for w in workers]
    for thread in threads:
        thread.start()
    try:
        # given: jobs invoiced while both workers run
        for n in range(JOBS):
            harness.ingest(completed(f"WO-R{n}"))
            harness.ingest(signed(f"WO-R{n}"))
        wait_until(lambda: sent(harness, "invoice", 1) == JOBS)
        # when: every job changes twice, the second change while the first is in flight
        for n in range(JOBS):
            harness.ingest(more_oil(f"WO-R{n}"))
        wait_until(lambda: sent(harness, "invoice", 2) >= JOBS // 2)
        for n in range(JOBS):
            harness.ingest(more_oil(f"WO-R{n}", version=3))
        wait_until(lambda: sum(1 for r in rows(harness) if r.doc_state == "sent"
                               and r.kind == "invoice") == JOBS
                   and all(r.doc_state in ("sent", "credited", "void") for r in rows(harness))
                   and not any(r.correction for r in rows(harness)))
    except AssertionError:
        for r in rows(harness):
            if r.doc_state not in ("sent", "credited", "void") or r.correction:
                print(r.job_id, r.kind, r.revision, r.doc_state, r.correction, r.next_attempt_at,
                      harness.clock.now, r.last_error)
        raise
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    # then: each series is 1..N without gaps or duplicates
    everything = rows(harness)
    invoices = sorted(r.number for r in everything if r.kind == "invoice" and r.number)
    notes = sorted(r.number for r in everything if r.kind == "credit_note")
    assert invoices == [f"NW-2026-{n:05d}" for n in range(1, len(invoices) + 1)]
    assert notes == [f"CN-NW-2026-{n:05d}" for n in range(1, len(notes) + 1)]
    assert len(notes) >= JOBS  # every job was credited at least once
    # each job ends with exactly one live invoice, built from its newest job
    for n in range(JOBS):
        live = [r for r in everything if r.job_id == f"WO-R{n}" and r.kind == "invoice"
                and r.doc_state == "sent"]
        assert len(live) == 1
        assert live[0].source_event_id == f"evt-WO-R{n}-v3"
    # and the platform agrees: one credit note per credited invoice, one open invoice per job
    credited = [r for r in everything if r.doc_state == "credited"]
    assert harness.stripe.count("credit_note") == len(credited) == len(notes)
    for n in range(JOBS):
        open_ = [i for i in harness.stripe.find_invoices(job_id=f"WO-R{n}")
                 if i["status"] == "open"]
        assert len(open_) == 1
