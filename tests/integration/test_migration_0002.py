"""Migration 0002 keeps every invoice, line and history entry of a 0001 database."""

from __future__ import annotations

from sqlalchemy import inspect, text

from autoinvoice.store.db import make_engine, migrate


def test_upgrading_a_0001_database_keeps_its_rows_and_adds_document_kinds(tmp_path):
    # given: a database at 0001 with an invoice, a line and a history entry
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    migrate(engine, "0001")
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO invoices (id, tenant, job_id, revision, doc_state, pay_state, flags, "
            "platform, amount_paid_minor, attempts, accepted_at, updated_at) VALUES (1, 't', "
            "'J-1', 1, 'sent', 'unpaid', '[]', 'sandbox', 0, 0, '2026-01-01 00:00:00', "
            "'2026-01-01 00:00:00')"))
        conn.execute(text(
            "INSERT INTO invoice_lines (invoice_id, line_no, kind, description, quantity, unit, "
            "unit_price, amount_minor, tax_rate, tax_minor) VALUES (1, 1, 'part', 'Filter', "
            "'1', 'ea', '10', 1000, '0', 0)"))
        conn.execute(text(
            "INSERT INTO history (tenant, invoice_id, at, actor, action, detail) VALUES ('t', "
            "1, '2026-01-01 00:00:00', 'worker', 'built', '{}')"))
    # when
    migrate(engine)
    # then
    with engine.connect() as conn:
        assert conn.execute(text("SELECT kind, revision FROM invoices")).all() == \
            [("invoice", 1)]
        assert conn.execute(text("SELECT count(*) FROM invoice_lines")).scalar() == 1
        assert conn.execute(text("SELECT count(*) FROM history")).scalar() == 1
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        conn.execute(text(
            "INSERT INTO invoices (tenant, job_id, revision, kind, corrects_id, doc_state, "
            "pay_state, flags, platform, amount_paid_minor, attempts, accepted_at, updated_at) "
            "VALUES ('t', 'J-1', 1, 'credit_note', 1, 'ready', 'unpaid', '[]', 'sandbox', 0, 0, "
            "'2026-01-02 00:00:00', '2026-01-02 00:00:00')"))
    uniques = inspect(engine).get_unique_constraints("invoices")
    assert [u["column_names"] for u in uniques] == [["tenant", "job_id", "kind", "revision"]]
