"""Every history entry is chained per tenant; ``verify`` names the first broken link after
any change made to the database behind the store's back."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from autoinvoice.store import audit, repo
from autoinvoice.store.db import make_engine, migrate, session_factory
from autoinvoice.store.models import InvoiceRow

T0 = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)


def invoice(tenant: str, job_id: str) -> InvoiceRow:
    return InvoiceRow(tenant=tenant, job_id=job_id, doc_state="accepted", platform="sandbox",
                      flags=[], accepted_at=T0, updated_at=T0)


@pytest.fixture
def sessions(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'audit.db'}")
    migrate(engine)
    return session_factory(engine)


@pytest.fixture
def chained(sessions):
    """Two tenants, five entries each, interleaved."""
    with sessions.begin() as session:
        rows = {t: invoice(t, f"WO-{t}") for t in ("acme", "zeta")}
        session.add_all(rows.values())
        for n in range(5):
            for tenant, row in rows.items():
                repo.record(session, row, T0 + timedelta(minutes=n), f"step{n}",
                            to_state=f"s{n}", request_id=f"req-{tenant}-{n}", note=n,
                            document_hashes={"pdf": "ab" * 32})
    return sessions


def entry_id(sessions, tenant: str, seq: int) -> int:
    with sessions() as session:
        return session.execute(text("SELECT id FROM history WHERE tenant = :t AND seq = :s"),
                               {"t": tenant, "s": seq}).scalar_one()


def run_sql(sessions, sql: str, **params) -> None:
    with sessions.begin() as session:
        session.execute(text(sql), params)


def reports(sessions) -> dict[str, audit.ChainReport]:
    with sessions() as session:
        return {r.tenant: r for r in audit.verify(session)}


def test_a_clean_chain_verifies_with_gap_free_seqs_per_tenant(chained):
    result = reports(chained)
    assert {t: (r.ok, r.entries, r.head_seq) for t, r in result.items()} == {
        "acme": (True, 5, 5), "zeta": (True, 5, 5)}
    with chained() as session:
        seqs = session.execute(text("SELECT seq FROM history WHERE tenant = 'acme' "
                                    "ORDER BY id")).scalars().all()
    assert seqs == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(("column", "value"), [
    ("at", "2026-11-21 03:30:00.000000"),
    ("actor", "mallory"),
    ("action", "paid"),
    ("from_state", "draft"),
    ("to_state", "sent"),
    ("detail", '{"note": 99}'),
    ("request_id", "req-forged"),
    ("invoice_id", None),  # set below to the other tenant's invoice
    ("hash", "f" * 64),
    ("id", 999),
])
def test_changing_any_column_of_an_entry_is_found_at_its_seq(chained, column, value):
    # given
    target = entry_id(chained, "acme", 3)
    if column == "invoice_id":
        value = entry_invoice(chained, "zeta")
    # when
    run_sql(chained, f"UPDATE history SET {column} = :v WHERE id = :id", v=value, id=target)
    # then
    result = reports(chained)
    assert result["zeta"].ok
    broken = result["acme"].broken
    assert broken is not None
    assert broken.seq == 3
    assert "changed" in broken.problem
    assert result["acme"].entries == 2


def entry_invoice(sessions, tenant: str) -> int:
    with sessions() as session:
        return session.execute(text("SELECT id FROM invoices WHERE tenant = :t"),
                               {"t": tenant}).scalar_one()


def test_a_changed_prev_hash_is_found_at_its_seq(chained):
    run_sql(chained, "UPDATE history SET prev_hash = :v WHERE id = :id", v="0" * 64,
            id=entry_id(chained, "acme", 4))
    broken = reports(chained)["acme"].broken
    assert broken is not None
    assert broken.seq == 4
    assert "prev_hash" in broken.problem


def test_changing_the_job_an_entry_belongs_to_is_found(chained):
    run_sql(chained, "UPDATE invoices SET job_id = 'WO-other' WHERE tenant = 'acme'")
    broken = reports(chained)["acme"].broken
    assert broken is not None
    assert broken.seq == 1
    assert "changed" in broken.problem


def test_a_deleted_entry_shows_as_a_seq_gap(chained):
    run_sql(chained, "DELETE FROM history WHERE id = :id", id=entry_id(chained, "acme", 2))
    broken = reports(chained)["acme"].broken
    assert broken is not None
    assert broken.seq == 2
    assert "deleted" in broken.problem


def test_deleting_the_newest_entries_shows_against_the_head(chained):
    run_sql(chained, "DELETE FROM history WHERE tenant = 'acme' AND seq >= 4")
    broken = reports(chained)["acme"].broken
    assert broken is not None
    assert broken.seq == 4
    assert "deleted" in broken.problem


def test_renumbering_to_hide_a_deletion_is_found(chained):
    run_sql(chained, "DELETE FROM history WHERE id = :id", id=entry_id(chained, "acme", 2))
    run_sql(chained, "UPDATE history SET seq = seq - 1 WHERE tenant = 'acme' AND seq > 2")
    broken = reports(chained)["acme"].broken
    assert broken is not None
    assert broken.seq == 2
    assert "prev_hash" in broken.problem


def test_swapping_two_entries_is_found_where_the_order_breaks(chained):
    first, second = entry_id(chained, "acme", 2), entry_id(chained, "acme", 3)
    run_sql(chained, "UPDATE history SET seq = -1 WHERE id = :id", id=first)
    run_sql(chained, "UPDATE history SET seq = 2 WHERE id = :id", id=second)
    run_sql(chained, "UPDATE history SET seq = 3 WHERE id = :id", id=first)
    broken = reports(chained)["acme"].broken
    assert broken is not None
    assert broken.seq == 2
    assert "reordered" in broken.problem


INSERT = ("INSERT INTO history (tenant, invoice_id, at, actor, action, detail, seq, prev_hash, "
          "hash) VALUES ('acme', :inv, '2026-11-21 03:10:00.000000', 'mallory', 'paid', '{}', "
          ":seq, :prev, :hash)")


def test_an_entry_inserted_off_the_chain_is_found(chained):
    run_sql(chained, INSERT, inv=entry_invoice(chained, "acme"), seq=None, prev=None,
            hash=None)
    broken = reports(chained)["acme"].broken
    assert broken is not None
    assert broken.seq is None
    assert "inserted" in broken.problem


def test_an_entry_appended_with_a_forged_link_is_found_at_its_seq(chained):
    with chained() as session:
        last = session.execute(text("SELECT hash FROM history WHERE tenant = 'acme' "
                                    "AND seq = 5")).scalar_one()
    run_sql(chained, INSERT, inv=entry_invoice(chained, "acme"), seq=6, prev=last,
            hash="a" * 64)
    broken = reports(chained)["acme"].broken
    assert broken is not None
    assert broken.seq == 6
    assert "changed" in broken.problem


def test_an_entry_moved_to_another_tenant_breaks_its_own_chain(chained):
    run_sql(chained, "UPDATE history SET tenant = 'other' WHERE id = :id",
            id=entry_id(chained, "acme", 3))
    result = reports(chained)
    assert result["acme"].broken is not None
    assert result["acme"].broken.seq == 3
    assert result["other"].broken is not None


def test_two_writer_threads_keep_every_chain_valid(sessions):
    # given: two tenants, each written by both threads at once
    with sessions.begin() as session:
        rows = [invoice(t, f"WO-{t}-{n}") for t in ("acme", "zeta") for n in range(2)]
        session.add_all(rows)
    ids = [r.id for r in rows]
    errors: list[BaseException] = []

    def write(offset: int) -> None:
        try:
            for n in range(40):
                with sessions.begin() as session:
                    row = session.get(InvoiceRow, ids[(n + offset) % len(ids)])
                    repo.record(session, row, T0 + timedelta(seconds=n), "touch", n=n)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(2)]
    # when
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then
    assert errors == []
    result = reports(sessions)
    assert all(r.ok for r in result.values()), result
    assert sum(r.entries for r in result.values()) == 80


def test_a_rolled_back_entry_leaves_no_gap(sessions):
    with sessions.begin() as session:
        row = invoice("acme", "WO-1")
        session.add(row)
        repo.record(session, row, T0, "accepted")
    session = sessions()
    with session.begin():
        repo.record(session, session.get(InvoiceRow, row.id), T0, "lost")
        session.rollback()
    session.close()
    with sessions.begin() as session:
        repo.record(session, session.get(InvoiceRow, row.id), T0, "kept")
    result = reports(sessions)["acme"]
    assert (result.ok, result.entries, result.head_seq) == (True, 2, 2)


def test_a_job_through_the_pipeline_leaves_a_valid_chain_of_its_history(harness):
    from tests.helpers import completed, signed

    harness.ingest(completed("WO-P1"))
    harness.ingest(signed("WO-P1"))
    harness.run()
    invoice_id = harness.row("WO-P1").id
    with harness.app.sessions() as session:
        [report] = audit.verify(session, "northwind")
        entries = repo.history(session, invoice_id)
    assert report.ok
    assert report.entries == len(entries) >= 2
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    assert all(e.hash is not None and len(e.hash) == 64 for e in entries)
