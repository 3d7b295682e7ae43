"""Migration 0004 chains the history entries a database already has, in id order."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text

from autoinvoice.store import audit, repo
from autoinvoice.store.db import make_engine, migrate, session_factory
from autoinvoice.store.models import InvoiceRow


def test_upgrading_a_0003_database_chains_its_history_and_new_entries_follow(tmp_path):
    # given: a database at 0003 with history of two tenants
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    migrate(engine, "0003")
    with engine.begin() as conn:
        for inv, tenant in ((1, "acme"), (2, "zeta")):
            conn.execute(text(
                "INSERT INTO invoices (id, tenant, job_id, revision, kind, doc_state, "
                "pay_state, flags, platform, amount_paid_minor, attempts, accepted_at, "
                "updated_at) VALUES (:id, :t, 'J-1', 1, 'invoice', 'sent', 'unpaid', '[]', "
                "'sandbox', 0, 0, '2026-01-01 00:00:00', '2026-01-01 00:00:00')"),
                {"id": inv, "t": tenant})
        for inv, tenant, action in ((1, "acme", "built"), (2, "zeta", "built"),
                                    (1, "acme", "sent"), (1, "acme", "paid")):
            conn.execute(text(
                "INSERT INTO history (tenant, invoice_id, at, actor, action, detail, "
                "request_id) VALUES (:t, :inv, '2026-01-01 00:00:00', 'worker', :a, "
                "'{\"amount\": \"1.00\"}', 'req-1')"), {"t": tenant, "inv": inv, "a": action})
    # when
    migrate(engine)
    # then: chained per tenant in id order
    sessions = session_factory(engine)
    with sessions() as session:
        rows = session.execute(text("SELECT tenant, seq, action FROM history ORDER BY id")).all()
        assert [tuple(r) for r in rows] == [("acme", 1, "built"), ("zeta", 1, "built"),
                                            ("acme", 2, "sent"), ("acme", 3, "paid")]
        assert all(r.ok for r in audit.verify(session))
    # and: a new entry continues the tenant's chain
    with sessions.begin() as session:
        repo.record(session, session.get(InvoiceRow, 1), datetime(2026, 2, 1, tzinfo=UTC),
                    "note")
    with sessions() as session:
        [acme] = audit.verify(session, "acme")
    assert (acme.ok, acme.entries, acme.head_seq) == (True, 4, 4)
